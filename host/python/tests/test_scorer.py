"""Scores from the installed wheel's component against onnxruntime on the same model files."""

import numpy as np
import onnxruntime
import pytest

import edgescore

from conftest import manifest


@pytest.mark.parametrize("version", [1, 2])
def test_scores_equal_onnxruntime(models, version):
    path = models / str(version) / "model.onnx"
    scorer = edgescore.Scorer.from_file(path)
    rows = np.random.default_rng(version).random((20_000, 3)).astype(np.float32)
    expected = onnxruntime.InferenceSession(str(path)).run(None, {"features": rows})[0].ravel()
    scores = scorer.score(rows)
    assert scores.dtype == np.float32 and scores.shape == (20_000,)
    assert np.max(np.abs(scores - expected)) <= 1e-5


def test_the_default_is_the_registry_default_and_takes_lists_and_float64(models):
    scorer = edgescore.Scorer.default()
    assert scorer.info == edgescore.ModelInfo("features", "score", 3, manifest(2)["sha256"])
    rows = [[0.1, 0.2, 0.3], [0.9, 0.0, 0.5]]
    from_file = edgescore.Scorer.from_bytes((models / "2" / "model.onnx").read_bytes())
    assert np.array_equal(scorer.score(rows), from_file.score(np.array(rows, dtype=np.float64)))


def test_bad_input_is_the_wit_error_with_the_components_message():
    scorer = edgescore.Scorer.default()
    with pytest.raises(edgescore.WidthMismatch) as wrong:
        scorer.score(np.zeros((2, 4)))
    assert wrong.value.width == 3
    with pytest.raises(edgescore.EmptyBatch):
        scorer.score(np.zeros((0, 3)))
    rows = np.zeros((9000, 3))
    rows[8500, 1] = np.nan
    with pytest.raises(edgescore.NonFinite) as non_finite:
        scorer.score(rows)
    assert non_finite.value.row == 8500
    with pytest.raises(edgescore.InvalidModel) as invalid:
        edgescore.Scorer.from_bytes(b"not onnx")
    assert "proto" in str(invalid.value).lower()


def test_a_guest_past_its_bounds_raises_and_the_scorer_recovers(models):
    onnx = (models / "1" / "model.onnx").read_bytes()
    with pytest.raises(edgescore.GuestTrap, match="fuel"):
        edgescore.Scorer.from_bytes(onnx, edgescore.Bounds(fuel_per_call=1_000_000))
    small = edgescore.Scorer.default(edgescore.Bounds(memory_limit_bytes=4 << 20))
    with pytest.raises(edgescore.GuestTrap):
        small.score(np.random.default_rng(0).random((8192, 3)))
    # A fresh instance takes the next call.
    assert small.score([[0.1, 0.2, 0.3]]).shape == (1,)
