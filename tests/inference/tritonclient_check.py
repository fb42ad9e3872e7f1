"""tritonclient, the Open Inference Protocol's client, against an edgescore host.

Usage: tritonclient_check.py HOST:PORT MODELS_DIR [TOKEN]

Every call a KServe or Triton user makes: health, metadata, the repository index, inference with
JSON tensors and with binary tensors, a versioned inference, a wrong shape, a wrong datatype, an
unknown model, and (with TOKEN) a call without it. Scores are compared with onnxruntime running
the same model file. Exits non-zero with one line per failed check.
"""

import sys

import numpy as np
import onnxruntime
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

TOLERANCE = 1e-5


def main() -> int:
    url, models = sys.argv[1], sys.argv[2]
    token = sys.argv[3] if len(sys.argv) > 3 else None
    # tritonclient adds its own headers to the dict it is given: a fresh one per call.
    auth = {"Authorization": f"Bearer {token}"} if token else None
    client = triton.InferenceServerClient(url=url)

    def headers():
        return dict(auth) if auth else None
    failures = []

    def check(what, ok, detail=""):
        if not ok:
            failures.append(f"{what}: {detail}")

    def expect_error(what, status, call):
        try:
            call()
        except InferenceServerException as e:
            check(what, e.status() == str(status), f"status {e.status()}, {e.message()}")
        else:
            failures.append(f"{what}: answered, where {status} was expected")

    check("live", client.is_server_live())
    check("ready", client.is_server_ready())
    server = client.get_server_metadata(headers=headers())
    check("server metadata", "binary_tensor_data" in server["extensions"], server)
    meta = client.get_model_metadata("seed-mlp", headers=headers())
    check("model metadata", meta["versions"] == ["1", "2"], meta)
    check(
        "model input",
        meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}],
        meta,
    )
    check("model ready", client.is_model_ready("seed-mlp", headers=headers()))
    check("version ready", client.is_model_ready("seed-mlp", "1", headers=headers()))
    index = client.get_model_repository_index(headers=headers())
    check(
        "repository index",
        [(e["name"], e["version"], e["state"]) for e in index]
        == [("seed-mlp", "1", "READY"), ("seed-mlp", "2", "READY")],
        index,
    )

    rows = np.random.default_rng(7).random((64, 3), dtype=np.float32)
    expected = {
        version: onnxruntime.InferenceSession(f"{models}/seed-mlp/{version}/model.onnx")
        .run(None, {"features": rows})[0]
        .ravel()
        for version in ("1", "2")
    }

    def infer(version="", binary_in=True, binary_out=None, data=rows, datatype="FP32", model="seed-mlp"):
        tensor = triton.InferInput("features", list(data.shape), datatype)
        tensor.set_data_from_numpy(data, binary_data=binary_in)
        outputs = None
        if binary_out is not None:
            outputs = [triton.InferRequestedOutput("score", binary_data=binary_out)]
        result = client.infer(model, [tensor], model_version=version, outputs=outputs, headers=headers())
        return result.as_numpy("score").ravel()

    for name, kwargs, version in [
        ("infer, JSON tensors", dict(binary_in=False, binary_out=False), "2"),
        ("infer, binary tensors", dict(binary_in=True, binary_out=True), "2"),
        ("infer, the default outputs", dict(), "2"),
        ("infer, version 1", dict(version="1", binary_in=False, binary_out=False), "1"),
    ]:
        scores = infer(**kwargs)
        worst = float(np.max(np.abs(scores - expected[version])))
        check(name, scores.shape == (64,) and worst <= TOLERANCE, f"worst difference {worst}")

    expect_error("a wrong shape", 400, lambda: infer(data=np.zeros((2, 4), dtype=np.float32)))
    expect_error(
        "a wrong datatype", 400, lambda: infer(data=np.zeros((2, 3), dtype=np.int64), datatype="INT64")
    )
    expect_error("an unknown model", 404, lambda: infer(model="no-such-model"))
    expect_error("an unknown version", 404, lambda: infer(version="9"))
    if token:
        expect_error(
            "no token",
            401,
            lambda: client.infer("seed-mlp", [triton.InferInput("features", [1, 3], "FP32")]),
        )

    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
