"""Shared fixtures: tiny image datasets and bad files written by the tests themselves."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TINY_CLASSES = ("red", "green", "blue")
# Bad files of the `bad_files` fixture and the error each must give.
BAD_IMAGES = [
    ("corrupt", "corrupt image"),
    ("empty", "empty file"),
    ("text", "not an image file"),
    ("bomb", "too large"),
]


def run_cli(*args):
    """`dlkit <args>` in process (click's CliRunner); returns the click Result."""
    from click.testing import CliRunner

    from dlkit.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def load_tool(name):
    """A script of tools/ imported as a module (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_one_line_error(result, text):
    """Exit code 2, no traceback, one `Error:` line that contains `text`."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and text in errors[0], result.output


def write_tiny_folder(root, per_class=8, size=40, classes=TINY_CLASSES, seed=0):
    """A class-per-folder dataset that a tiny model can learn: coloured squares on noise."""
    from dlkit.apps.classify.data import write_sample_folder

    return write_sample_folder(root, per_class, size, classes, seed)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    return write_tiny_folder(tmp_path_factory.mktemp("tiny") / "data")


@dataclass
class ContractRun:
    """A tiny run of one app trained by the contract kit: `dlkit <app> train` killed with
    SIGKILL at a random point, resumed, then exported (float32 and the app's smallest
    variant)."""

    app: object
    run_dir: Path
    data: str  # the --data value (None: the app's offline default)
    folder: Path  # where its sample data was written
    exports: tuple
    killed: str  # where the first training process was killed


# DLKIT_KILL_SEED picks other kill points; each app gets its own from the seed.
KILL_SEED = os.environ.get("DLKIT_KILL_SEED", "0")


def kill_training(app, data, run_dir, timeout=600):
    """Runs `dlkit <app> train --tiny` in a process and kills it with SIGKILL at a random
    point: a random moment after the run folder is claimed (loading data, building the
    model, the first epoch), or a random moment after a random number of epochs were
    checkpointed (in the next epoch or the end of training). Returns where it was killed."""
    import random
    import signal
    import subprocess
    import sys
    import time

    from dlkit.callbacks.resume import read_state

    rng = random.Random(f"{KILL_SEED}:{app.name}")
    after_epochs = rng.randrange(2)  # tiny configs train 2 epochs or more
    delay = rng.uniform(0, 1.5 if after_epochs == 0 else 0.5)
    command = [sys.executable, "-m", "dlkit.cli", app.name, "train", "--tiny", "--run-dir", str(run_dir)]
    if data:
        command += ["--data", str(data)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        state = read_state(run_dir / "checkpoint")
        done = state["epochs_done"] if state else 0
        if (run_dir / "config.json").exists() and done >= after_epochs:
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    stderr = process.communicate()[1].decode(errors="replace")
    assert process.returncode == -signal.SIGKILL, (
        f"{app.name} train ended (exit {process.returncode}) before its kill point "
        f"({after_epochs} epochs + {delay:.2f} s): {stderr[-1500:]}"
    )
    state = read_state(run_dir / "checkpoint")
    return f"{delay:.2f} s after {after_epochs} checkpointed epochs ({state and state['epochs_done'] or 0} saved at the kill)"


class CheckpointOrder:
    """A Keras callback noting epochs whose resume checkpoint was written before this
    callback ran: a kill between the two would leave the epoch done but its outputs
    (written by callbacks like this one) missing for good."""

    def __new__(cls, checkpoint_dir):
        import keras

        from dlkit.callbacks.resume import read_state

        class Order(keras.callbacks.Callback):
            early = []

            def on_epoch_end(self, epoch, logs=None):
                state = read_state(checkpoint_dir)
                if state and state["epochs_done"] > epoch:
                    self.early.append(epoch)

        order = Order()
        order.early = []
        return order


def train_contract_run(app, root):
    from dlkit import runner
    from dlkit.export.bundle import export

    folder = root / "data"
    data = app.write_sample_data(folder)
    config = app.default_config(tiny=True)
    run_dir = root / "run"
    killed = kill_training(app, data, run_dir)
    order = CheckpointOrder(run_dir / "checkpoint")
    runner.train(app, config, run_dir=run_dir, resume=True, callbacks=[order])
    assert order.early == [], (
        f"{app.name}: epochs checkpointed before their other callbacks ran: {order.early}"
    )
    smallest = "int8" if "int8" in app.quantizations else app.quantizations[-1]
    exports = ("float32", smallest)
    for quantize in exports:
        export(app, run_dir, quantize)
    return ContractRun(app, run_dir, data, folder, exports, killed)


def shared_temp_dir(tmp_path_factory):
    """A folder every process of this test session sees: pytest's base temp folder, or
    under pytest-xdist (`-n 2`) the folder all workers' base temp folders sit in."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def contract_run(tmp_path_factory):
    """contract_run(name) -> the app's ContractRun, trained once per session: under
    pytest-xdist the first worker to ask trains it (holding a lock) and the others read
    what it recorded."""
    import json

    from dlkit import io
    from dlkit.registry import get_app

    shared = shared_temp_dir(tmp_path_factory)
    runs = {}

    def get(name):
        if name in runs:
            return runs[name]
        app = get_app(name)
        record = shared / f"contract_{name}.json"
        with io.locked(shared / f".contract_{name}.lock"):
            fields = json.loads(record.read_text()) if record.exists() else None
            if fields is None:
                try:
                    run = train_contract_run(app, tmp_path_factory.mktemp(f"contract_{name}"))
                except BaseException as error:  # recorded: the app's other tests fail at once
                    io.write_json(record, {"error": f"{type(error).__name__}: {error}"[:3000]})
                    raise
                fields = {
                    "run_dir": str(run.run_dir),
                    "data": run.data and str(run.data),
                    "folder": str(run.folder),
                    "exports": list(run.exports),
                    "killed": run.killed,
                }
                io.write_json(record, fields)
        if "error" in fields:
            pytest.fail(f"the {name} contract run failed earlier in this session: {fields['error']}")
        run = ContractRun(
            app,
            Path(fields["run_dir"]),
            fields["data"],
            Path(fields["folder"]),
            tuple(fields["exports"]),
            fields["killed"],
        )
        runs[name] = run
        return run

    return get


@pytest.fixture(scope="session")
def tiny_run(contract_run):
    """The contract kit's classify run (float32 and int8 exports; shared, read-only)."""
    return contract_run("classify").run_dir


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory):
    """Every kind of bad or unusual image the CLI must handle."""
    root = tmp_path_factory.mktemp("bad")
    files = {}
    good = Image.fromarray(np.full((30, 40, 3), 120, np.uint8))
    good.save(root / "good.jpg")
    files["good"] = root / "good.jpg"
    data = (root / "good.jpg").read_bytes()
    (root / "corrupt.jpg").write_bytes(data[: len(data) // 2])
    files["corrupt"] = root / "corrupt.jpg"
    (root / "empty.jpg").write_bytes(b"")
    files["empty"] = root / "empty.jpg"
    (root / "text.png").write_text("this is not an image\n")
    files["text"] = root / "text.png"
    Image.fromarray(np.full((20, 20), 77, np.uint8)).save(root / "gray.png")
    files["gray"] = root / "gray.png"
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:10, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    files["rgba"] = root / "rgba.png"
    Image.fromarray(np.full((20, 20), 65535 // 2, np.uint16)).save(root / "deep.png")
    files["deep"] = root / "deep.png"
    Image.new("1", (20000, 20000)).save(root / "bomb.png")
    files["bomb"] = root / "bomb.png"
    return files


# Training-only packages: the edge path of every app must run without any of them.
EDGE_BLOCKED = (
    "tensorflow",
    "keras",
    "tensorflow_datasets",
    "tensorflow_text",
    "matplotlib",
    "babel",
    "faker",
    "sacrebleu",
    "skimage",
    "scipy",
)


def run_without_tensorflow(argv, blocked=EDGE_BLOCKED):
    """Runs `dlkit <argv>` in a fresh process where importing TF, Keras & co. fails, as on
    a device with only `pip install dlkit`; returns the CompletedProcess (stdout has
    `edge-ok` when the command exited 0; otherwise the process exits with its code)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"for name in {tuple(blocked)!r}:\n"
        "    sys.modules[name] = None  # any import of it now raises ImportError\n"
        "from dlkit.cli import cli\n"
        "try:\n"
        f"    cli({[str(a) for a in argv]!r})\n"
        "except SystemExit as e:\n"
        "    if e.code:\n"
        "        raise  # the command's own exit code, no traceback\n"
        "print('edge-ok')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def pytest_terminal_summary(terminalreporter):
    """The hostile-input tally (tests/test_hostile.py), when those tests ran."""
    import hostile

    if hostile.TALLY.inputs:
        terminalreporter.write_line(hostile.TALLY.line())


def pytest_sessionfinish(session):
    """A pytest-xdist worker hands its part of the tally to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        import hostile

        output["hostile_tally"] = hostile.TALLY.state()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist's controller adds up its workers' tallies."""
    state = getattr(node, "workeroutput", {}).get("hostile_tally")
    if state:
        import hostile

        hostile.TALLY.merge(state)


# How pytest-xdist (`-n 2 --dist loadgroup`) shares the tests out. Every test of one app
# runs on one worker: its module in tests/apps, and the tests of the modules below
# parametrized with its name; so the app's contract run is trained where it is used and
# no worker waits for another to finish training it. Any other module runs whole on one
# worker, so its module-scoped fixtures are built once; the modules below share none, so
# their remaining tests spread one by one.
BY_APP_MODULES = {
    "tests/test_contract.py",
    "tests/test_hostile.py",
    "tests/test_cli.py",
    "tests/test_config.py",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(config, items):
    from dlkit.registry import app_names

    names = set(app_names())
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module.startswith("tests/apps/"):
            app = Path(module).stem.removeprefix("test_").split("_")[0]
        elif module in BY_APP_MODULES:
            params = item.callspec.params.values() if hasattr(item, "callspec") else ()
            app = next((v for v in params if isinstance(v, str) and v in names), None)
            if app is None:
                continue
        else:
            app = None
        item.add_marker(pytest.mark.xdist_group(f"app:{app}" if app else module))
