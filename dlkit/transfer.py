"""The transfer-learning recipe shared by the image apps: a pretrained backbone frozen with
BatchNorm in inference mode under a new head, trained first; then its top layers
fine-tuned at a lower learning rate. From scratch (`weights=none`) the whole network
trains in one stage with BatchNorm statistics that keep up with a small dataset.
"""

import numpy as np

from dlkit.stages import Stage


def from_scratch(config):
    return str(config.weights).lower() == "none"


def apply_backbone(backbone, x, scratch):
    """Calls `backbone` on `x` the way the recipe trains it.

    Transfer: frozen and called with `training=False`, so its BatchNorm layers stay in
    inference mode even when top layers are unfrozen for fine-tuning. From scratch:
    trainable, with BatchNorm momentum 0.9: keras.applications use 0.999, and on a small
    dataset (tens of steps an epoch) the moving statistics never catch up, so inference-
    mode predictions collapse to one class.
    """
    from keras import layers

    backbone.trainable = scratch
    if scratch:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9
        return backbone(x)
    return backbone(x, training=False)


def cosine_schedule(start, epochs, peak, floor):
    """A Keras callback decaying the learning rate from `peak` to `floor` by a cosine over
    the `epochs` epochs from epoch `start`."""
    import keras

    def rate(epoch):
        done = min(max(epoch - start, 0), epochs) / max(epochs, 1)
        return floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * done))

    return keras.callbacks.LearningRateScheduler(rate)


def transfer_stages(config, backbone_of, compile_at, cosine=False):
    """The recipe's `fit` stages.

    Args:
        config: a TransferConfig (epochs, learning_rate, fine_tune_epochs,
            fine_tune_layers, fine_tune_learning_rate, weights).
        backbone_of: fn(model) -> the backbone sub-model.
        compile_at: fn(model, learning_rate) compiling the model for a stage.
        cosine: bool. Decay each stage's rate by a cosine: the head stage to a tenth of
            its rate, fine-tuning (and a from-scratch run) to 0.
    """

    def schedule(start, epochs, peak, floor):
        return [cosine_schedule(start, epochs, peak, floor)] if cosine else []

    if from_scratch(config):
        total = config.epochs + config.fine_tune_epochs

        def prepare_scratch(model):
            backbone_of(model).trainable = True
            compile_at(model, config.learning_rate)

        return [Stage("scratch", total, prepare_scratch, schedule(0, total, config.learning_rate, 0.0))]

    def prepare_head(model):
        backbone_of(model).trainable = False
        compile_at(model, config.learning_rate)

    def prepare_fine_tune(model):
        backbone = backbone_of(model)
        backbone.trainable = True
        for layer in backbone.layers[: max(0, len(backbone.layers) - config.fine_tune_layers)]:
            layer.trainable = False
        compile_at(model, config.fine_tune_learning_rate)

    lr = config.learning_rate
    stages = [Stage("head", config.epochs, prepare_head, schedule(0, config.epochs, lr, 0.1 * lr))]
    if config.fine_tune_epochs > 0:
        tune = schedule(config.epochs, config.fine_tune_epochs, config.fine_tune_learning_rate, 0.0)
        stages.append(Stage("fine-tune", config.fine_tune_epochs, prepare_fine_tune, tune))
    return stages
