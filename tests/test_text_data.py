"""Text data: tokeniser and vocabulary, sources and their bad inputs, word vectors, writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cgan_core import CganRuntimeError, DataRequest, SampleInfo, UsageError
from cgan_text.config import TextDataConfig
from cgan_text.datasets import load_lee, load_oracle, split_sentences
from cgan_text.embeddings import embedding_matrix, load_vectors, train_vectors
from cgan_text.sources import open_text_source
from cgan_text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, Vocabulary, content_mask, word_tokenize
from cgan_text.writers import decode_samples, write_text_samples

LINES = ["The cat sat on the mat.", "A dog sat on the log!", "The cat saw the dog.", "Dogs and cats don't mix.",
         "The mat is red.", "A log is brown.", "Cats sit; dogs run.", "The end."]


def _request(source: Path | str, split: str = "train", strict: bool = False, cache_dir: Path | None = None,
             **config) -> DataRequest:
    defaults = {"min_vocab": 3, "test_fraction": 0.25, "max_len": 8}
    defaults.update(config)
    return DataRequest(str(source), TextDataConfig(**defaults), strict=strict, split=split, cache_dir=cache_dir)


def test_word_tokenizer_and_vocabulary_round_trip():
    tokens = word_tokenize("Don't stop: U.S. growth hit 3.5 per-cent, well-known!")
    assert tokens == ["don't", "stop", ":", "u", ".", "s", ".", "growth", "hit", "3.5", "per-cent", ",", "well-known", "!"]
    vocab = Vocabulary.build([word_tokenize(line) for line in LINES], min_freq=2)
    assert vocab.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert vocab.tokens[4:6] == [".", "the"]  # most frequent first (7 each), ties alphabetical
    ids, truncated = vocab.encode(word_tokenize("The cat sat on the zebra."), max_len=10)
    assert not truncated and ids[-3:] == [EOS_ID, PAD_ID, PAD_ID] and UNK_ID in ids
    assert vocab.decode_tokens(ids) == ["the", "cat", "sat", "on", "the", "<unk>", "."]
    assert Tokenizer().detokenize(vocab.decode_tokens(ids)) == "the cat sat on the <unk>."
    assert Vocabulary.from_info(json.loads(json.dumps(vocab.to_info()))).tokens == vocab.tokens
    cut, truncated = vocab.encode(["the"] * 20, max_len=5)
    assert truncated and cut == [vocab.index["the"]] * 4 + [EOS_ID]


def test_content_mask_covers_tokens_up_to_the_first_end():
    mask = content_mask(torch.tensor([[5, 6, EOS_ID, PAD_ID, 7], [5, 5, 5, 5, 5], [PAD_ID, 4, 4, 4, 4]]))
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_text_file_source_splits_encodes_and_saves_the_vocabulary(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(LINES) + "\n\n", encoding="utf-8")
    cache = tmp_path / "cache"
    train = open_text_source(_request(corpus, cache_dir=cache))
    reference = open_text_source(_request(corpus, split="reference", cache_dir=cache))
    assert len(train) == 6 and len(reference) == 2 and train.info["reference_items"] == 2
    assert train.info["vocab"] == reference.info["vocab"]  # the reference is encoded with the training vocabulary
    assert train.dataset.samples.shape == (6, 8) and train.dataset.samples.dtype == torch.long
    assert train.info["start_token"] == BOS_ID and train.info["vocab_size"] == len(train.info["vocab"]["tokens"])
    saved = list(cache.glob("text-vocab-*.json"))
    assert len(saved) == 1
    # A resumed run reuses the saved vocabulary even if the file has changed since.
    corpus.write_text("\n".join(LINES + ["zebras everywhere now"] * 5), encoding="utf-8")
    again = open_text_source(_request(corpus, cache_dir=cache, test_fraction=0.25))
    assert again.info["vocab"] == train.info["vocab"] and "zebras" not in again.info["vocab"]["tokens"]
    fresh = open_text_source(_request(corpus, cache_dir=tmp_path / "other-cache"))
    assert "zebras" in fresh.info["vocab"]["tokens"]


def test_csv_jsonl_and_folder_sources(tmp_path):
    (tmp_path / "d.csv").write_text("id,body\n" + "".join(f'{i},"{line}"\n' for i, line in enumerate(LINES)))
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"body": line}) + "\n" for line in LINES) + "{broken\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("\n".join(LINES[:4]))
    (folder / "sub" / "b.txt").write_text("\n".join(LINES[4:]))
    assert len(open_text_source(_request(tmp_path / "d.csv", field="body"))) == 6
    jsonl = open_text_source(_request(tmp_path / "d.jsonl", field="body"))
    assert len(jsonl) == 6 and jsonl.skipped.count == 1 and "not JSON" in jsonl.skipped.reasons[0]
    assert len(open_text_source(_request(folder))) == 6
    with pytest.raises(UsageError, match="no column 'text'.*data.field"):
        open_text_source(_request(tmp_path / "d.csv"))


def test_bad_inputs_give_clear_errors_or_are_skipped_and_counted(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(UsageError, match="no non-empty lines"):
        open_text_source(_request(empty))
    binary = tmp_path / "model.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(UsageError, match="binary"):
        open_text_source(_request(binary))
    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes("\n".join(LINES).encode() + b"\ncaf\xe9 latin-1 line\n" + b"word " * 50 + b"\n")
    data = open_text_source(_request(mixed, max_line_chars=100, test_fraction=0.0))
    assert data.skipped.count == 1 and "not UTF-8" in data.skipped.reasons[0] and "mixed.txt:9" in data.skipped.reasons[0]
    assert data.info["cut_lines"] == 1  # the 250-character line was cut to 100
    assert data.info["truncated_lines"] >= 1  # ... and to max_len tokens
    with pytest.raises(CganRuntimeError, match="not UTF-8.*--strict-data"):
        open_text_source(_request(mixed, strict=True))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("yes\nno\nyes\nno\n")
    with pytest.raises(UsageError, match="too few to train"):
        open_text_source(_request(tiny, min_vocab=5))
    with pytest.raises(UsageError, match="does not exist"):
        open_text_source(_request(tmp_path / "missing.txt"))
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    with pytest.raises(UsageError, match="unsupported text source"):
        open_text_source(_request(tmp_path / "d.parquet"))


def test_lee_dataset_is_sentences_of_news():
    assert split_sentences("The U.S. said no. Then it rained! \"Why?\" he asked.") == \
        ["The U.S. said no.", "Then it rained!", "\"Why?\" he asked."]
    data = load_lee(_request("lee", max_len=32, min_freq=2, test_fraction=0.1, max_vocab=5000))
    assert 2000 < len(data) < 3000 and data.skipped.count == 0
    assert data.info["vocab_size"] > 1000 and "government" in data.info["vocab"]["tokens"]


def test_oracle_dataset_train_and_reference_are_different_samples_of_one_oracle():
    config = {"oracle_vocab": 50, "oracle_embed": 4, "oracle_hidden": 4, "oracle_samples": 64, "max_len": 6}
    train = load_oracle(_request("oracle", **config))
    reference = load_oracle(_request("oracle", split="reference", **config))
    assert train.dataset.samples.shape == (64, 6) and train.info["oracle"]["random_seed"] == 0
    assert not torch.equal(train.dataset.samples, reference.dataset.samples)
    assert torch.equal(train.dataset.samples, load_oracle(_request("oracle", **config)).dataset.samples)


def test_huggingface_tokenizer_from_a_local_folder(tmp_path):
    from cgan_text.minilm import minilm_folder

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(LINES))
    data = open_text_source(_request(corpus, tokenizer=str(minilm_folder()), max_len=12))
    tokens = data.info["vocab"]["tokens"]
    assert "the" in tokens and "." in tokens
    texts = decode_samples(data.dataset.samples, data.info)
    assert any(text.startswith("the cat") for text in texts)
    with pytest.raises(UsageError, match="neither 'word' nor a local Hugging Face tokenizer"):
        open_text_source(_request(corpus, tokenizer=str(tmp_path / "nope")))


def test_word2vec_and_fasttext_vectors_with_out_of_vocabulary_rules(tmp_path):
    sentences = [word_tokenize(line) for line in LINES] * 5
    tokens = ["<pad>", "<bos>", "<eos>", "<unk>", "the", "cat", "zebra"]
    w2v = train_vectors("word2vec", sentences, dim=8, window=2, epochs=2, min_count=1, seed=3)
    again = train_vectors("word2vec", sentences, dim=8, window=2, epochs=2, min_count=1, seed=3)
    assert (w2v["cat"] == again["cat"]).all()  # one worker + fixed seed: reproducible
    matrix, counts = embedding_matrix(w2v, tokens, seed=0)
    assert matrix.shape == (7, 8) and counts == {"known": 2, "subword": 0, "random": 4}
    assert torch.equal(matrix[0], torch.zeros(8)) and torch.allclose(matrix[5], torch.tensor(w2v["cat"]))
    fasttext = train_vectors("fasttext", sentences, dim=8, window=2, epochs=2, min_count=1, seed=3)
    _, counts = embedding_matrix(fasttext, tokens, seed=0)
    assert counts["subword"] == 4 and counts["random"] == 0  # fastText builds OOV vectors from n-grams
    path = tmp_path / "vectors.vec"
    w2v.save_word2vec_format(str(path))
    assert (load_vectors(str(path))["cat"] == w2v["cat"]).all()
    w2v.save(str(tmp_path / "vectors.kv"))
    assert load_vectors(str(tmp_path / "vectors.kv")).vector_size == 8
    with pytest.raises(UsageError, match="does not exist"):
        load_vectors(str(tmp_path / "none.bin"))


def test_writers_txt_and_jsonl(tmp_path):
    vocab = Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "hello", "world", "!"])
    info = {"kind": "text", "vocab": vocab.to_info(), "eos_token": EOS_ID, "pad_token": PAD_ID}
    samples = torch.tensor([[4, 5, 6, EOS_ID, 4], [5, PAD_ID, 4, 4, 4]])
    [txt] = write_text_samples(samples, tmp_path, SampleInfo(seed=7), info)
    assert txt.read_text().splitlines() == ["hello world!", "world"]
    [jsonl] = write_text_samples(samples, tmp_path, SampleInfo(seed=7, start_index=10), info, fmt="jsonl")
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert records[0] == {"index": 10, "text": "hello world!", "token_ids": [4, 5, 6], "seed": 7, "run": None,
                          "checkpoint": None}
    [ids] = write_text_samples(samples, tmp_path / "oracle", SampleInfo(seed=1), {"kind": "oracle"})
    assert ids.read_text().splitlines()[0] == "4 5 6 2 4"
