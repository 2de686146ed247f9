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


def build_optimizer(model):
    """Creates the compiled optimizer's variables for `model`'s trainable weights, unless
    it has them (a resumed model's are loaded).

    Without a distribution strategy, Keras leaves this to the first traced training step,
    and a `tf.function` that creates variables while tracing is traced a second time
    (TensorFlow lifts them out, then traces again without them): the training step's
    trace, most of a small model's first epoch, was paid twice at every stage's start.
    """
    optimizer = model.optimizer
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
