"""Exact resume after an interruption: the full training state after every epoch."""

import keras

from dlkit import io


class ResumeCheckpoint(keras.callbacks.Callback):
    """After each epoch, saves the compiled model (weights and optimizer state) and a
    `state.json` with the number of finished epochs and the training stage.

    Both files are replaced atomically, model first: a kill at any instant leaves a
    consistent pair, at worst one epoch behind, and `--resume` continues from there.
    Unlike `keras.callbacks.BackupAndRestore`, the state spans several `fit` calls, as
    the stages of transfer learning need (frozen head training, then fine-tuning).

    Args:
        directory: str. Where `last.keras` and `state.json` go.
        stage_index: int. Index of the stage this `fit` call trains.
        extra: callable() -> dict or None. More state to record (e.g. the best value).
    """

    def __init__(self, directory, stage_index=0, extra=None):
        super().__init__()
        self.directory = str(directory)
        self.stage_index = stage_index
        self.extra = extra

    def on_epoch_end(self, epoch, logs=None):
        with io.atomic_path(f"{self.directory}/last.keras") as tmp:
            self.model.save(tmp)
        state = {"epochs_done": epoch + 1, "stage": self.stage_index}
        if self.extra:
            state.update(self.extra())
        io.write_json(f"{self.directory}/state.json", state)


def read_state(directory):
    """The saved state, or None when no epoch has finished yet."""
    try:
        return io.read_json(f"{directory}/state.json")
    except (FileNotFoundError, ValueError):
        return None
