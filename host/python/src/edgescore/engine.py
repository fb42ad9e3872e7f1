"""`Engine`: per-user rolling windows of scores, as `edgescore serve` keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from wasmtime.component import ResourceAny, Variant

from ._guest import ENGINE, Guest, field, record
from .errors import ConfigError, SnapshotError
from .scorer import Scorer, load_model, raise_score_error


@dataclass(frozen=True)
class Rejection:
    """An event that was not accepted; the rest of its batch is unaffected."""

    #: Position in the batch.
    index: int
    #: `invalid-user-id`, `invalid-timestamp`, `wrong-width`, `non-finite-feature`, `future`,
    #: `late`, `malformed-event`, `non-finite-score` or `capacity`.
    reason: str
    #: One sentence naming the field and the problem.
    message: str


@dataclass(frozen=True)
class IngestReport:
    processed: int
    rejected: list[Rejection]


def _result(value: Any) -> tuple[bool, Any]:
    """(ok, payload) of a `result` the component returned, tagged or not."""
    if isinstance(value, Variant) and value.tag in ("ok", "err"):
        return value.tag == "ok", value.payload
    return not isinstance(value, Variant), value


def _event(index: int, event: Any) -> tuple[Any, Rejection | None]:
    """The component's record of one event, or why it is not an event at all."""
    if not isinstance(event, Mapping):
        return None, Rejection(index, "malformed-event", f"events[{index}]: not an object")
    user_id, timestamp, features = (event.get(k) for k in ("user_id", "timestamp", "features"))
    if not isinstance(user_id, str):
        return None, Rejection(index, "invalid-user-id", f"events[{index}].user_id: not a string")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return None, Rejection(index, "invalid-timestamp", f"events[{index}].timestamp: not a number")
    try:
        row = [float(f) for f in features]
    except (TypeError, ValueError):
        return None, Rejection(index, "wrong-width", f"events[{index}].features: not a list of numbers")
    return record(user_id=user_id, timestamp=float(timestamp), features=row), None


class Engine:
    """Scores events with a model and keeps each user's scores of the last `window_seconds`;
    the median of a user's window is exact. State lives in the component's memory, bounded like
    the scorer's; `snapshot` and `Engine.restore` carry it across processes."""

    def __init__(
        self,
        scorer: Scorer,
        window_seconds: float = 300.0,
        max_clock_skew_seconds: float = 60.0,
    ):
        bounds = scorer.bounds
        self._guest = Guest(bounds.memory_limit_bytes, bounds.call_timeout_seconds, bounds.fuel_per_call)
        self.config = (window_seconds, max_clock_skew_seconds)
        model = load_model(self._guest, scorer.onnx)
        config = record(window_seconds=float(window_seconds), max_clock_skew_seconds=float(max_clock_skew_seconds))
        created = self._guest.call(ENGINE, "[static]engine.create", config, model)
        if not isinstance(created, ResourceAny):
            raise ConfigError(getattr(created, "payload", created))
        self._engine = created

    @classmethod
    def restore(
        cls,
        scorer: Scorer,
        snapshot: bytes,
        window_seconds: float = 300.0,
        max_clock_skew_seconds: float = 60.0,
    ) -> "Engine":
        """An engine whose state is `snapshot`'s (from `Engine.snapshot`)."""
        engine = cls(scorer, window_seconds, max_clock_skew_seconds)
        ok, error = _result(engine._call("[method]engine.restore", bytes(snapshot)))
        if not ok:
            tag = getattr(error, "tag", None)
            detail = getattr(error, "payload", error)
            if error is None or tag == "not-a-snapshot":
                raise SnapshotError("not a snapshot of an edgescore engine")
            if isinstance(detail, int):
                raise SnapshotError(f"snapshot version {detail} is not supported")
            raise SnapshotError(f"the snapshot is corrupt: {detail}")
        return engine

    def _call(self, name: str, *args: Any) -> Any:
        return self._guest.call(ENGINE, name, self._engine, *args)

    def ingest(self, events: Iterable[Mapping[str, Any]], now: float) -> IngestReport:
        """Judges each event (`{"user_id", "timestamp", "features"}`) against the window and the
        clock `now` (Unix seconds), scores the accepted ones in one model call and records them.
        Raises a `ScoreError` when the batch could not be scored (then nothing is recorded)."""
        sent, positions, rejected = [], [], []
        for index, event in enumerate(events):
            value, rejection = _event(index, event)
            if rejection is not None:
                rejected.append(rejection)
            else:
                sent.append(value)
                positions.append(index)
        ok, report = _result(self._call("[method]engine.ingest", sent, float(now)))
        if not ok:
            raise_score_error(report)
        for r in field(report, "rejections"):
            rejected.append(Rejection(positions[field(r, "index")], field(r, "reason"), field(r, "message")))
        rejected.sort(key=lambda r: r.index)
        return IngestReport(processed=field(report, "accepted"), rejected=rejected)

    def advance(self, watermark: float) -> None:
        """Raises the watermark (never lowers it) and expires what falls out of the windows."""
        self._call("[method]engine.advance", float(watermark))

    def median(self, user_id: str) -> dict[str, Any]:
        """`{"user_id", "median", "count", "window_seconds"}`; the median is None for a user
        without events in the window."""
        m = self._call("[method]engine.median", user_id)
        return {
            "user_id": user_id,
            "median": field(m, "median"),
            "count": field(m, "count"),
            "window_seconds": field(m, "window-seconds"),
        }

    def stats(self) -> dict[str, Any]:
        """The engine's counters: events received, accepted and rejected by reason, users and
        events in the windows, the watermark."""
        s = self._call("[method]engine.stats")
        names = [
            "ingest-batches", "events-received", "events-accepted", "median-queries",
            "model-calls", "users-tracked", "events-in-windows", "watermark", "window-seconds",
        ]
        stats = {name.replace("-", "_"): field(s, name) for name in names}
        stats["rejected"] = {field(r, "reason"): field(r, "count") for r in field(s, "rejected")}
        return stats

    def snapshot(self) -> bytes:
        """The whole state (windows, watermark, counters) as bytes, for `Engine.restore`."""
        return bytes(self._call("[method]engine.snapshot"))


