"""Where the repository's models are (the tests run against the installed wheel, not the source)."""

import json
import os
from pathlib import Path

import pytest

MODELS = Path(os.environ.get("EDGESCORE_MODELS_DIR", Path(__file__).resolve().parents[3] / "models"))


@pytest.fixture(scope="session")
def models() -> Path:
    return MODELS / "seed-mlp"


def manifest(version: int) -> dict:
    return json.loads((MODELS / "seed-mlp" / str(version) / "manifest.json").read_text())
