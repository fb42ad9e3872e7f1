"""edgescore in Python: the same sandboxed WebAssembly scoring component that runs at the edge,
embedded with wasmtime.

    >>> import edgescore
    >>> scorer = edgescore.Scorer.default()
    >>> scorer.score([[0.1, 0.2, 0.3]])          # one score per row, a float32 array
    >>> engine = edgescore.Engine(scorer)
    >>> engine.ingest([{"user_id": "u1", "timestamp": 1.7e9, "features": [0.1, 0.2, 0.3]}], now=1.7e9)
    >>> engine.median("u1")
"""

from .engine import Engine, IngestReport, Rejection
from .errors import (
    ConfigError,
    EdgescoreError,
    EmptyBatch,
    GuestTrap,
    InferenceError,
    InvalidModel,
    ModelError,
    NonFinite,
    ScoreError,
    SnapshotError,
    UnsupportedSignature,
    WidthMismatch,
)
from .scorer import Bounds, ModelInfo, Scorer

__all__ = [
    "Bounds", "ConfigError", "EdgescoreError", "EmptyBatch", "Engine", "GuestTrap",
    "InferenceError", "IngestReport", "InvalidModel", "ModelError", "ModelInfo", "NonFinite",
    "Rejection", "ScoreError", "Scorer", "SnapshotError", "UnsupportedSignature", "WidthMismatch",
]
