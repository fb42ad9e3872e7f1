"""The engine's windows and medians against an exact reference, snapshots and bad input."""

import statistics

import numpy as np
import pytest

import edgescore

NOW = 1_700_000_000.0


def events(n, users, seed):
    rng = np.random.default_rng(seed)
    return [
        {
            "user_id": f"user-{rng.integers(users)}",
            "timestamp": NOW - 600 + float(rng.random() * 600),
            "features": rng.random(3).tolist(),
        }
        for _ in range(n)
    ]


def test_medians_equal_an_exact_reference():
    scorer = edgescore.Scorer.default()
    engine = edgescore.Engine(scorer, window_seconds=300.0)
    batch = sorted(events(2000, 20, 1), key=lambda e: e["timestamp"])
    report = engine.ingest(batch, now=NOW)
    # The watermark only rises: events more than 300 s behind the newest one before them are late.
    kept, newest = {}, -np.inf
    scores = scorer.score([e["features"] for e in batch])
    for event, score in zip(batch, scores):
        newest = max(newest, event["timestamp"])
        if event["timestamp"] > newest - 300.0:
            kept.setdefault(event["user_id"], []).append((event["timestamp"], float(score)))
    late = [r for r in report.rejected if r.reason == "late"]
    assert report.processed + len(late) == len(batch) and len(late) == len(report.rejected)
    for user, window in kept.items():
        inside = [s for t, s in window if t > newest - 300.0]
        answer = engine.median(user)
        assert answer["count"] == len(inside)
        assert answer["median"] == (statistics.median(inside) if inside else None)
    assert engine.median("nobody") == {"user_id": "nobody", "median": None, "count": 0, "window_seconds": 300.0}


def test_a_snapshot_restores_the_same_state():
    scorer = edgescore.Scorer.default()
    engine = edgescore.Engine(scorer)
    engine.ingest(events(500, 10, 2), now=NOW)
    restored = edgescore.Engine.restore(scorer, engine.snapshot())
    for user in (f"user-{i}" for i in range(10)):
        assert restored.median(user) == engine.median(user)
    assert restored.stats() == engine.stats()
    with pytest.raises(edgescore.SnapshotError):
        edgescore.Engine.restore(scorer, b"not a snapshot")


def test_bad_events_are_rejected_by_position_and_bad_settings_refused():
    engine = edgescore.Engine(edgescore.Scorer.default())
    report = engine.ingest(
        [
            {"user_id": "u1", "timestamp": NOW, "features": [0.1, 0.2, 0.3]},
            "not an event",
            {"user_id": "", "timestamp": NOW, "features": [0.1, 0.2, 0.3]},
            {"user_id": "u2", "timestamp": NOW, "features": [0.1, 0.2]},
            {"user_id": "u3", "timestamp": NOW + 3600, "features": [0.1, 0.2, 0.3]},
            {"user_id": "u4", "timestamp": "soon", "features": [0.1, 0.2, 0.3]},
        ],
        now=NOW,
    )
    assert report.processed == 1
    assert [(r.index, r.reason) for r in report.rejected] == [
        (1, "malformed-event"),
        (2, "invalid-user-id"),
        (3, "wrong-width"),
        (4, "future"),
        (5, "invalid-timestamp"),
    ]
    assert all(r.message for r in report.rejected)
    stats = engine.stats()
    assert stats["events_accepted"] == 1 and stats["users_tracked"] == 1
    with pytest.raises(edgescore.ConfigError, match="window_seconds"):
        edgescore.Engine(edgescore.Scorer.default(), window_seconds=-1)


def test_an_engine_past_its_memory_bound_raises_and_stays_refused():
    scorer = edgescore.Scorer.default(edgescore.Bounds(memory_limit_bytes=4 << 20))
    engine = edgescore.Engine(scorer)
    with pytest.raises(edgescore.GuestTrap):
        engine.ingest(events(8192, 8192, 3), now=NOW)
    with pytest.raises(edgescore.GuestTrap, match="trapped earlier"):
        engine.median("user-1")
