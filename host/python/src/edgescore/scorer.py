"""`Scorer`: an ONNX model loaded in the scoring component, scoring rows."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from os import PathLike
from typing import Any, Sequence, Union

import numpy as np
from wasmtime.component import ResourceAny, Variant

from ._guest import SCORER, Guest, field
from .errors import (
    EmptyBatch,
    InferenceError,
    InvalidModel,
    NonFinite,
    UnsupportedSignature,
    WidthMismatch,
)

#: Rows per call into the component: bounds the memory a call takes, not the rows a user gives.
CHUNK_ROWS = 8192

Rows = Union[np.ndarray, Sequence[Sequence[float]]]


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is."""

    input_name: str
    output_name: str
    #: Features per row.
    input_width: int
    #: Hex sha256 of the ONNX bytes.
    sha256: str


@dataclass(frozen=True)
class Bounds:
    """What one instance of the component may use."""

    memory_limit_bytes: int = 512 << 20
    call_timeout_seconds: float = 10.0
    #: Wasm instructions per call (loading a model that is not the preloaded default takes a
    #: few billion; scoring a chunk of rows far fewer).
    fuel_per_call: int = 200_000_000_000


def load_model(guest: Guest, onnx: bytes) -> ResourceAny:
    """Loads `onnx` in `guest`: the model resource, or `ModelError`."""
    loaded = guest.call(SCORER, "[static]model.load", onnx)
    if isinstance(loaded, ResourceAny):
        return loaded
    if isinstance(loaded, Variant) and loaded.tag == "unsupported-signature":
        raise UnsupportedSignature(loaded.payload)
    raise InvalidModel(getattr(loaded, "payload", loaded))


def raise_score_error(error: Any, row_offset: int = 0) -> None:
    """Raises the `ScoreError` a `score-error` value stands for."""
    if error is None:
        raise EmptyBatch("no rows to score")
    if isinstance(error, int):
        raise NonFinite(row_offset + error)
    if isinstance(error, str):
        raise InferenceError(error)
    raise WidthMismatch(field(error, "width"), field(error, "len"))


class Scorer:
    """A model in the sandboxed scoring component: no file, network, clock or environment, and
    bounded memory and time per call. Create it with `from_file`, `from_bytes` or `default`."""

    def __init__(self, onnx: bytes, bounds: Bounds = Bounds()):
        self._onnx = bytes(onnx)
        self.bounds = bounds
        self._guest: Guest | None = None
        self._model: ResourceAny | None = None
        self.info = self._info()

    @classmethod
    def from_bytes(cls, onnx: bytes, bounds: Bounds = Bounds()) -> "Scorer":
        """The model in `onnx` (an ONNX file's bytes)."""
        return cls(onnx, bounds)

    @classmethod
    def from_file(cls, path: Union[str, PathLike], bounds: Bounds = Bounds()) -> "Scorer":
        """The ONNX model at `path`."""
        with open(path, "rb") as f:
            return cls(f.read(), bounds)

    @classmethod
    def default(cls, bounds: Bounds = Bounds()) -> "Scorer":
        """The registry's default model, the one `edgescore serve` serves by default."""
        onnx = resources.files("edgescore").joinpath("default_model.onnx").read_bytes()
        return cls(onnx, bounds)

    @property
    def onnx(self) -> bytes:
        return self._onnx

    def _loaded(self) -> tuple[Guest, ResourceAny]:
        """The instance and the model, made again after a trap."""
        if self._guest is None or self._guest.trapped is not None or self._model is None:
            self._guest = Guest(
                self.bounds.memory_limit_bytes,
                self.bounds.call_timeout_seconds,
                self.bounds.fuel_per_call,
            )
            self._model = load_model(self._guest, self._onnx)
        return self._guest, self._model

    def _info(self) -> ModelInfo:
        guest, model = self._loaded()
        info = guest.call(SCORER, "[method]model.info", model)
        return ModelInfo(
            input_name=field(info, "input-name"),
            output_name=field(info, "output-name"),
            input_width=field(info, "input-width"),
            sha256=field(info, "sha256"),
        )

    def score(self, rows: Rows) -> np.ndarray:
        """One score per row: `rows` is a 2-D array (float32 or float64) or a list of rows in
        the model's feature order. Returns a 1-D float32 array."""
        matrix = np.asarray(rows, dtype=np.float32)
        width = self.info.input_width
        if matrix.ndim != 2 or matrix.shape[1] != width:
            raise WidthMismatch(width, int(matrix.size))
        if matrix.shape[0] == 0:
            raise EmptyBatch("no rows to score")
        scores = np.empty(matrix.shape[0], dtype=np.float32)
        for start in range(0, matrix.shape[0], CHUNK_ROWS):
            chunk = matrix[start : start + CHUNK_ROWS]
            guest, model = self._loaded()
            result = guest.call(SCORER, "[method]model.score", model, chunk.ravel().tolist())
            if not isinstance(result, list):
                raise_score_error(result, start)
            scores[start : start + len(result)] = result
        return scores


__all__ = ["Bounds", "ModelInfo", "Scorer"]
