"""Exact resume after an interruption: the full training state after every epoch, and
the epoch the data pipelines draw for."""

from pathlib import Path

import keras
import numpy as np

from dlkit import io


class EpochClock(keras.callbacks.Callback):
    """Tells the pipelines of dlkit.data.batches which epoch `fit` starts, so each epoch's
    order and draws come from (seed, epoch), not from how many passes were started (the
    runner sets the first epoch with `training_epoch` around `fit`)."""

    def on_epoch_begin(self, epoch, logs=None):
        from dlkit.data.batches import set_training_epoch

        set_training_epoch(epoch)


def seed_states(model):
    """The state variables of the model's random seed generators (dropout's and the
    like), which `keras.saving.load_model` starts afresh rather than restoring."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def restore_seed_states(model, state):
    """Assigns the seed generator states a `ResumeCheckpoint` recorded in `state`."""
    saved = state.get("seed_states")
    variables = seed_states(model)
    if saved is None or len(saved) != len(variables):
        return
    for variable, value in zip(variables, saved):
        variable.assign(np.asarray(value, dtype=variable.dtype))


class ResumeCheckpoint(keras.callbacks.Callback):
    """After each epoch, saves the compiled model (weights and optimizer state) as
    `epochN.keras` and then a `state.json` naming it, with the number of finished epochs,
    the training stage and the seed generators' states (which the saved model does not
    restore: `restore_seed_states`); the previous epoch's model is removed after that.

    Both writes are atomic and the state is written last: a kill at any instant leaves a
    state and the model it names, at worst one epoch behind, and `--resume` continues
    from there.
    Unlike `keras.callbacks.BackupAndRestore`, the state spans several `fit` calls, as
    the stages of transfer learning need (frozen head training, then fine-tuning).

    Args:
        directory: str. Where the epoch models and `state.json` go.
        stage_index: int. Index of the stage this `fit` call trains.
        extra: callable() -> dict or None. More state to record (e.g. the best value).
    """

    def __init__(self, directory, stage_index=0, extra=None):
        super().__init__()
        self.directory = str(directory)
        self.stage_index = stage_index
        self.extra = extra

    def on_epoch_end(self, epoch, logs=None):
        directory = Path(self.directory)
        name = f"epoch{epoch + 1}.keras"
        with io.atomic_path(directory / name) as tmp:
            self.model.save(tmp)
        state = {
            "epochs_done": epoch + 1,
            "stage": self.stage_index,
            "model": name,
            "seed_states": [np.asarray(v).tolist() for v in seed_states(self.model)],
        }
        if self.extra:
            state.update(self.extra())
        io.write_json(directory / "state.json", state)
        for old in directory.glob("*.keras"):  # earlier epochs', and one a kill left unnamed
            if old.name != name:
                old.unlink(missing_ok=True)


def read_state(directory):
    """The saved state, or None when no epoch has finished yet."""
    try:
        return io.read_json(f"{directory}/state.json")
    except (FileNotFoundError, ValueError):
        return None
