"""Every registered dlkit layer and loss: config round trip, and `.keras` save/load (safe
mode) with equal outputs, the way Keras's own layer test harness checks every layer.

A layer or loss registered with `package="dlkit"` but missing from EXAMPLES fails
`test_every_registered_object_has_an_example`, so a new one is tested from the start.
"""

import importlib

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import dlkit.layers  # noqa: E402
import dlkit.losses  # noqa: E402
from dlkit.metrics.token_accuracy import token_accuracy  # noqa: E402
from dlkit.registry import app_names, get_app  # noqa: E402

GRIDS = [2]
ANCHORS = [[[0.2, 0.2], [0.5, 0.4]]]
RNG = np.random.default_rng(0)


def _attention():
    query, values = keras.Input((5,)), keras.Input((7, 4))
    outputs = dlkit.layers.AdditiveAttention(3)(query, values)
    return keras.Model([query, values], outputs), [RNG.normal(size=(2, 5)), RNG.normal(size=(2, 7, 4))]


def _padding_mask():
    ids = keras.Input((5,), dtype="int32")
    mask = dlkit.layers.PaddingMask()(ids)
    return keras.Model(ids, keras.ops.cast(mask, "float32")), [np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 7]])]


def _decode():
    raw = keras.Input((2 * 2 * 2, 5 + 3))
    outputs = dlkit.layers.YOLODecode(GRIDS, ANCHORS)(raw)
    return keras.Model(raw, list(outputs)), [RNG.normal(size=(2, 8, 8))]


def _anchor_free_decode():
    box_logits, class_logits = keras.Input((4 + 1, 4 * 6)), keras.Input((4 + 1, 3))
    outputs = dlkit.layers.AnchorFreeDecode([2, 1], reg_max=6)([box_logits, class_logits])
    return keras.Model([box_logits, class_logits], list(outputs)), [
        RNG.normal(size=(2, 5, 24)),
        RNG.normal(size=(2, 5, 3)),
    ]


def _postprocess():
    boxes, objectness, probs = keras.Input((6, 4)), keras.Input((6,)), keras.Input((6, 3))
    outputs = dlkit.layers.YOLOPostprocess(max_detections=4, score_threshold=0.1)(boxes, objectness, probs)
    centres, sizes = RNG.uniform(0.2, 0.8, (2, 6, 2)), RNG.uniform(0.1, 0.3, (2, 6, 2))
    return keras.Model([boxes, objectness, probs], list(outputs)), [
        np.concatenate([centres - sizes / 2, centres + sizes / 2], -1),
        RNG.uniform(size=(2, 6)),
        RNG.dirichlet(np.ones(3), (2, 6)),
    ]


def _spectrogram():
    audio = keras.Input((1600,))
    spectrogram = dlkit.layers.Spectrogram(400, 160, 512, fft="matmul")
    return keras.Model(audio, spectrogram(audio)), [RNG.normal(0, 0.1, (2, 1600))]


def _unrolled_gru():
    x, state = keras.Input((4, 3)), keras.Input((5,))
    sequence, last = dlkit.layers.UnrolledGRU(5)(x, initial_state=state)
    return keras.Model([x, state], [sequence, last]), [RNG.normal(size=(2, 4, 3)), RNG.normal(size=(2, 5))]


def _label_map():
    scores = keras.Input((4, 5, 3))
    return keras.Model(scores, dlkit.layers.LabelMap()(scores)), [RNG.dirichlet(np.ones(3), (2, 4, 5))]


def _self_attention():
    x, mask = keras.Input((5, 8)), keras.Input((5,), dtype="int32")
    return keras.Model([x, mask], dlkit.layers.MultiHeadSelfAttention(2)(x, padding_mask=mask)), [
        RNG.normal(size=(2, 5, 8)),
        np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
    ]


def _encoder_block():
    x, mask = keras.Input((5, 8)), keras.Input((5,), dtype="int32")
    return keras.Model([x, mask], dlkit.layers.TransformerEncoder(2, 16)(x, padding_mask=mask)), [
        RNG.normal(size=(2, 5, 8)),
        np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]),
    ]


def _position_embedding():
    x = keras.Input((5, 4))
    return keras.Model(x, dlkit.layers.PositionEmbedding(8)(x)), [RNG.normal(size=(2, 5, 4))]


def _reversible_embedding():
    ids = keras.Input((5,), dtype="int32")
    embedding = dlkit.layers.ReversibleEmbedding(11, 4)
    return keras.Model(ids, embedding(embedding(ids), reverse=True)), [RNG.integers(0, 11, (2, 5))]


def _masked_positions():
    x, positions = keras.Input((5, 4)), keras.Input((2,), dtype="int32")
    return keras.Model([x, positions], dlkit.layers.MaskedPositions()(x, positions)), [
        RNG.normal(size=(2, 5, 4)),
        np.array([[0, 4], [2, 2]]),
    ]


def _pad_channels():
    x = keras.Input((3, 3, 2))
    return keras.Model(x, dlkit.layers.PadChannels(3)(x)), [RNG.normal(size=(2, 3, 3, 2))]


def _conv_average_pooling():
    x = keras.Input((7, 6, 3))
    return keras.Model(x, dlkit.layers.ConvAveragePooling2D((2, 3), strides=2)(x)), [
        RNG.normal(size=(2, 7, 6, 3))
    ]


# Registered name -> fn() returning (a model using the object, its inputs); for losses the
# model is replaced by (loss, y_true, y_pred).
LAYER_EXAMPLES = {
    "dlkit>AdditiveAttention": _attention,
    "dlkit>AnchorFreeDecode": _anchor_free_decode,
    "dlkit>ConvAveragePooling2D": _conv_average_pooling,
    "dlkit>LabelMap": _label_map,
    "dlkit>MaskedPositions": _masked_positions,
    "dlkit>MultiHeadSelfAttention": _self_attention,
    "dlkit>PadChannels": _pad_channels,
    "dlkit>PaddingMask": _padding_mask,
    "dlkit>PositionEmbedding": _position_embedding,
    "dlkit>ReversibleEmbedding": _reversible_embedding,
    "dlkit>TransformerEncoder": _encoder_block,
    "dlkit>Spectrogram": _spectrogram,
    "dlkit>UnrolledGRU": _unrolled_gru,
    "dlkit>YOLODecode": _decode,
    "dlkit>YOLOPostprocess": _postprocess,
}
LOSS_EXAMPLES = {
    "dlkit>YOLOLoss": lambda: dlkit.losses.YOLOLoss(GRIDS, ANCHORS, box_weight=2.0, noobj_weight=0.5),
    "dlkit>DiceCrossEntropy": lambda: dlkit.losses.DiceCrossEntropy(ce_weight=0.5, dice_weight=2.0),
    "dlkit>TripletLoss": lambda: dlkit.losses.TripletLoss(margin=0.3, mining="batch_hard"),
    "dlkit>TaskAlignedLoss": lambda: dlkit.losses.TaskAlignedLoss([4, 2], reg_max=6, top_k=3, dfl_weight=2.0),
}


def token_accuracy_numpy(y_true, y_pred):
    mask = y_true != 0
    return float(((np.argmax(y_pred, -1) == y_true) & mask).sum() / max(mask.sum(), 1))


# Registered metric functions -> a numpy reference.
FUNCTION_EXAMPLES = {"dlkit>token_accuracy": (token_accuracy, token_accuracy_numpy)}


def registered():
    for name in app_names():  # every app's model module registers what it defines
        importlib.import_module(get_app(name).model.__name__)
    return sorted(name for name in keras.saving.get_custom_objects() if name.startswith("dlkit>"))


def test_every_registered_object_has_an_example():
    assert registered(), "no dlkit objects registered"
    missing = set(registered()) - set(LAYER_EXAMPLES) - set(LOSS_EXAMPLES) - set(FUNCTION_EXAMPLES)
    assert not missing, f"registered without a test example: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(LAYER_EXAMPLES))
def test_layer_config_round_trip_and_save_load(name, tmp_path):
    model, inputs = LAYER_EXAMPLES[name]()
    inputs = [np.asarray(x, np.int32 if np.asarray(x).dtype.kind == "i" else np.float32) for x in inputs]
    [layer] = [layer for layer in model.layers if keras.saving.get_registered_name(type(layer)) == name]
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True: no Lambda layers
    expected = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    got = loaded.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    for a, b in zip(keras.tree.flatten(expected), keras.tree.flatten(got)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def yolo_batch():
    from dlkit.data.detection import encode_targets

    boxes = np.array([[0.1, 0.1, 0.4, 0.35], [0.5, 0.5, 0.9, 0.95]], np.float32)
    y_true = np.stack([encode_targets(boxes, np.array([0, 2]), GRIDS, ANCHORS, max_boxes=3)] * 2)
    y_pred = RNG.normal(size=(2, 8, 5 + 3)).astype(np.float32)
    return y_true, y_pred


def anchor_free_batch():
    y_true = np.zeros((2, 3, 6), np.float32)  # image 0: two boxes; image 1: one
    y_true[0, :2] = [[0.1, 0.1, 0.45, 0.4, 1, 0], [0.5, 0.4, 0.95, 0.9, 1, 2]]
    y_true[1, 0] = [0.2, 0.3, 0.7, 0.8, 1, 1]
    return y_true, RNG.normal(size=(2, 16 + 4, 4 * 6 + 3)).astype(np.float32)


def mask_batch():
    y_true = RNG.integers(0, 3, (2, 5, 5))
    y_pred = RNG.dirichlet(np.ones(3), (2, 5, 5)).astype(np.float32)
    return y_true, y_pred


def identity_batch():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = RNG.normal(size=(6, 4)).astype(np.float32)
    return y_true, y_pred / np.linalg.norm(y_pred, axis=1, keepdims=True)


LOSS_BATCHES = {
    "dlkit>YOLOLoss": yolo_batch,
    "dlkit>DiceCrossEntropy": mask_batch,
    "dlkit>TripletLoss": identity_batch,
    "dlkit>TaskAlignedLoss": anchor_free_batch,
}


@pytest.mark.parametrize("name", sorted(LOSS_EXAMPLES))
def test_loss_config_round_trip_and_same_value(name):
    loss = LOSS_EXAMPLES[name]()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    y_true, y_pred = LOSS_BATCHES[name]()
    value = float(loss(y_true, y_pred))
    assert np.isfinite(value) and value > 0
    assert float(restored(y_true, y_pred)) == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize("name", sorted(FUNCTION_EXAMPLES))
def test_metric_function_matches_numpy_and_resolves_by_name(name):
    function, reference = FUNCTION_EXAMPLES[name]
    y_true = RNG.integers(0, 5, (4, 6))
    y_true[:, 4:] = 0  # padding
    y_pred = RNG.normal(size=(4, 6, 5)).astype(np.float32)
    assert float(function(y_true, y_pred)) == pytest.approx(reference(y_true, y_pred), abs=1e-6)
    assert keras.saving.get_registered_object(name) is function
