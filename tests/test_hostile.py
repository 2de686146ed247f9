"""Every registered app's `predict`, on the hostile inputs of its input kind (tests/hostile.py),
one at a time and all in one batch, on the contract kit's exported model (the edge path):
a result for unusual but valid input, a one-line error naming the input for bad input
(a "skipped" line in a batch), never a traceback and never a partial output file.

Bad training data of the text and audio apps must stop `train` with one line before any
epoch, leaving the run folder free. A new app joins by registering. The tally of inputs tried is printed in the test summary.
"""

import json
import time
from pathlib import Path

import hostile
import pytest

from conftest import run_cli
from dlkit.registry import app_names, get_app

pytest.importorskip("keras")

BOUND_SECONDS = 120  # far above any case's time: a case that takes longer is a hang


def cases_of(app, root):
    """[(case, argv, shown, outcome)]: `shown` is how messages name the input."""
    if app.input_kind == "image":
        return [
            (case, [str(path)], str(path), outcome) for case, path, outcome in hostile.hostile_images(root)
        ]
    if app.input_kind == "audio":
        return [
            (case, [str(path)], str(path), outcome) for case, path, outcome in hostile.hostile_audio(root)
        ]
    if app.input_kind == "text":
        texts = [(case, [text], None, outcome) for case, text, outcome in hostile.hostile_texts()]
        files = [
            (f"--file: {case}", ["--file", str(path)], str(path), outcome)
            for case, path, outcome in hostile.hostile_text_files(root)
        ]
        return texts + files
    raise AssertionError(f"no hostile inputs for input kind {app.input_kind!r}")


def check_output_folder(out):
    """Nothing half-written: no temporary files, and predictions.json is whole JSON."""
    if not out.exists():
        return []
    problems = [f"temporary file left: {p.name}" for p in out.iterdir() if p.name.startswith(".")]
    if (out / "predictions.json").exists():
        try:
            json.loads((out / "predictions.json").read_text())
        except ValueError:
            problems.append("predictions.json is not whole JSON")
    return problems


def judge(result, outcome, shown, seconds):
    """What is wrong with one run (empty: nothing)."""
    problems = []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"traceback: {type(result.exception).__name__}: {result.exception}")
    elif "Traceback" in result.output:
        problems.append("a traceback was printed")
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    expected = {"ok": (0,), "error": (2,), "clean": (0, 2)}[outcome]
    if result.exit_code not in expected:
        problems.append(f"exit {result.exit_code}, expected {' or '.join(map(str, expected))}")
    if result.exit_code == 2 and len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    if result.exit_code == 2 and shown and errors and shown not in errors[0]:
        problems.append("the error does not name the input")
    if seconds > BOUND_SECONDS:
        problems.append(f"took {seconds:.0f} s")
    return problems


@pytest.fixture(params=app_names())
def app_model(request, contract_run):
    run = contract_run(request.param)
    return run.app, run.run_dir / "model.tflite"


def test_every_hostile_input_alone(app_model, tmp_path):
    app, model = app_model
    failures = []
    for index, (case, argv, shown, outcome) in enumerate(cases_of(app, tmp_path / "inputs")):
        out = tmp_path / f"out{index}"
        start = time.monotonic()
        result = run_cli(app.name, "predict", *argv, "--model", model, "--out", out)
        problems = judge(result, outcome, shown, time.monotonic() - start) + check_output_folder(out)
        hostile.TALLY.record(app.name, "predict", failed=bool(problems))
        failures += [f"{case}: {problem} | {result.output.strip()[:300]}" for problem in problems]
    assert not failures, f"{app.name} predict:\n" + "\n".join(failures)


def test_hostile_inputs_in_one_batch(app_model, tmp_path):
    """One batch of everything: each bad input skipped with a line naming it, every good
    one answered, the summary line, exit 2."""
    app, model = app_model
    cases = [c for c in cases_of(app, tmp_path / "inputs") if "--file" not in c[1]]
    argv = [arg for _, args, _, _ in cases for arg in args]
    out = tmp_path / "out"
    result = run_cli(app.name, "predict", *argv, "--model", model, "--out", out, "--json")
    hostile.TALLY.record(app.name, "predict (batch)", failed=False, inputs=len(cases))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output[-2000:]
    lines = result.output.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    answered = {r["input"] for r in records if "error" not in r}
    refused = {r["input"] for r in records if "error" in r}
    for case, _, shown, outcome in cases:
        if shown is None:
            continue  # texts: named by their (possibly cut) text
        if outcome == "ok":
            assert shown in answered, (case, result.output[-2000:])
        elif outcome == "error":
            if not Path(shown).is_dir():  # an empty folder is skipped before predicting
                assert shown in refused, (case, result.output[-2000:])
            assert any(line.startswith("skipped: ") and shown in line for line in lines), case
    assert "could not be read" in lines[-1], lines[-3:]
    assert check_output_folder(out) == []
    # one record per answered input, per frame of a video
    assert json.loads((out / "predictions.json").read_text()) == [r for r in records if "error" not in r]


@pytest.mark.parametrize("name", [n for n in app_names() if get_app(n).input_kind in ("image",)])
def test_an_unreadable_training_file_is_skipped_and_reported(name, tmp_path):
    """A corrupt file inside an app's own sample data: every split still loads, and the
    split that held it reports it by name."""
    app = get_app(name)
    data = app.write_sample_data(tmp_path / "data")
    broken = app.sample_inputs(tmp_path / "data")[0]
    with open(broken, "r+b") as f:
        f.truncate(40)
    config = app.default_config(tiny=True)
    source = app.open_source(config, data)
    meta = app.make_meta(config, source)
    skipped = list(getattr(source, "skipped", []))
    for split in ("train", "val", "test"):
        skipped += app.load_split(config, source, split, meta=meta).skipped
    hostile.TALLY.record(name, "train data", failed=not any(str(broken) in line for line in skipped))
    assert any(str(broken) in line for line in skipped), skipped


@pytest.mark.parametrize("name", [n for n in app_names() if get_app(n).input_kind in ("text", "audio")])
def test_hostile_training_data_stops_before_the_first_epoch(name, tmp_path):
    """Bad user data for the text and audio apps: one line naming it, exit 2, and the
    run folder left free."""
    failures = []
    cases = hostile.hostile_training_data(name, tmp_path / "data")
    assert cases, f"tests/hostile.py has no hostile training data for {name}"
    for index, (case, data) in enumerate(cases):
        run_dir = tmp_path / f"run{index}"
        result = run_cli(name, "train", "--tiny", "--data", data, "--run-dir", run_dir)
        problems = judge(result, "error", str(data), 0.0)
        if run_dir.exists():
            problems.append("the run folder was left behind")
        hostile.TALLY.record(name, "train", failed=bool(problems))
        failures += [f"{case}: {problem} | {result.output.strip()[-300:]}" for problem in problems]
    assert not failures, f"{name} train:\n" + "\n".join(failures)


def hostile_datasets(app, root, sample):
    """[(case, --data, outcome, named)] for every app: bad image datasets (detect and
    segment, made from the app's sample data) and bad text and audio data (these stop
    train; evaluate may still score the one good pair of a two-line file)."""
    cases = hostile.hostile_image_datasets(app.name, root / "images", sample)
    cases += [
        (case, data, "clean", str(data))
        for case, data in hostile.hostile_training_data(app.name, root / "text")
    ]
    return cases


@pytest.mark.parametrize("name", ["detect", "segment"])
def test_hostile_image_datasets_load_with_the_bad_parts_reported_or_stop_in_one_line(
    name, tmp_path, monkeypatch
):
    """Malformed YOLO, COCO and VOC files and masks: a bad row, entry or file is skipped and
    named; a dataset that cannot be read stops `train` with one line before any epoch
    (no traceback, no hang: a YAML alias bomb, an XML entity bomb, JSON nested 100,000 deep)."""
    from dlkit.errors import DlkitError

    # What these cases prepare (COCO masks rasterised per file) stays out of the user's cache.
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))

    app = get_app(name)
    sample = app.write_sample_data(tmp_path / "sample")
    config = app.default_config(tiny=True)
    failures = []
    cases = hostile.hostile_image_datasets(name, tmp_path / "cases", sample)
    assert cases, f"tests/hostile.py has no hostile datasets for {name}"
    for index, (case, data, outcome, named) in enumerate(cases):
        start = time.monotonic()
        if outcome == "error":  # "skip", "clean" and "train-only" load below
            run_dir = tmp_path / f"run{index}"
            result = run_cli(name, "train", "--tiny", "--data", data, "--run-dir", run_dir)
            problems = judge(result, "error", named, time.monotonic() - start)
            if run_dir.exists():
                problems.append("the run folder was left behind")
            shown = result.output.strip()[-300:]
        else:
            try:
                source = app.open_source(config, str(data))
                meta = app.make_meta(config, source)
                skipped = list(getattr(source, "skipped", []))
                for split in ("train", "val", "test"):
                    skipped += app.load_split(config, source, split, meta=meta).skipped
                problems = [] if named is None or any(named in s for s in skipped) else ["not reported"]
                shown = "; ".join(skipped)[:300]
            except DlkitError as error:
                problems, shown = [f"stopped: {error}"], ""
            except Exception as error:  # noqa: BLE001 (what the test looks for)
                problems, shown = [f"traceback: {type(error).__name__}: {error}"], ""
            if time.monotonic() - start > BOUND_SECONDS:
                problems.append("hang")
        hostile.TALLY.record(name, "train data", failed=bool(problems))
        failures += [f"{case}: {problem} | {shown}" for problem in problems]
    assert not failures, f"{name} data:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    "name", [n for n in app_names() if get_app(n).input_kind in ("text", "audio")] + ["detect", "segment"]
)
def test_evaluate_and_export_on_hostile_data(name, contract_run, tmp_path, monkeypatch):
    """`evaluate --data` and `export --data` on the same hostile data: a dataset that cannot
    be read is one line naming it, before any conversion and leaving no file; one with
    bad parts is evaluated on the rest, the bad parts named."""
    run = contract_run(name)
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))  # COCO masks prepared per case
    failures = []
    cases = hostile_datasets(run.app, tmp_path / "cases", run.data)
    for index, (case, data, outcome, named) in enumerate(cases):
        start = time.monotonic()
        result = run_cli(
            name, "evaluate", "--model", run.run_dir / "model.tflite", "--data", data, "--split", "train"
        )
        expected = {"error": "error", "skip": "ok", "clean": "clean", "train-only": "clean"}[outcome]
        shown = None if outcome == "train-only" else named  # refused for its class names
        problems = judge(result, expected, shown, time.monotonic() - start)
        if outcome == "skip" and named not in result.output:
            problems.append("the bad part is not named")
        hostile.TALLY.record(name, "evaluate", failed=bool(problems))
        failures += [f"evaluate, {case}: {problem} | {result.output.strip()[-300:]}" for problem in problems]
        if outcome not in ("error", "clean"):
            continue
        out = tmp_path / f"export{index}"
        start = time.monotonic()
        result = run_cli(name, "export", "--model", run.run_dir, "--data", data, "--out", out)
        problems = judge(result, outcome, named, time.monotonic() - start)
        if result.exit_code and "converting" in result.output:
            problems.append("the data was checked only after converting")
        if result.exit_code and out.exists() and any(out.iterdir()):
            problems.append(f"left {sorted(p.name for p in out.iterdir())}")
        hostile.TALLY.record(name, "export", failed=bool(problems))
        failures += [f"export, {case}: {problem} | {result.output.strip()[-300:]}" for problem in problems]
    assert not failures, f"{name}:\n" + "\n".join(failures)


def test_the_app_specific_verbs_on_hostile_input(tmp_path):
    """The verbs an app adds: `detect data check` on the hostile datasets (a dataset it
    cannot read: one line naming it, exit 2, or every bad file listed, exit 1; bad
    parts: listed, exit 1) and `trigger
    listen` on the hostile recordings (the shipped streaming model), as predict gets them."""
    failures = []
    detect = get_app("detect")
    sample = detect.write_sample_data(tmp_path / "sample")
    for case, data, outcome, named in hostile.hostile_image_datasets("detect", tmp_path / "cases", sample):
        start = time.monotonic()
        result = run_cli("detect", "data", "check", data)
        if outcome == "error" and result.exit_code != 1:  # 1: an audit listing every bad file
            problems = judge(result, "error", named, time.monotonic() - start)
        elif outcome == "error":
            problems = [p for p in judge(result, "clean", None, 0.0) if not p.startswith("exit ")]
        else:  # bad parts listed, exit 1 (nothing bad to list: exit 0)
            problems = judge(result, "clean", None, time.monotonic() - start)
            problems = [p for p in problems if not p.startswith("exit ")]
            if result.exit_code != (1 if named else 0) or (named and named not in result.output):
                problems.append(
                    f"exit {result.exit_code}, expected {1 if named else 0} with {named!r} listed"
                )
        hostile.TALLY.record("detect", "data check", failed=bool(problems))
        failures += [
            f"data check, {case}: {problem} | {result.output.strip()[-300:]}" for problem in problems
        ]
    for case, path, outcome in hostile.hostile_audio(tmp_path / "audio"):
        start = time.monotonic()
        result = run_cli("trigger", "listen", path)
        problems = judge(result, outcome, str(path), time.monotonic() - start)
        hostile.TALLY.record("trigger", "listen", failed=bool(problems))
        failures += [f"listen, {case}: {problem} | {result.output.strip()[-300:]}" for problem in problems]
    assert not failures, "\n".join(failures)
