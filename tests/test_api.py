"""The Python API: `dlkit.load(...)` by app name or path, predict on files, folders,
arrays and text; the same results as the CLI; cheap to import and TensorFlow-free."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import dlkit
from conftest import EDGE_BLOCKED
from dlkit.cli import cli
from dlkit.errors import DlkitError, InvalidInputError


def test_import_is_cheap_and_shipped_models_predict_without_tensorflow():
    code = (
        "import sys\n"
        f"for name in {EDGE_BLOCKED!r}:\n"
        "    sys.modules[name] = None\n"
        "import numpy as np, dlkit\n"
        "print(dlkit.load('translate').predict(['3 May 1979'])[0]['translation'])\n"
        "result = dlkit.load('classify').predict(np.full((40, 60, 3), 200, np.uint8), top_k=2)[0]\n"
        "print(len(result['top_k']), result['label'] in dlkit.load('classify').labels)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1979-05-03", "2", "True"]


def test_load_a_run_and_predict_files_folders_and_arrays_like_the_cli(tiny_run, bad_files, tiny_folder):
    model = dlkit.load(tiny_run)
    assert model.app.name == "classify" and model.bundle.is_tflite
    [from_file] = model.predict(str(bad_files["good"]))
    from_array = model.predict([np.full((30, 40, 3), 120, np.uint8)])[0]
    assert from_array == from_file  # good.jpg is that uniform image
    cli_result = CliRunner().invoke(
        cli, ["classify", "predict", str(bad_files["good"]), "--model", str(tiny_run), "--json"]
    )
    record = json.loads(cli_result.output.strip().splitlines()[-1])
    assert {k: v for k, v in record.items() if k != "input"} == from_file
    folder = model.predict(tiny_folder / "red", top_k=1)
    assert len(folder) == len(list((tiny_folder / "red").glob("*.png")))
    assert all(len(r["top_k"]) == 1 and r["label"] in model.labels for r in folder)


def test_bad_inputs_and_unknown_models_raise_one_line_errors(tiny_run, bad_files, tmp_path):
    model = dlkit.load(tiny_run)
    with pytest.raises(InvalidInputError, match="empty file"):
        model.predict([bad_files["empty"]])
    with pytest.raises(InvalidInputError, match="expected \\(height, width"):
        model.predict([np.zeros((2, 3, 4, 5))])
    with pytest.raises(DlkitError, match="no such model"):
        dlkit.load(tmp_path / "nothing")
    with pytest.raises(DlkitError, match="has no option"):
        model.predict([bad_files["good"]], conf=0.5)
    # evaluate takes the predict options that change how a model runs, and no others.
    with pytest.raises(DlkitError, match="classify evaluate has no option augment, top_k; it has: none"):
        model.evaluate(split="val", top_k=2, augment=True)
