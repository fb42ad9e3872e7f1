# %% [markdown]
# # Scoring in Python with the edge artifact
#
# The `edgescore` wheel embeds the same scoring component that `edgescore serve` and the Spin app
# run, through wasmtime. Build and install it from the repository:
#
#     cargo xtask wheel && pip install target/wheels/edgescore-*.whl
#
# Run this file as a script, or cell by cell in an editor that reads `# %%` cells.

# %%
import numpy as np

import edgescore

scorer = edgescore.Scorer.default()
print(scorer.info)

# %% A table of rows (a DataFrame's `.to_numpy()` works the same), scored in one call.
rng = np.random.default_rng(0)
table = rng.random((100_000, scorer.info.input_width))
scores = scorer.score(table)
print(f"{len(scores):,} scores, mean {scores.mean():.4f}")

# %% Events per user, and each user's rolling median over the last five minutes.
engine = edgescore.Engine(scorer, window_seconds=300.0)
now = 1_700_000_000.0
events = [
    {"user_id": f"user-{i % 7}", "timestamp": now - 60 + i, "features": table[i].tolist()}
    for i in range(60)
]
events.append({"user_id": "", "timestamp": now, "features": [0.1, 0.2, 0.3]})
report = engine.ingest(events, now=now)
print(f"processed {report.processed}, rejected {[(r.index, r.reason) for r in report.rejected]}")
print(engine.median("user-3"))

# %% The state as bytes, and back: a later process takes up where this one stopped.
restored = edgescore.Engine.restore(scorer, engine.snapshot())
assert restored.median("user-3") == engine.median("user-3")
print(restored.stats()["events_in_windows"], "events in the windows after a restore")
