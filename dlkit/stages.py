"""Training stages: several `fit` calls on one model, e.g. frozen head then fine-tuning."""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Stage:
    """One `fit` call of a run.

    Args:
        name: str. Shown in progress lines and recorded in the history.
        epochs: int. Epochs in this stage.
        prepare: callable(model). Sets what trains and compiles the model for this stage.
        callbacks: list of Keras callbacks added to this stage's `fit` (e.g. a schedule).
    """

    name: str
    epochs: int
    prepare: Callable
    callbacks: list = field(default_factory=list)
