import keras
import numpy as np
import pytest

from dlkit.errors import DlkitError
from dlkit.pretrained import (
    BACKBONES,
    build_backbone,
    load_weights_from_file,
    offline_weights_path,
    sha256_file,
)
from dlkit.pretrained.efficientnet_lite import EfficientNetLite0, torch_state_to_keras


def test_unknown_backbone_fails_loudly():
    with pytest.raises(
        DlkitError, match="unknown backbone 'resnet9000'; available: efficientnet_lite0, mobilenet_v2"
    ):
        build_backbone("resnet9000", (32, 32, 3))


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_shipped_weights_match_their_checksum_and_load(name):
    spec = BACKBONES[name]
    path = offline_weights_path(name)
    assert sha256_file(path) == spec.sha256
    backbone = build_backbone(name, (96, 96, 3), weights="dlkit")
    assert backbone.output_shape == (None, 3, 3, 1280)
    # Real weights, not an initialisation: BatchNorm moving variances are not all ones.
    variances = [w for w in backbone.weights if "moving_variance" in w.path]
    assert not np.allclose(np.asarray(variances[0]), 1.0)


def test_shipped_weights_refuse_another_width():
    with pytest.raises(DlkitError, match="alpha=1.0"):
        build_backbone("mobilenet_v2", (96, 96, 3), alpha=0.35, weights="dlkit")


def test_weights_copied_by_layer_name_from_a_model_file(tmp_path):
    source = build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.35, weights="none")
    outer = keras.Sequential([keras.Input((32, 32, 3)), source, keras.layers.GlobalAveragePooling2D()])
    outer.save(tmp_path / "whole.keras")
    target = build_backbone("mobilenet_v2", (64, 64, 3), alpha=0.35, weights="none")
    load_weights_from_file(target, tmp_path / "whole.keras")
    for a, b in zip(target.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    # A backbone of another shape is refused with the first layer that does not fit.
    wider = build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.5, weights="none")
    with pytest.raises(DlkitError, match="layers not found in .* or of another shape"):
        load_weights_from_file(wider, tmp_path / "whole.keras")


def test_weights_path_errors(tmp_path):
    backbone = build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.35, weights="none")
    with pytest.raises(DlkitError, match="no such weights file"):
        load_weights_from_file(backbone, tmp_path / "missing.weights.h5")
    (tmp_path / "junk.keras").write_text("junk")
    with pytest.raises(DlkitError, match="cannot read as a Keras model"):
        load_weights_from_file(backbone, tmp_path / "junk.keras")


def test_efficientnet_lite0_shape_and_size():
    model = EfficientNetLite0((224, 224, 3), include_top=True)
    assert model.output_shape == (None, 1000)
    # The published EfficientNet-Lite0 size counts trainable weights (not BN moving statistics).
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008


def test_torch_state_mapping_round_trip():
    """A state dict made from a Keras model in PyTorch layout maps back exactly."""
    source = EfficientNetLite0((64, 64, 3), include_top=True, classes=3)
    rng = np.random.default_rng(0)
    for w in source.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    state = {}

    def put_bn(key, layer):
        gamma, beta, mean, var = source.get_layer(layer).get_weights()
        state.update(
            {
                f"{key}.weight": gamma,
                f"{key}.bias": beta,
                f"{key}.running_mean": mean,
                f"{key}.running_var": var,
            }
        )

    state["_conv_stem.weight"] = source.get_layer("stem_conv").get_weights()[0].transpose(3, 2, 0, 1)
    put_bn("_bn0", "stem_bn")
    for index in range(16):
        prefix = f"_blocks.{index}"
        if index > 0:
            state[f"{prefix}._expand_conv.weight"] = (
                source.get_layer(f"block{index}_expand_conv").get_weights()[0].transpose(3, 2, 0, 1)
            )
            put_bn(f"{prefix}._bn0", f"block{index}_expand_bn")
        state[f"{prefix}._depthwise_conv.weight"] = (
            source.get_layer(f"block{index}_dw_conv").get_weights()[0].transpose(2, 3, 0, 1)
        )
        put_bn(f"{prefix}._bn1", f"block{index}_dw_bn")
        state[f"{prefix}._project_conv.weight"] = (
            source.get_layer(f"block{index}_project_conv").get_weights()[0].transpose(3, 2, 0, 1)
        )
        put_bn(f"{prefix}._bn2", f"block{index}_project_bn")
    state["_conv_head.weight"] = source.get_layer("top_conv").get_weights()[0].transpose(3, 2, 0, 1)
    put_bn("_bn1", "top_bn")
    kernel, bias = source.get_layer("predictions").get_weights()
    state["_fc.weight"], state["_fc.bias"] = kernel.T, bias
    target = torch_state_to_keras(EfficientNetLite0((64, 64, 3), include_top=True, classes=3), state)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(target(x), source(x), rtol=1e-5, atol=1e-5)
    del state["_blocks.3._bn1.weight"]
    with pytest.raises(KeyError):
        torch_state_to_keras(EfficientNetLite0((64, 64, 3)), state)


def test_imagenet_weights_download_or_a_clear_offline_error():
    try:
        backbone = build_backbone("mobilenet_v2", (96, 96, 3), weights="imagenet")
    except DlkitError as error:
        assert "offline, use --weights dlkit" in str(error) and "\n" not in str(error)
    else:  # online: real ImageNet weights
        assert backbone.get_layer("Conv1").get_weights()[0].std() > 0.05


def test_efficientnet_imagenet_means_its_shipped_imagenet_weights():
    a = build_backbone("efficientnet_lite0", (64, 64, 3), weights="imagenet")
    b = build_backbone("efficientnet_lite0", (64, 64, 3), weights="dlkit")
    np.testing.assert_array_equal(
        a.get_layer("stem_conv").get_weights()[0], b.get_layer("stem_conv").get_weights()[0]
    )
