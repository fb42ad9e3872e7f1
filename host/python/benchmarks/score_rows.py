"""Rows per second scoring 100,000 rows, edgescore's component (through wasmtime) against
onnxruntime on the same model file, in this one process, alternating for a few rounds.

Usage: python benchmarks/score_rows.py MODEL.onnx [ROUNDS]
"""

import sys
import time

import numpy as np
import onnxruntime

import edgescore

ROWS = 100_000
BATCH = 10_000


def rows_per_second(score, rows: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        score(rows[start : start + BATCH])
    return len(rows) / (time.perf_counter() - started)


def main() -> None:
    path = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rows = np.random.default_rng(0).random((ROWS, 3), dtype=np.float32)
    scorer = edgescore.Scorer.from_file(path)
    session = onnxruntime.InferenceSession(path)
    runners = {
        "edgescore (wasmtime-py)": scorer.score,
        "onnxruntime": lambda batch: session.run(None, {"features": batch})[0],
    }
    print(f"{ROWS:,} rows of 3 features in batches of {BATCH:,}, {rounds} alternating rounds")
    results = {name: [] for name in runners}
    for _ in range(rounds):
        for name, score in runners.items():
            results[name].append(rows_per_second(score, rows))
    base = np.median(results["onnxruntime"])
    print("| scorer | rows/s (median) | ÷ onnxruntime |")
    print("| --- | ---: | ---: |")
    for name, values in results.items():
        print(f"| {name} | {np.median(values):,.0f} | {np.median(values) / base:.3f} |")


if __name__ == "__main__":
    main()
