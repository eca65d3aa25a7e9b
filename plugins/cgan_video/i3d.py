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

import hashlib
import os
import urllib.request
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import torch

from cgan_core import EvalContext, UsageError

WEIGHTS_NAME = "i3d_torchscript.pt"
WEIGHTS_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
DOWNLOAD_TIMEOUT_S = 30
PREPROCESSING = "RGB uint8-range (N,3,T,H,W); network: rescale to [-1,1], resize to 224x224 (rescale=True, resize=True)"


def candidate_paths(ctx: EvalContext) -> list[Path]:
    """Places the TorchScript file is looked for, most specific first."""
    paths = []
    for given in (ctx.option("i3d.weights"), os.environ.get("CGAN_I3D_WEIGHTS")):
        if given:
            paths.append(Path(str(given)).expanduser())
    if ctx.cache_dir is not None:
        paths.append(Path(ctx.cache_dir) / "weights" / WEIGHTS_NAME)
    paths.append(Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME)
    return paths


def _download(url: str, target: Path) -> Optional[str]:
    """Download ``url`` to ``target``; returns an error text instead of raising."""
    if os.environ.get("CGAN_OFFLINE", "") not in ("", "0", "false"):
        return "CGAN_OFFLINE is set"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as handle:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                handle.write(chunk)
        partial.replace(target)
        return None
    except Exception as exc:  # any network or disk failure becomes one line for the user
        partial.unlink(missing_ok=True)
        return f"{type(exc).__name__}: {exc}"


def find_weights(ctx: EvalContext) -> Path:
    """The TorchScript file, downloaded into the cache if nowhere else.

    Raises:
        UsageError: a given path is missing, or there is no file and the download failed.
    """
    explicit = ctx.option("i3d.weights") or os.environ.get("CGAN_I3D_WEIGHTS")
    if explicit and not Path(str(explicit)).expanduser().is_file():
        raise UsageError(f"I3D weights file '{explicit}' does not exist; pass the i3d_torchscript.pt file")
    for path in candidate_paths(ctx):
        if path.is_file():
            return path
    base = Path(ctx.cache_dir) if ctx.cache_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    target = base / "weights" / WEIGHTS_NAME
    error = _download(WEIGHTS_URL, target)
    if error is not None:
        raise UsageError(
            f"fvd@i3d needs the Kinetics-400 I3D TorchScript file, which could not be downloaded ({error}); "
            f"fetch {WEIGHTS_URL} on a connected machine and pass --option i3d.weights=PATH or set "
            "CGAN_I3D_WEIGHTS=PATH, or use the offline fvd@classifier"
        )
    return target


def sha256_of(path: Path) -> str:
    """sha256 of the weights file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
