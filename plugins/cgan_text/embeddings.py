"""Word vectors for SeqGAN's embedding tables: trained with gensim or read from a file.

``embed.kind=word2vec|fasttext`` trains gensim's Word2Vec/FastText (one worker and a fixed seed,
so the vectors are the same on every run) on the training split, tokens as the model sees them.
``embed.kind=pretrained`` reads ``embed.path``: a gensim ``.kv`` file, word2vec ``.bin`` (binary) or
``.txt``, fastText ``.vec`` (text) or ``.bin`` (Facebook's binary, with sub-word n-grams).

Out-of-vocabulary words: a vocabulary word without a vector gets one from its character
n-grams when the vectors are fastText's, else a random N(0, s^2) vector, with ``s`` the standard
deviation of the known vectors (seeded by ``embed.seed``); ``<pad>`` gets zeros. The counts are
returned with the matrix and logged.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from cgan_core import UsageError

from cgan_text.vocab import PAD

KINDS = ("none", "word2vec", "fasttext", "pretrained")


def stable_hash(text: str) -> int:
    """A string hash that does not change between processes (Python's ``hash`` does)."""
    return zlib.crc32(text.encode("utf-8"))


def train_vectors(kind: str, sentences: Sequence[Sequence[str]], dim: int, window: int, epochs: int,
                  min_count: int, seed: int) -> Any:
    """Train word2vec or fastText on ``sentences``; returns gensim ``KeyedVectors``."""
    from gensim.models import FastText, Word2Vec

    if not any(sentences):
        raise UsageError("cannot train word vectors on an empty corpus")
    model_class = Word2Vec if kind == "word2vec" else FastText
    model = model_class(sentences=[list(s) for s in sentences], vector_size=dim, window=window, epochs=epochs,
                        min_count=min_count, seed=seed, workers=1, hashfxn=stable_hash)
    return model.wv


def load_vectors(path: str) -> Any:
    """Read pre-trained vectors by file type (see the module docstring).

    Raises:
        UsageError: missing file or unknown type, or a file gensim cannot read.
    """
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"embed.path '{path}' does not exist; give a .kv, .bin, .txt or .vec vectors file")
    suffix = file.suffix.lower()
    try:
        if suffix == ".kv":
            return KeyedVectors.load(str(file))
        if suffix in (".txt", ".vec"):
            return KeyedVectors.load_word2vec_format(str(file), binary=False)
        if suffix == ".bin":
            try:
                return load_facebook_vectors(str(file))
            except Exception:  # not Facebook's format: a word2vec binary
                return KeyedVectors.load_word2vec_format(str(file), binary=True)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"cannot read word vectors from '{file}': {str(exc).splitlines()[0] if str(exc) else exc}") from None
    raise UsageError(f"embed.path '{path}' has an unknown type; expected .kv, word2vec .bin/.txt or fastText .vec/.bin")


def embedding_matrix(vectors: Any, tokens: Sequence[str], seed: int) -> tuple[torch.Tensor, dict[str, int]]:
    """A (len(tokens), dim) matrix from ``vectors`` with the out-of-vocabulary rule above.

    Returns:
        The matrix and counts ``{"known", "subword", "random"}``.
    """
    dim = int(vectors.vector_size)
    matrix = np.zeros((len(tokens), dim), dtype=np.float32)
    has_subwords = hasattr(vectors, "buckets_word") or type(vectors).__name__ == "FastTextKeyedVectors"
    known_rows, missing = [], []
    counts = {"known": 0, "subword": 0, "random": 0}
    for i, token in enumerate(tokens):
        if token == PAD:
            continue
        if token in vectors.key_to_index:
            matrix[i] = vectors[token]
            known_rows.append(i)
            counts["known"] += 1
        elif has_subwords:
            matrix[i] = vectors[token]  # fastText builds it from character n-grams
            counts["subword"] += 1
        else:
            missing.append(i)
    scale = float(matrix[known_rows].std()) if known_rows else 0.1
    rng = np.random.default_rng(seed)
    for i in missing:
        matrix[i] = rng.normal(0.0, scale, dim)
    counts["random"] = len(missing)
    return torch.from_numpy(matrix), counts
