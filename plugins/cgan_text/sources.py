"""Reading text from a user's source and turning lines into token-id sequences.

Sources: a ``.txt`` file (one sample per line), a folder of ``.txt`` files (searched
recursively), a ``.csv`` or ``.jsonl`` file whose ``data.field`` column/key holds the text.
Binary files are refused; lines that are not UTF-8 (or JSON lines that do not parse) are
skipped and counted, or fail the run with ``--strict-data``; over-long lines are truncated and
counted. The lines are split into a training and a held-out reference part by a seeded
permutation, and the vocabulary comes from the training part only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from cgan_core import CganRuntimeError, DataRequest, LoadedData, SkipLog, TensorData, UsageError, tensor_fingerprint

from cgan_text.vocab import BOS_ID, EOS_ID, PAD_ID, Tokenizer, Vocabulary

TEXT_SUFFIXES = {".txt", ".text"}
BINARY_SNIFF_BYTES = 8192


@dataclass
class TextLines:
    """Lines read from a source, with what was skipped or cut on the way."""

    lines: list[str] = field(default_factory=list)
    skipped: SkipLog = field(default_factory=SkipLog)
    cut_lines: int = 0


def _refuse_binary(path: Path, head: bytes) -> None:
    if b"\x00" in head[:BINARY_SNIFF_BYTES]:
        raise UsageError(f"'{path}' looks like a binary file (it contains NUL bytes); give UTF-8 text, "
                         "one sample per line")


def _bad_item(out: TextLines, strict: bool, where: str, why: str) -> None:
    if strict:
        raise CganRuntimeError(f"{where}: {why} (--strict-data is set; remove it to skip such lines)")
    out.skipped.add(f"{where}: {why}")


def _keep(out: TextLines, text: str, max_chars: int) -> None:
    text = text.strip()
    if not text:
        return
    if max_chars and len(text) > max_chars:
        text = text[:max_chars]
        out.cut_lines += 1
    out.lines.append(text)


def read_text_file(path: Path, out: TextLines, strict: bool, max_chars: int,
                   fallback_encoding: Optional[str] = None) -> None:
    """Append the non-empty lines of a text file to ``out``, decoding each line as UTF-8.

    ``fallback_encoding`` decodes lines that are not UTF-8 (for bundled corpora whose encoding
    is known); without it such lines are skipped and counted.
    """
    raw = path.read_bytes()
    _refuse_binary(path, raw)
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if fallback_encoding:
                text = line.decode(fallback_encoding, errors="replace")
            else:
                _bad_item(out, strict, f"{path}:{number}", f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
        _keep(out, text, max_chars)


def read_jsonl_file(path: Path, out: TextLines, strict: bool, max_chars: int, key: str) -> None:
    """Append the ``key`` string of each JSON line of ``path`` to ``out``."""
    raw = path.read_bytes()
    _refuse_binary(path, raw)
    found_key = False
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            _bad_item(out, strict, f"{path}:{number}", f"not UTF-8 ({exc.reason} at byte {exc.start})")
            continue
        except json.JSONDecodeError as exc:
            _bad_item(out, strict, f"{path}:{number}", f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict) or not isinstance(record.get(key), str):
            _bad_item(out, strict, f"{path}:{number}", f"no string field '{key}'")
            continue
        found_key = True
        _keep(out, record[key], max_chars)
    if not found_key and out.skipped.count:
        raise UsageError(f"no line of '{path}' has a string field '{key}'; set --set data.field=NAME")


def read_csv_file(path: Path, out: TextLines, strict: bool, max_chars: int, column: str) -> None:
    """Append the ``column`` cell of each row of a CSV file (with a header row) to ``out``."""
    raw = path.read_bytes()
    _refuse_binary(path, raw)
    # Decode line by line so that one bad line is skipped instead of failing the whole file.
    good: list[str] = []
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            good.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            _bad_item(out, strict, f"{path}:{number}", f"not UTF-8 ({exc.reason} at byte {exc.start})")
    reader = csv.DictReader(io.StringIO("".join(good)))
    if reader.fieldnames is None:
        return
    if column not in reader.fieldnames:
        raise UsageError(f"'{path}' has no column '{column}'; its columns are {', '.join(reader.fieldnames)}; "
                         "set --set data.field=NAME")
    for row in reader:
        _keep(out, row.get(column) or "", max_chars)


def read_source(request: DataRequest) -> TextLines:
    """Read every line of the request's source (a file or a folder).

    Raises:
        UsageError: missing path, unsupported file type, binary file.
    """
    config = request.config
    path = Path(request.source).expanduser()
    if not path.exists():
        raise UsageError(f"dataset path '{path}' does not exist; give a .txt, .csv or .jsonl file, a folder of "
                         ".txt files, or a dataset name (see 'cgan list datasets')")
    out = TextLines()
    strict, max_chars = request.strict, int(config.max_line_chars)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise UsageError(f"no .txt files found in '{path}'")
        for file in files:
            read_text_file(file, out, strict, max_chars)
        return out
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES or suffix == "":
        read_text_file(path, out, strict, max_chars)
    elif suffix == ".jsonl":
        read_jsonl_file(path, out, strict, max_chars, config.field)
    elif suffix == ".csv":
        read_csv_file(path, out, strict, max_chars, config.field)
    else:
        raise UsageError(f"unsupported text source '{path}'; expected a .txt, .csv or .jsonl file or a folder "
                         "of .txt files")
    return out


def split_indices(count: int, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/reference split of ``count`` lines (at least one training line)."""
    if not 0.0 <= test_fraction < 1.0:
        raise UsageError(f"data.test_fraction must be in [0, 1), got {test_fraction}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    held_out = min(int(round(count * test_fraction)), count - 1)
    return sorted(order[held_out:]), sorted(order[:held_out])


def _vocab_cache_path(request: DataRequest, key_parts: dict[str, Any]) -> Optional[Path]:
    if request.cache_dir is None:
        return None
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:16]
    return Path(request.cache_dir) / f"text-vocab-{key}.json"


def _vocabulary(request: DataRequest, train_tokens: Sequence[Sequence[str]], key_parts: dict[str, Any]) -> Vocabulary:
    """The training split's vocabulary; a resumed run reuses the one saved in its cache."""
    config = request.config
    path = _vocab_cache_path(request, key_parts)
    if path is not None and path.is_file():
        try:
            return Vocabulary.from_info(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    vocab = Vocabulary.build(train_tokens, int(config.min_freq), int(config.max_vocab))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(vocab.to_info()), encoding="utf-8")
        tmp.replace(path)
    return vocab


def lines_to_data(request: DataRequest, read: TextLines, source_name: str) -> LoadedData:
    """Tokenise, split, build the vocabulary and encode: the text modality's ``LoadedData``.

    Raises:
        UsageError: no usable line, or a vocabulary too small to train on.
    """
    config = request.config
    lines = read.lines[: config.max_items] if config.max_items else read.lines
    if not lines:
        detail = f" ({read.skipped.count} skipped; first: {read.skipped.reasons[0]})" if read.skipped.count else ""
        raise UsageError(f"text source '{source_name}' has no non-empty lines{detail}")
    if int(config.max_len) < 2:
        raise UsageError(f"data.max_len must be at least 2 (one token and <eos>), got {config.max_len}")
    tokenizer = Tokenizer(config.tokenizer, config.lowercase)
    tokenized = [tokenizer.tokenize(line) for line in lines]
    train_idx, ref_idx = split_indices(len(tokenized), float(config.test_fraction), int(config.split_seed))
    # The key leaves the content out on purpose: a resumed run must get its own vocabulary back
    # (the model's embedding rows are tied to it) even if the corpus file was edited meanwhile.
    key_parts = {"source": source_name, "tokenizer": config.tokenizer,
                 "lowercase": config.lowercase, "min_freq": config.min_freq, "max_vocab": config.max_vocab,
                 "test_fraction": config.test_fraction, "split_seed": config.split_seed}
    vocab = _vocabulary(request, [tokenized[i] for i in train_idx], key_parts)
    if vocab.words < int(config.min_vocab):
        raise UsageError(f"the vocabulary of '{source_name}' has {vocab.words} word(s), too few to train "
                         f"(data.min_vocab={config.min_vocab}); give more text or lower data.min_freq")
    chosen = ref_idx if request.split != "train" else train_idx
    if not chosen:
        raise UsageError(f"text source '{source_name}' has no held-out lines for a reference set; raise "
                         f"data.test_fraction (now {config.test_fraction}) or give more lines")
    encoded, truncated = [], 0
    for i in chosen:
        ids, cut = vocab.encode(tokenized[i], int(config.max_len))
        encoded.append(ids)
        truncated += int(cut)
    if truncated:
        print(f"text: truncated {truncated} of {len(chosen)} line(s) to data.max_len={config.max_len} tokens",
              file=sys.stderr)
    if read.cut_lines:
        print(f"text: cut {read.cut_lines} line(s) longer than data.max_line_chars={config.max_line_chars}",
              file=sys.stderr)
    tensor = torch.tensor(encoded, dtype=torch.long)
    info = {
        "kind": "text",
        "vocab": vocab.to_info(),
        "vocab_size": len(vocab),
        "seq_len": int(config.max_len),
        "start_token": BOS_ID,
        "eos_token": EOS_ID,
        "pad_token": PAD_ID,
        "tokenizer": config.tokenizer,
        "lowercase": bool(config.lowercase),
        "items": len(train_idx),
        "reference_items": len(ref_idx),
        "truncated_lines": truncated,
        "cut_lines": read.cut_lines,
    }
    return LoadedData(TensorData(tensor), info, None, read.skipped, source_name, tensor_fingerprint(tensor))


def open_text_source(request: DataRequest) -> LoadedData:
    """The text modality's ``open_source``: a file or folder of the user's text."""
    read = read_source(request)
    return lines_to_data(request, read, str(Path(request.source).expanduser()))
