"""The contract test kit: every registered app, on its tiny config and sample data, goes
train -> killed with SIGKILL at a random point -> resume -> evaluate -> export (float32 and its
smallest variant) -> predict on the edge path with TensorFlow unimportable -> info.

A new app is covered by registering; its own test file holds only what is particular to
it. The runs are trained once per session (conftest `contract_run`) and shared with the
apps' own tests.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, run_without_tensorflow
from dlkit import io
from dlkit.export.bundle import inputs_of_golden
from dlkit.registry import app_names

pytest.importorskip("keras")

APPS = app_names()


def close(a, b, tolerance=1e-3, path="result"):
    """Asserts two JSON-like results agree: same keys and strings, numbers within tolerance."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            close(a[key], b[key], tolerance, f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, tolerance, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, abs_tol=tolerance), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.fixture(params=APPS)
def trained(request, contract_run):
    return contract_run(request.param)


def test_app_declares_the_contract():
    from dlkit.app import INPUT_KINDS, App
    from dlkit.config import TrainConfig
    from dlkit.registry import get_app

    for name in APPS:
        app = get_app(name)
        assert isinstance(app, App) and app.name == name
        assert app.summary and app.data_help and app.input_kind in INPUT_KINDS
        assert app.gate.name and app.monitor[1] in ("min", "max")
        default, tiny = app.default_config(), app.default_config(tiny=True)
        assert isinstance(default, TrainConfig) and type(default) is type(tiny) and default != tiny
        assert set(app.architecture) <= set(vars(default)), f"{name}: architecture names unknown fields"
        flags = [option.flag for option in app.predict_options]
        assert len(set(flags)) == len(flags)


def test_a_killed_run_resumes_to_a_complete_run(trained):
    run_dir = trained.run_dir
    for name in ("config.json", "manifest.json", "model.keras", "model.json", "metrics.json"):
        assert (run_dir / name).exists(), (name, trained.killed)
    state = io.read_json(run_dir / "checkpoint" / "state.json")
    assert state["complete"] is True
    epochs = [r["epoch"] for r in io.read_jsonl(run_dir / "history.jsonl") if r["event"] == "epoch"]
    # Killed, resumed: every epoch once, in order, wherever the kill came.
    assert epochs == list(range(state["epochs_done"])) and len(epochs) >= 2, trained.killed
    assert not [p.name for p in run_dir.rglob(".*")], "a temporary file outlived the resume"
    before = (run_dir / "model.keras").stat().st_mtime_ns
    again = run_cli(trained.app.name, "train", "--resume", "--run-dir", run_dir)
    assert again.exit_code == 0 and "already complete" in again.output, again.output
    assert (run_dir / "model.keras").stat().st_mtime_ns == before
    # Options beside --resume are held to the run's own: the same pass, others stop it.
    record = io.read_json(run_dir / "config.json")
    held = record["config"]
    assert record["tiny"] is True  # trained with --tiny, which a resume may repeat
    same = run_cli(
        trained.app.name, "train", "--resume", "--run-dir", run_dir, "--epochs", held["epochs"], "--tiny"
    )
    assert same.exit_code == 0 and "already complete" in same.output, same.output
    more = held["epochs"] + 1
    other = run_cli(trained.app.name, "train", "--resume", "--run-dir", run_dir, "--epochs", more, "--jit")
    assert other.exit_code == 2 and other.output.startswith("Error: "), other.output
    assert other.output.count("\n") == 1 and f"epochs={held['epochs']} (asked {more})" in other.output
    assert "--jit off (asked on)" in other.output and f"--init {run_dir}" in other.output
    assert (run_dir / "model.keras").stat().st_mtime_ns == before
    metrics = io.read_json(run_dir / "metrics.json")["keras"]
    gate = trained.app.gate_metric(io.read_json(run_dir / "model.json"))
    assert np.isfinite(metrics["val"][gate.name])


def test_evaluate_reproduces_the_run_metrics(trained, tmp_path):
    result = run_cli(
        trained.app.name,
        "evaluate",
        "--model",
        trained.run_dir,
        "--split",
        "val",
        "--json",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    gate = trained.app.gate_metric(io.read_json(trained.run_dir / "model.json"))
    recorded = io.read_json(trained.run_dir / "metrics.json")["keras"]["val"]
    assert report[gate.name] == pytest.approx(recorded[gate.name], abs=1e-6)
    assert (tmp_path / "evaluation.json").exists()
    # The split decoded again is the one training scored, byte for byte.
    assert len(report["data_fingerprint"]) == 16
    assert report["data_fingerprint"] == recorded["data_fingerprint"]
    assert "note:" not in result.output and "recorded_data_fingerprints" not in report
    assert "rows" not in report  # the evaluator's per-row handoff to `annotate` is never kept
    for pair in report.get("worst_pairs", []):  # face: the pairs decided wrong, by their photos
        assert (pair["distance"] > report["threshold"]) == pair["same_person"]
        assert all(Path(photo).is_file() for photo in pair["photos"])


def test_evaluate_says_when_its_split_differs_from_the_recorded_one(contract_run, tmp_path):
    trained = contract_run("classify")
    for name in ("model.keras", "model.json", "metrics.json"):
        (tmp_path / name).write_bytes((trained.run_dir / name).read_bytes())
    metrics = io.read_json(tmp_path / "metrics.json")
    made_here = metrics["keras"]["val"]["data_fingerprint"]
    # As if made elsewhere: the run's scores and its export checks all recorded another split.
    metrics["keras"]["val"]["data_fingerprint"] = "0123456789abcdef"
    io.write_json(tmp_path / "metrics.json", metrics)
    meta = io.read_json(tmp_path / "model.json")
    for record in meta["exports"].values():
        assert record["val"]["data_fingerprint"] == made_here
        record["val"]["data_fingerprint"] = "0123456789abcdef"
    io.write_json(tmp_path / "model.json", meta)
    result = run_cli("classify", "evaluate", "--model", tmp_path, "--split", "val", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["data_fingerprint"] == made_here
    assert report["recorded_data_fingerprints"] == ["0123456789abcdef"]
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and made_here in notes[0] and "0123456789abcdef" in notes[0], result.output
    # The test split's record was left as made: no note.
    test = run_cli("classify", "evaluate", "--model", tmp_path, "--split", "test")
    assert test.exit_code == 0 and "note:" not in test.output, test.output


def test_exports_pass_the_gate_and_replay_their_golden_vectors(trained):
    meta = io.read_json(trained.run_dir / "model.json")
    for quantize in trained.exports:
        record = meta["exports"][quantize]
        assert record["val"]["drop_points"] <= record["val"]["max_drop"]
        golden = np.load(trained.run_dir / record["golden"], allow_pickle=False)
        inputs = inputs_of_golden(golden)
        outputs = trained.app.tflite_runner(trained.run_dir / record["file"], meta)(inputs)
        for k, output in enumerate(outputs):
            np.testing.assert_allclose(output, golden[f"tflite_output_{k}"], atol=1e-5)
    sizes = [meta["exports"][q]["bytes"] for q in trained.exports]
    assert sizes[1] < sizes[0], "the smallest variant is not smaller than float32"


def test_edge_predict_without_tensorflow_matches_keras(trained, tmp_path):
    import dlkit

    inputs = trained.app.sample_inputs(trained.folder)
    model = trained.run_dir / "model.tflite"
    out = tmp_path / "predictions"  # apps that write files write them here, not into ./runs
    result = run_without_tensorflow(
        [trained.app.name, "predict", *inputs, "--model", model, "--json", "--out", out]
    )
    assert "edge-ok" in result.stdout, result.stderr[-2000:]
    edge = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [record["input"] for record in edge] == [str(i) for i in inputs]
    assert len(json.loads((out / "predictions.json").read_text())) == len(inputs)
    keras_results = dlkit.load(trained.run_dir / "model.keras", prefer="keras").predict(inputs)
    for record, expected in zip(edge, keras_results):
        close({k: v for k, v in record.items() if k != "input"}, expected)


def test_bad_input_is_a_one_line_error(trained, tmp_path):
    if trained.app.input_kind == "text":
        bad = ""
    else:
        bad = tmp_path / "empty.png"
        bad.write_bytes(b"")
    result = run_cli(trained.app.name, "predict", bad, "--model", trained.run_dir / "model.tflite")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1


def test_info_shows_metadata_and_metrics(trained):
    """`info --json`: everything; `info`: a summary naming the file, the exports and the
    headline metric's figures, one line per model variant."""
    result = run_cli(trained.app.name, "info", "--model", trained.run_dir, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["app"] == trained.app.name and "keras" in info["metrics"]
    assert set(trained.exports) <= set(info["exports"])
    summary = run_cli(trained.app.name, "info", "--model", trained.run_dir)
    assert summary.exit_code == 0, summary.output
    lines = summary.output.splitlines()
    assert lines[0].split() == ["app", f"{trained.app.name}:", *info["task"].split()]
    assert str(Path(info["model_file"])) in summary.output
    for name, export in info["exports"].items():
        assert f"export  {name}: {export['file']}" in summary.output
    for name in (trained.app.gate.name, *trained.app.headline):  # trigger: event recall, false accepts
        keras_val = info["metrics"]["keras"]["val"][name]
        assert any(
            line.split()[:3] == [name, "keras:", "val"] and f"{keras_val:.3f}" in line for line in lines
        )
    assert lines[-1] == f"(all metadata and metrics: dlkit {trained.app.name} info --json)"
    # Every input is shown with its own shape (mlm's masked positions are not its tokens').
    spec = info["input"]
    shown = {}  # input name -> the shape text after its group of names
    for group in (
        next(line for line in lines if line.split()[:1] == ["input"]).split("input", 1)[1].split(";")
    ):
        names, _, shape = group.partition("(")
        for name in names.replace(spec.get("dtype") or "", "").replace(",", " ").split():
            shown[name] = shape.split(")")[0]
    for name in spec.get("names") or [spec["name"]]:
        assert shown[name] == ", ".join(map(str, spec.get(name, spec["shape"]))), (name, lines)
    # The command that trains a model like it: --tiny and --set items that rebuild its config.
    import shlex

    from dlkit.config import apply_overrides
    from dlkit.engine import config_of

    words = shlex.split(
        next(line for line in lines if line.split()[:2] == ["trained", "by"]).split("by", 1)[1]
    )
    assert words[:4] == ["dlkit", trained.app.name, "train", "--tiny"], words
    if info["data"]:
        assert words[4:6] == ["--data", info["data"]], words
    items = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    rebuilt = apply_overrides(trained.app.default_config(tiny=True), items)
    assert rebuilt == config_of(trained.app, info), words
    assert len(words) == 4 + 2 * bool(info["data"]) + 2 * len(items), words
    # One column for the keys, however long the headline metric's name.
    width = lines[0].index("app") + len("app")
    assert all(line[width : width + 2] == "  " and line[width + 2] != " " for line in lines[:-1]), lines


def hand_edits(app, meta):
    """(what, edited model.json) pairs that no longer describe the model."""
    edits = [(f"no {key}", {k: v for k, v in meta.items() if k != key}) for key in ("input", *app.meta_keys)]
    edits.append(("another app", {**meta, "app": next(name for name in APPS if name != app.name)}))
    if meta.get("labels"):
        edits.append(("a label too few", {**meta, "labels": meta["labels"][:-1]}))
        edits.append(("a label twice", {**meta, "labels": [*meta["labels"], meta["labels"][0]]}))
        edits.append(("labels as a number", {**meta, "labels": 3}))
    if isinstance(meta.get("config"), dict):
        edits.append(("a setting as text", {**meta, "config": {**meta["config"], "batch_size": "32"}}))
        edits.append(("settings as a list", {**meta, "config": [1]}))
    return edits


def test_a_hand_edited_model_json_is_refused_in_one_line(trained, tmp_path):
    """Every verb that loads a model refuses a model.json that does not describe it,
    before any input is read."""
    meta = io.read_json(trained.run_dir / "model.json")
    if trained.app.input_kind == "text":
        item = "some [MASK] text" if trained.app.name == "mlm" else "some text"
    else:
        item = trained.app.sample_inputs(trained.folder)[0]

    def folder_with(what, model_json):
        """The float TFLite model, its side files (a vocabulary...) and `model_json`."""
        folder = tmp_path / what.replace(" ", "_")
        folder.mkdir()
        for path in trained.run_dir.iterdir():
            variant = (
                path.name.startswith("model.") and path.suffix == ".tflite" and path.name != "model.tflite"
            )
            if path.is_file() and path.name not in ("model.json", "model.keras") and not variant:
                (folder / path.name).write_bytes(path.read_bytes())
        io.write_json(folder / "model.json", model_json)
        return folder

    # The control: the same folder with the model.json as written predicts.
    control = run_cli(trained.app.name, "predict", item, "--model", folder_with("as written", meta))
    assert control.exit_code == 0, control.output
    for what, edited in hand_edits(trained.app, meta):
        folder = folder_with(what, edited)
        for verb in (["predict", item, "--out", tmp_path / "out"], ["evaluate"], ["info"]):
            result = run_cli(trained.app.name, *verb, "--model", folder)
            assert result.exit_code == 2, (what, verb, result.output)
            assert "Traceback" not in result.output, (what, verb, result.output)
            errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and str(folder) in errors[0], (what, verb, result.output)
