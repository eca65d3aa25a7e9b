"""Writing text samples: ``.txt`` (one per line), ``.jsonl`` (text, token ids, seed), previews
and TensorBoard text.

Oracle sequences have no words: their text is the token ids separated by spaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from cgan_core import SampleInfo

from cgan_text.vocab import Vocabulary, tokenizer_for


def decode_samples(samples: torch.Tensor, data_info: Mapping[str, Any]) -> list[str]:
    """Text of each sequence in ``samples`` (N, T)."""
    rows = samples.detach().cpu().long().tolist()
    if data_info.get("kind") != "text" or "vocab" not in data_info:
        return [" ".join(str(token) for token in row) for row in rows]
    vocab = Vocabulary.from_info(data_info["vocab"])
    tokenizer = tokenizer_for(data_info)
    return [tokenizer.detokenize(vocab.decode_tokens(row)) for row in rows]


def content_ids(row: list[int], data_info: Mapping[str, Any]) -> list[int]:
    """The ids of a sequence up to (not including) its end token; all ids for oracle data."""
    if data_info.get("kind") != "text":
        return row
    end = {int(data_info.get("eos_token", 2)), int(data_info.get("pad_token", 0))}
    for i, token in enumerate(row):
        if token in end:
            return row[:i]
    return row


def write_text_samples(samples: torch.Tensor, out_dir: Path, info: SampleInfo, data_info: Mapping[str, Any],
                       fmt: str = "txt") -> list[Path]:
    """Write the samples as one ``.txt`` (a line each) or ``.jsonl`` (a record each) file.

    Returns:
        The path of the written file (in a one-element list).
    """
    if fmt not in ("txt", "jsonl"):
        raise ValueError(f"text samples are written as txt or jsonl, not '{fmt}'")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"seed{info.seed}-" if info.seed is not None else ""
    path = out_dir / f"{prefix}samples-{info.start_index:06d}.{fmt}"
    texts = decode_samples(samples, data_info)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        if fmt == "txt":
            handle.writelines(text + "\n" for text in texts)
        else:
            rows = samples.detach().cpu().long().tolist()
            for offset, (text, row) in enumerate(zip(texts, rows)):
                record = {"index": info.start_index + offset, "text": text, "token_ids": content_ids(row, data_info),
                          "seed": info.seed, "run": info.run, "checkpoint": info.checkpoint}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)  # a kill never leaves a half-written sample file under the final name
    return [path]


def write_text_preview(samples: torch.Tensor, path: Path, data_info: Mapping[str, Any]) -> Path:
    """Write the preview samples as a ``.txt`` file at ``path`` (``.txt`` added when missing)."""
    path = Path(path)
    if path.suffix != ".txt":
        path = path.with_name(path.name + ".txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(text + "\n" for text in decode_samples(samples, data_info)), encoding="utf-8")
    return path


def log_text_preview(writer: Any, tag: str, samples: torch.Tensor, step: int, data_info: Mapping[str, Any]) -> None:
    """Add the preview sentences to TensorBoard as one text entry (markdown list)."""
    texts = decode_samples(samples, data_info)
    writer.add_text(tag, "\n".join(f"{i + 1}. {text}" for i, text in enumerate(texts)), step)
