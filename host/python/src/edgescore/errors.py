"""Exceptions, named after the errors of the component's WIT (`wit/scoring.wit`)."""


class EdgescoreError(Exception):
    """Every error of this package."""


class ModelError(EdgescoreError):
    """The model could not be loaded (WIT `model-error`)."""


class InvalidModel(ModelError):
    """Not an ONNX model that tract can read and optimize (`invalid`)."""


class UnsupportedSignature(ModelError):
    """Readable, but not `[N, width]` f32 in and `[N]` or `[N, 1]` f32 out."""


class ScoreError(EdgescoreError):
    """A batch could not be scored; nothing of it was scored or recorded (WIT `score-error`)."""


class EmptyBatch(ScoreError):
    """No rows."""


class WidthMismatch(ScoreError):
    """The features are not a whole number of rows of the model's width."""

    def __init__(self, width: int, length: int):
        super().__init__(f"{length} features are not whole rows of {width}")
        self.width = width
        self.length = length


class NonFinite(ScoreError):
    """A row holds a NaN or infinite value."""

    def __init__(self, row: int):
        super().__init__(f"row {row} holds a NaN or infinite value")
        self.row = row


class InferenceError(ScoreError):
    """The model failed, or gave a non-finite score."""


class ConfigError(EdgescoreError):
    """An engine setting is out of range (WIT `config-error`)."""


class SnapshotError(EdgescoreError):
    """A snapshot could not be restored; the engine is unchanged (WIT `snapshot-error`)."""


class GuestTrap(EdgescoreError):
    """The component trapped or ran past its bounds (memory, fuel or time per call), and its
    instance is discarded. A `Scorer` starts a fresh one on its next call; an `Engine`'s state
    went with it (restore one from a snapshot)."""
