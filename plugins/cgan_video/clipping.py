"""Lipschitz control of the TGAN critic: singular value clipping and weight clipping.

Singular value clipping (Saito, Matsumoto and Saito, ICCV 2017, section 4.2) keeps each layer
1-Lipschitz: a layer's weight is reshaped to a matrix ``(out, in * prod(kernel))``, its SVD
``U S V^T`` taken, and ``S`` clamped to at most 1. A batch-norm layer multiplies by
``gamma / sqrt(var + eps)``, so its scale ``gamma`` is divided by
``max(1, |gamma| / sqrt(running_var + eps))``. Weight clipping (Arjovsky et al., 2017) clamps
every parameter of the critic into ``[-c, c]``.
"""

from __future__ import annotations

import torch
from torch import nn

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
TOLERANCE = 1e-5  # float32 SVD round-off: a just-clipped layer reads as 1.000001, which needs no second pass


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The layer's weight as the matrix whose singular values are clipped: ``(out, in * k...)``.

    Transposed convolutions store ``(in, out, k...)``; they are brought to ``(out, in, k...)`` first.
    """
    weight = module.weight
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


@torch.no_grad()
def clip_singular_values(module: nn.Module, bound: float = 1.0) -> int:
    """Clip the singular values of every linear/conv layer of ``module`` and its batch-norm scales.

    Returns:
        How many tensors were changed (a layer already within the bound is left untouched).
    """
    changed = 0
    for layer in module.modules():
        if isinstance(layer, WEIGHTED):
            matrix = weight_matrix(layer).float()
            u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
            if float(s.max()) <= bound * (1.0 + TOLERANCE):
                continue
            clipped = (u * s.clamp(max=bound)) @ vh
            if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                shape = layer.weight.transpose(0, 1).shape
                layer.weight.copy_(clipped.reshape(shape).transpose(0, 1))
            else:
                layer.weight.copy_(clipped.reshape(layer.weight.shape))
            changed += 1
        elif isinstance(layer, NORMS) and layer.affine and layer.running_var is not None:
            scale = layer.weight.abs() / torch.sqrt(layer.running_var + layer.eps)
            if float(scale.max()) <= bound * (1.0 + TOLERANCE):
                continue
            layer.weight.div_(torch.clamp(scale / bound, min=1.0))
            changed += 1
    return changed


@torch.no_grad()
def clip_weights(module: nn.Module, bound: float) -> int:
    """Clamp every parameter of ``module`` into ``[-bound, bound]``; returns the tensors changed."""
    changed = 0
    for parameter in module.parameters():
        if float(parameter.abs().max()) > bound:
            parameter.clamp_(-bound, bound)
            changed += 1
    return changed


@torch.no_grad()
def largest_singular_values(module: nn.Module) -> dict[str, float]:
    """Largest singular value of each linear/conv layer's weight matrix, by module name."""
    return {name: float(torch.linalg.matrix_norm(weight_matrix(layer).float(), ord=2))
            for name, layer in module.named_modules() if isinstance(layer, WEIGHTED)}


@torch.no_grad()
def batchnorm_scales(module: nn.Module) -> dict[str, float]:
    """Largest effective batch-norm scale ``|gamma| / sqrt(running_var + eps)`` per layer."""
    return {name: float((layer.weight.abs() / torch.sqrt(layer.running_var + layer.eps)).max())
            for name, layer in module.named_modules()
            if isinstance(layer, NORMS) and layer.affine and layer.running_var is not None}
