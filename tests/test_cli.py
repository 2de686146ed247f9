import subprocess
import sys

import pytest
from click.testing import CliRunner

from dlkit.cli import cli
from dlkit.registry import app_names, get_app


def test_help_lists_every_app_and_verb():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in app_names():
        assert name in result.output
        sub = CliRunner().invoke(cli, [name, "--help"])
        assert sub.exit_code == 0
        for verb in ("train", "evaluate", "export", "predict", "info"):
            assert verb in sub.output


def test_data_help_says_what_each_app_reads():
    expected = {"classify": "<class>/<image>", "detect": "COCO JSON", "translate": "TSV/CSV"}
    for name, words in expected.items():
        result = CliRunner(env={"COLUMNS": "400"}).invoke(cli, [name, "train", "--help"])
        assert result.exit_code == 0 and words in result.output, result.output


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from dlkit.cli import cli\n"
        "for args in (['--help'], ['classify', '--help'], ['classify', 'train', '--help'], ['classify', 'predict', '--help']):\n"
        "    try:\n"
        "        cli(args)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_unknown_app_and_unknown_verb():
    assert CliRunner().invoke(cli, ["segmentify"]).exit_code == 2
    assert CliRunner().invoke(cli, ["classify", "dance"]).exit_code == 2


def test_info_without_a_model_shows_the_default_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DLKIT_SAVED_MODELS", str(tmp_path))
    result = CliRunner().invoke(cli, ["classify", "info", "--json"])
    assert result.exit_code == 0, result.output
    assert '"default_config"' in result.output and '"fine_tune_layers"' in result.output
    result = CliRunner().invoke(cli, ["classify", "info"])
    assert result.exit_code == 0 and "no model (none given, none shipped)" in result.output
    assert "  fine_tune_layers = " in result.output


def test_predict_and_evaluate_without_a_shipped_model_say_to_give_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DLKIT_SAVED_MODELS", str(tmp_path))
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG")  # never read: the missing model is found first
    for verb, args in (("predict", [str(image)]), ("evaluate", [])):
        result = CliRunner().invoke(cli, ["detect", verb, *args])
        assert result.exit_code == 2, result.output
        assert "no detect model ships" in result.output and "--model" in result.output
        assert "Traceback" not in result.output


def test_report_lines_show_intervals_classes_and_groups():
    from dlkit.cli import report_lines

    report = {
        "accuracy": 0.8,
        "accuracy_ci95": [0.75, 0.85],
        "count": 100,
        "per_class": {"cat": {"precision": 0.5, "support": 3}},
        "diagnostic": {"count": 10, "accuracy": 0.7},
        "peers": {"vader": {"accuracy": 0.6, "accuracy_ci95": [0.5, 0.7]}},
        "labels": ["cat"],
    }
    lines = [
        "          accuracy: 0.8000 [0.7500, 0.8500]",
        "               cat: precision 0.5000, support 3",
        "        diagnostic: count 10, accuracy 0.7000",
        "      peers: vader: accuracy 0.6000 [0.5000, 0.7000]",
    ]
    assert report_lines(report) == lines
    # The options the model ran with (`evaluate --augment`) head the report.
    assert report_lines({**report, "options": {"augment": True, "conf": 0.5}}) == [
        "           options: augment True, conf 0.5",
        *lines,
    ]
    # A label longer than the column widens it for every line, so the colons stay aligned.
    wide = {"accuracy": 0.8, "peers": {"tfidf_logreg": {"accuracy": 0.75}}}
    assert report_lines(wide) == [
        "           accuracy: 0.8000",
        "peers: tfidf_logreg: accuracy 0.7500",
    ]


@pytest.mark.parametrize("name", app_names())
def test_out_of_range_options_are_usage_errors(name, tmp_path):
    """Every bounded option, below its range, stops before any work with click's one-line
    usage error (exit 2), on every verb that takes it."""
    app = get_app(name)
    (tmp_path / "x.txt").write_text("x")
    item = [] if app.input_kind == "text" else [str(tmp_path / "x.txt")]
    cases = [
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--seed", "-1"], "--seed"),
        (["export", "--max-drop", "-1"], "--max-drop"),
        (["predict", *item, "--batch-size", "0"], "--batch-size"),
    ]
    cases += [
        (["predict", *item, option.flag, str(option.min - 1)], option.flag)
        for option in app.predict_options
        if option.min is not None
    ]
    cases += [
        (["predict", *item, option.flag, str(option.max + 1)], option.flag)
        for option in app.predict_options
        if option.max is not None
    ]
    for args, flag in cases:
        result = CliRunner().invoke(cli, [name, *args])
        assert result.exit_code == 2, (args, result.output)
        assert f"Invalid value for '{flag}'" in result.output, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.parametrize("name", app_names())
def test_unusable_output_folders_stop_before_any_work(name, tmp_path):
    """A file where a folder is expected (or under it) is a one-line error, exit 2, on
    every verb that writes a folder, before a model is loaded or data read."""
    app = get_app(name)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    item = ["some text"] if app.input_kind == "text" else [str(blocker)]
    cases = [
        ["predict", *item, "--out", str(blocker)],
        ["evaluate", "--out", str(blocker / "sub")],
        ["export", "--out", str(blocker)],
        ["train", "--tiny", "--run-dir", str(blocker / "run")],
    ]
    cases += [
        ["predict", *item, option.flag, str(blocker)]
        for option in app.predict_options
        if option.metavar == "DIR"
    ]
    for args in cases:
        result = CliRunner().invoke(cli, [name, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "must be a folder, and" in result.output and str(blocker) in result.output, (
            args,
            result.output,
        )
        assert result.output.count("\n") == 1, (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_folder_given_as_the_text_file_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["translate", "predict", "--file", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path}: a folder, not a text file of one input per line"


def test_a_keras_model_on_an_edge_install_says_which_extra(tmp_path):
    from PIL import Image

    from conftest import run_without_tensorflow
    from dlkit.paths import shipped_model_dir

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    keras_file = shipped_model_dir("classify") / "model.keras"
    result = run_without_tensorflow(["classify", "predict", image, "--model", keras_file])
    assert result.returncode == 2 and "edge-ok" not in result.stdout
    assert result.stderr.strip() == (
        f"Error: {keras_file}: a .keras model needs TensorFlow: pip install 'dlkit[train]', "
        "or give the exported .tflite (dlkit <app> export)"
    )


def test_a_training_that_fails_on_its_data_leaves_the_run_folder_free(tmp_path):
    run_dir = tmp_path / "run"
    args = ["classify", "train", "--tiny", "--run-dir", str(run_dir), "--data", str(tmp_path / "missing")]
    for _ in range(2):  # the same command again: not "already holds a run"
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "no such data folder" in result.output, result.output
        assert not run_dir.exists()


def test_an_error_whose_text_holds_line_breaks_is_printed_on_one_line():
    """A library's message inside ours (tarfile lists every compression it tried, one per
    line) must not spill onto lines that look like output."""
    import click

    from dlkit.cli import handle_errors
    from dlkit.errors import InvalidInputError

    @click.command()
    @handle_errors
    def broken():
        raise InvalidInputError("data.tgz: not readable (tried:\n- gz: bad\n- bz2: bad\n)")

    from click.testing import CliRunner

    result = CliRunner().invoke(broken)
    assert result.exit_code == 2
    assert result.output.splitlines() == ["Error: data.tgz: not readable (tried:; - gz: bad; - bz2: bad; )"]


def test_ctrl_c_in_predict_keeps_what_was_predicted_and_train_says_how_to_resume(tmp_path, monkeypatch):
    """Ctrl-C part-way through predict still writes predictions.json with the inputs done
    and says how far it got (exit 130); in train it points to --resume."""
    import json

    from dlkit import predict, runner

    original = predict.Predictor.__call__

    def stopped_after_three(self, items, **kwargs):
        for k, prediction in enumerate(original(self, items, **kwargs)):
            if k == 3:
                raise KeyboardInterrupt
            yield prediction

    monkeypatch.setattr(predict.Predictor, "__call__", stopped_after_three)
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"a fine film, number {k}\n" for k in range(10)))
    result = CliRunner().invoke(
        cli, ["sentiment", "predict", "--file", str(texts), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 130, result.output
    assert "interrupted after 3 of 10 inputs" in result.output and "--resume" not in result.output
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [record["input"] for record in saved] == [f"a fine film, number {k}" for k in range(3)]

    def interrupted_training(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "train", interrupted_training)
    result = CliRunner().invoke(cli, ["sentiment", "train", "--tiny", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 130 and "continue the run with --resume" in result.output


def test_info_on_a_model_whose_metrics_file_is_corrupt_still_describes_it(tmp_path):
    import shutil

    from dlkit.paths import shipped_model_dir

    shipped = shipped_model_dir("translate")
    for name in ("model.json", "model.tflite"):
        shutil.copy2(shipped / name, tmp_path / name)
    (tmp_path / "metrics.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["translate", "info", "--model", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "metrics.json: unreadable (" in result.output and "model.tflite" in result.output
    result = CliRunner().invoke(cli, ["translate", "info", "--model", str(tmp_path), "--json"])
    assert result.exit_code == 0 and '"metrics_error"' in result.output


def test_info_shows_the_gate_of_the_model_and_intervals_to_the_places_that_tell_them_apart(tmp_path):
    """The sentence model's headline is BLEU (its gate), the date model's exact match;
    a figure shows with as many decimals as its interval needs: 0.9996 is not 1.000."""
    import shutil

    from dlkit import io
    from dlkit.paths import shipped_model_dir

    shipped = shipped_model_dir("translate")
    for folder, gate in ((tmp_path / "dates", "exact_match"), (tmp_path / "bible", "bleu")):
        folder.mkdir()
        for name in ("model.json", "model.tflite"):
            shutil.copy2((shipped if gate == "exact_match" else shipped / "bible") / name, folder / name)
        report = {"count": 10000, gate: 1.0, f"{gate}_ci95": [0.99962, 1.0]}
        io.write_json(
            folder / "metrics.json",
            {"keras": {"test": report, "val": {gate: 0.9132, f"{gate}_ci95": [0.8654, 0.9451]}}},
        )
        result = CliRunner().invoke(cli, ["translate", "info", "--model", str(folder)])
        assert result.exit_code == 0, result.output
        line = next(line for line in result.output.splitlines() if line.split()[:1] == [gate])
        assert line.split(None, 1)[1] == "keras: test 1.0000 [0.9996, 1.0000], val 0.913 [0.865, 0.945]"


def test_info_of_a_ported_model_names_its_origin_not_a_training_command():
    result = CliRunner().invoke(cli, ["face", "info"])
    assert result.exit_code == 0, result.output
    assert "ported from  dlib's face descriptor" in result.output and "trained by" not in result.output
    result = CliRunner().invoke(cli, ["segment", "info"])  # the shipped recipe, from its config
    line = next(line for line in result.output.splitlines() if "trained by" in line)
    assert "--set backbone=efficientnet_lite0" in line and "--set image_data=2" in line
