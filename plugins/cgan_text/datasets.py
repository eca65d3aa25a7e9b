"""Named text datasets: ``lee`` (gensim's bundled Lee news corpus) and ``oracle`` (SeqGAN's
synthetic sequences sampled from an oracle LSTM)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from cgan_core import DataRequest, LoadedData, SkipLog, TensorData, UsageError, tensor_fingerprint

from cgan_text.oracle import oracle_from_config, sample_oracle
from cgan_text.sources import TextLines, lines_to_data, read_text_file

LEE_FILES = ("lee_background.cor", "lee.cor")
# A sentence ends at . ! or ? followed by space and an upper-case letter or a quote; this keeps
# "U.S. officials" and "4.5 per cent" in one sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"']?\s+(?=[\"'A-Z])")


def lee_corpus_paths() -> list[Path]:
    """The Lee corpus files shipped inside gensim's test data."""
    from gensim.test.utils import datapath

    return [Path(datapath(name)) for name in LEE_FILES]


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences at sentence-final punctuation."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def load_lee(request: DataRequest) -> LoadedData:
    """The Lee news corpus (350 Australian news articles), one sentence per sample by default."""
    config = request.config
    documents = TextLines()
    for path in lee_corpus_paths():
        if not path.is_file():  # pragma: no cover - gensim always ships it
            raise UsageError(f"gensim's Lee corpus '{path}' is missing; reinstall gensim")
        # A few lines of the corpus are Windows-1252, not UTF-8; that is known, not damage.
        read_text_file(path, documents, request.strict, 0, fallback_encoding="cp1252")
    lines = TextLines(skipped=documents.skipped)
    for document in documents.lines:
        for part in (split_sentences(document) if config.sentences else [document]):
            if config.max_line_chars and len(part) > config.max_line_chars:
                part = part[: config.max_line_chars]
                lines.cut_lines += 1
            lines.lines.append(part)
    return lines_to_data(request, lines, "lee")


def load_oracle(request: DataRequest) -> LoadedData:
    """Sequences sampled from an oracle LSTM (the paper's with ``data.oracle_params``).

    The training split is ``data.oracle_samples`` sequences drawn with ``data.oracle_data_seed``;
    the reference split as many again with the next seed, so they are fresh samples.
    """
    config = request.config
    oracle, description = oracle_from_config(config)
    seed = int(config.oracle_data_seed) + (0 if request.split == "train" else 1)
    count = int(config.max_items or config.oracle_samples)
    if count <= 0:
        raise UsageError(f"data.oracle_samples must be positive, got {config.oracle_samples}")
    with torch.no_grad():
        sequences = sample_oracle(oracle, count, seed)
    info = {
        "kind": "oracle",
        "vocab_size": oracle.vocab_size,
        "seq_len": oracle.seq_len,
        "start_token": description["start_token"],
        "items": count,
        "oracle": description,
        "data_seed": seed,
    }
    return LoadedData(TensorData(sequences), info, None, SkipLog(), "oracle", tensor_fingerprint(sequences))
