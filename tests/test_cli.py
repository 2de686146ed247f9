import subprocess
import sys

from click.testing import CliRunner

from dlkit.cli import cli
from dlkit.registry import app_names


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
    result = CliRunner().invoke(cli, ["classify", "info"])
    assert result.exit_code == 0, result.output
    assert '"default_config"' in result.output and '"fine_tune_layers"' in result.output


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
    assert report_lines(report) == [
        "          accuracy: 0.8000 [0.7500, 0.8500]",
        "               cat: precision 0.5000, support 3",
        "        diagnostic: count 10, accuracy 0.7000",
        "      peers: vader: accuracy 0.6000 [0.5000, 0.7000]",
    ]
