"""`examples/python_host.py` runs on the installed wheel as written."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python_host.py"


def test_the_example_runs(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "100,000 scores" in out
    assert "processed 60, rejected [(60, 'invalid-user-id')]" in out
    assert "60 events in the windows after a restore" in out
