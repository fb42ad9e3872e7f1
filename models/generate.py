#!/usr/bin/env python3
"""Writes the model registry: models/<name>/<version>/{model.onnx, manifest.json, reference.json}.

The network is the seed service's scoring model: width 3 -> Linear 128 -> ReLU -> Linear 128 -> ReLU
-> Linear 1, squeezed to one score per row, with a dynamic batch dimension. Weights and biases are
uniform(-0.1, 0.1) from a fixed seed per version, so the bytes are reproducible with the pinned
onnx/numpy in requirements.txt.

reference.json holds fixed inputs and the outputs of the ONNX reference evaluator (onnx's own numpy
implementation), cross-checked here against plain numpy arithmetic: the Rust tests compare tract
with it.

It also writes two tiny test models into tests/fixtures (see write_fixtures).

Usage: python generate.py [--out DIR] [--fixtures DIR]   (defaults: this folder, ../tests/fixtures)
"""

import argparse
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

NAME = "seed-mlp"
FEATURE_NAMES = ["feature_a", "feature_b", "feature_c"]
HIDDEN = 128
# One seed per version: version 2 is the same network with other weights.
VERSION_SEEDS = {1: 20231114, 2: 20261130}
OPSET = 17
IR_VERSION = 8


def build_model(seed: int) -> tuple[onnx.ModelProto, list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    width = len(FEATURE_NAMES)
    shapes = [(HIDDEN, width), (HIDDEN, HIDDEN), (1, HIDDEN)]
    layers = []
    for out_dim, in_dim in shapes:
        weight = rng.uniform(-0.1, 0.1, size=(out_dim, in_dim)).astype(np.float32)
        bias = rng.uniform(-0.1, 0.1, size=(out_dim,)).astype(np.float32)
        layers.append((weight, bias))

    initializers = []
    nodes = []
    current = "features"
    for i, (weight, bias) in enumerate(layers, start=1):
        initializers.append(numpy_helper.from_array(weight, f"linear{i}.weight"))
        initializers.append(numpy_helper.from_array(bias, f"linear{i}.bias"))
        out = f"linear{i}" if i < len(layers) else "linear_out"
        # Gemm with transB=1 is exactly torch.nn.Linear: x @ W^T + b.
        nodes.append(
            helper.make_node(
                "Gemm", [current, f"linear{i}.weight", f"linear{i}.bias"], [out], transB=1
            )
        )
        current = out
        if i < len(layers):
            nodes.append(helper.make_node("Relu", [current], [f"relu{i}"]))
            current = f"relu{i}"
    initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "squeeze_axes"))
    nodes.append(helper.make_node("Squeeze", [current, "squeeze_axes"], ["score"]))

    graph = helper.make_graph(
        nodes,
        NAME,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="edgescore-models",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model, layers


def plain_numpy(layers, x: np.ndarray) -> np.ndarray:
    """The same network written out by hand, as an independent check of the graph."""
    h = x.astype(np.float64)
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight.astype(np.float64).T + bias.astype(np.float64)
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0]


def reference_inputs(width: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    rows = [
        np.zeros(width),
        np.ones(width),
        -np.ones(width),
        np.array([0.1, 0.2, 0.3][:width]),
        np.full(width, 1000.0),
        np.full(width, -1e-6),
    ]
    rows += list(rng.uniform(-1.0, 1.0, size=(58, width)))
    return np.array(rows, dtype=np.float32)


def baseline(width: int) -> dict:
    """Feature statistics of the traffic the model expects: the seed's generator sends features
    uniform in [0, 1). Drift detection compares live means with these."""
    sample = np.random.default_rng(11).uniform(0.0, 1.0, size=(100_000, width))
    return {
        "sample_size": int(sample.shape[0]),
        "mean": [round(float(v), 6) for v in sample.mean(axis=0)],
        "std": [round(float(v), 6) for v in sample.std(axis=0)],
    }


def write_version(out_dir: str, version: int) -> None:
    model, layers = build_model(VERSION_SEEDS[version])
    data = model.SerializeToString()
    folder = os.path.join(out_dir, NAME, str(version))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.onnx"), "wb") as f:
        f.write(data)

    width = len(FEATURE_NAMES)
    x = reference_inputs(width)
    (scores,) = ReferenceEvaluator(model).run(None, {"features": x})
    by_hand = plain_numpy(layers, x)
    worst = float(np.max(np.abs(scores.astype(np.float64) - by_hand)))
    assert worst < 1e-4, f"reference evaluator and plain numpy disagree by {worst}"

    manifest = {
        "name": NAME,
        "version": version,
        "description": "Seed scoring MLP: 3 -> 128 -> ReLU -> 128 -> ReLU -> 1",
        "input_width": width,
        "feature_names": FEATURE_NAMES,
        "input_name": "features",
        "output_name": "score",
        "sha256": hashlib.sha256(data).hexdigest(),
        "weights_seed": VERSION_SEEDS[version],
        "baseline": baseline(width),
    }
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    reference = {
        "note": "outputs of onnx.reference.ReferenceEvaluator for these inputs (float32)",
        "inputs": [[float(v) for v in row] for row in x],
        "outputs": [float(v) for v in scores],
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")


def write_fixtures(out_dir: str) -> None:
    """Small models for tests: an identity scorer (score == the one feature, exactly, so tests
    can pick scores) with a [N, 1] output, a scaler by 1e30 (overflows to inf for inputs over
    ~3.4e8), and a model whose input is not [N, width]."""
    os.makedirs(out_dir, exist_ok=True)
    one = numpy_helper.from_array(np.ones((1, 1), dtype=np.float32), "w")
    zero = numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "b")
    identity = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[one, zero],
    )
    huge = numpy_helper.from_array(np.full((1, 1), 1e30, dtype=np.float32), "w")
    scale = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[huge, zero],
    )
    rank3 = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "rank3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 2])],
    )
    for name, graph in [("identity", identity), ("scale", scale), ("rank3", rank3)]:
        model = helper.make_model(
            graph, producer_name="edgescore-models", opset_imports=[helper.make_opsetid("", OPSET)]
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        with open(os.path.join(out_dir, f"{name}.onnx"), "wb") as f:
            f.write(model.SerializeToString())


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=here)
    parser.add_argument("--fixtures", default=os.path.join(here, "..", "tests", "fixtures"))
    args = parser.parse_args()
    for version in sorted(VERSION_SEEDS):
        write_version(args.out, version)
    write_fixtures(args.fixtures)


if __name__ == "__main__":
    main()
