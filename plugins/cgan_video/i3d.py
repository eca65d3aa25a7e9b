"""The standard FVD feature extractor: Kinetics-400 I3D as the TorchScript file StyleGAN-V publishes.

FVD (Unterthiner et al., 2019) compares I3D features of real and generated clips. The network
cgan uses is the TorchScript export that StyleGAN-V (Skorokhodov et al., 2022) and most PyTorch
video-GAN papers use, called as they call it: uint8-range RGB clips ``(N, 3, T, H, W)``,
``rescale=True, resize=True, return_features=True`` (the network scales to [-1, 1] and resizes
to 224x224 itself), giving 400-d pre-softmax features.

The file is looked for at ``--option i3d.weights=PATH``, ``$CGAN_I3D_WEIGHTS``, the evaluation
cache and torch's hub cache, and otherwise downloaded once into the cache. Offline and without
the file, the metric fails with one line saying where to put it.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from cgan_core import EvalContext, UsageError, WeightsSource, find_weights_file

WEIGHTS_NAME = "i3d_torchscript.pt"
WEIGHTS_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
PREPROCESSING = "RGB uint8-range (N,3,T,H,W); network: rescale to [-1,1], resize to 224x224 (rescale=True, resize=True)"


WEIGHTS = WeightsSource(WEIGHTS_NAME, WEIGHTS_URL, option="i3d.weights", env="CGAN_I3D_WEIGHTS",
                        purpose="fvd@i3d (Kinetics-400 I3D, TorchScript)", alternative="the offline fvd@classifier")


def find_weights(ctx: EvalContext) -> Path:
    """The TorchScript file, downloaded into the cache if nowhere else.

    Raises:
        UsageError: a given path is missing, or there is no file and the download failed.
    """
    return find_weights_file(WEIGHTS, ctx.option("i3d.weights"), ctx.cache_dir)


@lru_cache(maxsize=2)
def load_i3d(path: str, sha256: str) -> Any:
    """The TorchScript I3D at ``path`` (eval mode, CPU); ``sha256`` keys the cache."""
    try:
        # TorchScript archives hold TorchScript code and tensors, not arbitrary pickled Python.
        # The published I3D exists only in this format, so torch's deprecation notice is moot here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(path, map_location="cpu").eval()
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"'{path}' is not a TorchScript I3D file ({first})") from None


def i3d_features(ctx: EvalContext, clips: torch.Tensor, model: Any, batch_size: int = 16) -> torch.Tensor:
    """400-d I3D features of clips ``(N, C, T, H, W)`` in ``[-1, 1]`` (grayscale made RGB)."""
    outputs = []
    with torch.inference_mode():
        for start in range(0, clips.shape[0], batch_size):
            batch = clips[start : start + batch_size].to(ctx.device, torch.float32).clamp(-1, 1)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1, -1)
            # Quantise like decoded video, in the uint8 range the detector expects with rescale=True.
            batch = ((batch + 1.0) * 127.5).round()
            features = model(batch, rescale=True, resize=True, return_features=True)
            outputs.append(features.float().flatten(1).cpu())
    if not outputs:
        raise UsageError("fvd@i3d got no clips")
    return torch.cat(outputs)
