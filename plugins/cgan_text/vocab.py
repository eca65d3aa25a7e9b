"""Word-level tokenisation and the vocabulary that maps tokens to ids and back.

The vocabulary is built from the training split only, most frequent tokens first (ties broken
alphabetically, so the same corpus always gives the same ids), after the four special tokens
``<pad>`` (0), ``<bos>`` (1), ``<eos>`` (2) and ``<unk>`` (3). A sequence is its tokens, ``<eos>``,
then ``<pad>`` up to ``max_len``. It is stored in the run's ``data_info.json`` as a list.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

import torch

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)

# Numbers with separators, words (letters/digits with inner apostrophes or hyphens), or one
# punctuation character: "don't", "well-known", "3.5" stay whole; "end." splits into "end" ".".
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:['’\-][^\W_]+)*|[^\w\s]", re.UNICODE)
_NO_SPACE_BEFORE = set(".,;:!?%)]}'’\"")
_NO_SPACE_AFTER = set("([{$\"")


def word_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split text into words and punctuation marks."""
    return _WORD.findall(text.lower() if lowercase else text)


def detokenize(tokens: Sequence[str]) -> str:
    """Join word tokens into readable text (no space before closing punctuation)."""
    out = ""
    for token in tokens:
        if out and not (token in _NO_SPACE_BEFORE or out[-1] in _NO_SPACE_AFTER):
            out += " "
        out += token
    return out


@dataclass
class Vocabulary:
    """Token <-> id mapping with the special tokens first.

    Attributes:
        tokens: Id -> token.
    """

    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1, max_vocab: int = 0) -> "Vocabulary":
        """Count tokens and keep those seen at least ``min_freq`` times (at most ``max_vocab``)."""
        counts = Counter(token for sentence in sentences for token in sentence)
        for special in SPECIALS:
            counts.pop(special, None)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_vocab and max_vocab > 0:
            kept = kept[:max_vocab]
        return cls(list(SPECIALS) + kept)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def words(self) -> int:
        """Number of ordinary tokens (without the special ones)."""
        return len(self.tokens) - len(SPECIALS)

    def encode(self, tokens: Sequence[str], max_len: int) -> tuple[list[int], bool]:
        """Ids of ``tokens`` + ``<eos>``, padded to ``max_len``.

        Returns:
            ``(ids, truncated)``: ``truncated`` is true when tokens had to be cut so that
            ``<eos>`` fits.
        """
        ids = [self.index.get(token, UNK_ID) for token in tokens]
        truncated = len(ids) > max_len - 1
        ids = ids[: max_len - 1] + [EOS_ID]
        return ids + [PAD_ID] * (max_len - len(ids)), truncated

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first ``<eos>`` or ``<pad>`` (``<bos>`` dropped)."""
        out = []
        for i in ids:
            i = int(i)
            if i in (EOS_ID, PAD_ID):
                break
            if i == BOS_ID:
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return out

    def to_info(self) -> dict[str, Any]:
        """JSON-able form for ``data_info``."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> "Vocabulary":
        """Rebuild from :meth:`to_info` output."""
        return cls(list(info["tokens"]))


def content_mask(sequences: torch.Tensor, eos_id: int = EOS_ID, pad_id: int = PAD_ID) -> torch.Tensor:
    """1 for tokens up to and including the first ``<eos>``, 0 for the padding after it."""
    ended = (sequences == eos_id) | (sequences == pad_id)
    after_end = torch.cumsum(ended.long(), dim=1) - ended.long() > 0  # strictly after the first end token
    return (~after_end).float()


class Tokenizer:
    """Turns text into tokens and tokens back into text: words, or a local Hugging Face tokenizer.

    Args:
        spec: ``word`` or the path of a local Hugging Face tokenizer folder.
        lowercase: Lower-case text first.
    """

    def __init__(self, spec: str = "word", lowercase: bool = True) -> None:
        self.spec = spec
        self.lowercase = lowercase
        self._hf: Optional[Any] = None
        if spec != "word":
            self._hf = load_hf_tokenizer(spec)

    def tokenize(self, text: str) -> list[str]:
        """Tokens of one line."""
        if self._hf is None:
            return word_tokenize(text, self.lowercase)
        return list(self._hf.tokenize(text.lower() if self.lowercase else text))

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Text of a token list."""
        if self._hf is None:
            return detokenize(tokens)
        return str(self._hf.convert_tokens_to_string(list(tokens))).strip()


def load_hf_tokenizer(path: str) -> Any:
    """Load a Hugging Face tokenizer from a local folder, never from the network.

    Raises:
        UsageError: the folder does not exist or holds no tokenizer.
    """
    from pathlib import Path

    from cgan_core import UsageError

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UsageError(f"data.tokenizer '{path}' is neither 'word' nor a local Hugging Face tokenizer folder")
    try:
        from transformers import AutoTokenizer
    except ImportError:  # pragma: no cover - transformers is a dependency
        from cgan_core import MissingDependencyError

        raise MissingDependencyError("transformers", "data.tokenizer=PATH") from None
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load a tokenizer from '{folder}': {str(exc).splitlines()[0]}") from None


def tokenizer_for(info: Mapping[str, Any]) -> Tokenizer:
    """The tokenizer a dataset's ``info`` names (``word`` when its folder is gone)."""
    spec = str(info.get("tokenizer", "word"))
    try:
        return Tokenizer(spec, bool(info.get("lowercase", True)))
    except Exception:  # a moved tokenizer folder: fall back to joining tokens with spaces
        return Tokenizer("word", bool(info.get("lowercase", True)))
