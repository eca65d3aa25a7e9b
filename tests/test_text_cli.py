"""SeqGAN through the CLI: train on lee and oracle, generate, evaluate, resume mid-adversarial."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cgan_text.vocab import word_tokenize

# A SeqGAN small enough to train in seconds: every phase runs, each for a step or two.
TINY_SEQGAN = [
    "--set", "model.g_embed_dim=8", "--set", "model.g_hidden_dim=8", "--set", "model.d_embed_dim=8",
    "--set", "model.d_filter_sizes=2,3", "--set", "model.d_num_filters=6,6", "--set", "model.rollouts=2",
    "--set", "model.d_rounds=1", "--set", "model.d_epochs=1", "--set", "model.d_batches_per_epoch=2",
    "--set", "model.reward_batch=64", "--set", "train.batch_size=16", "--set", "train.tensorboard=false",
    "--set", "phases.mle.epochs=1", "--set", "phases.pretrain_d.rounds=1", "--set", "phases.adversarial.iterations=3",
]
TINY_LEE = ["--set", "data.max_items=240", "--set", "data.max_len=10", "--set", "data.max_vocab=150"]
TINY_ORACLE = ["--set", "data.oracle_vocab=40", "--set", "data.oracle_embed=6", "--set", "data.oracle_hidden=6",
               "--set", "data.max_len=8", "--set", "data.oracle_samples=96"]


def _run(cli, out: Path, dataset: str, *extra: str):
    result = cli("run", "--modality", "text", "--plugin", "seqgan", "--dataset", dataset, "--out", str(out),
                 "--no-progress", *TINY_SEQGAN, *extra)
    assert result.exit_code == 0, result.output
    return result


def _checkpoint_tensors(run: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / name / "tensors.safetensors"))


def test_seqgan_trains_on_lee_and_generate_writes_sentences(cli, tmp_path):
    run = tmp_path / "lee"
    _run(cli, run, "lee", *TINY_LEE)
    phases = [json.loads(line)["phase"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases == ["mle", "pretrain_d", "adversarial", "adversarial", "adversarial"]
    info = json.loads((run / "data_info.json").read_text())
    assert info["kind"] == "text" and info["vocab"]["tokens"][:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert list((run / "cache").glob("text-vocab-*.json"))  # the vocabulary is kept for --resume
    preview = sorted((run / "samples").glob("*.txt"))[-1]
    assert len(preview.read_text().splitlines()) == 16

    result = cli("generate", str(run), "-n", "12", "--seed", "5")
    assert result.exit_code == 0, result.output
    [written] = list((run / "generated").glob("*.txt"))
    lines = written.read_text().splitlines()
    assert len(lines) == 12
    words = {w for line in lines for w in word_tokenize(line.replace("<unk>", ""))}
    assert words and words <= set(info["vocab"]["tokens"])  # text re-tokenises into vocabulary words
    again = cli("generate", str(run), "-n", "12", "--seed", "5", "--out", str(tmp_path / "again"))
    assert again.exit_code == 0
    assert (tmp_path / "again" / written.name).read_text() == written.read_text()  # same seed, same text
    jsonl = cli("generate", str(run), "-n", "3", "--format", "jsonl", "--out", str(tmp_path / "j"))
    assert jsonl.exit_code == 0
    record = json.loads(next((tmp_path / "j").glob("*.jsonl")).read_text().splitlines()[0])
    assert set(record) >= {"text", "token_ids", "seed"}

    report = cli("evaluate", str(run), "-n", "40", "--json", "--metric", "bleu", "--metric", "self-bleu",
                 "--metric", "nll-test", "--metric", "distinct", "--metric", "fed@minilm")
    assert report.exit_code == 0, report.output
    payload, _ = json.JSONDecoder().raw_decode(report.output[report.output.index("{"):])
    values = {m["metric"]: m["value"] for m in payload["metrics"]}
    for name in ("bleu-2", "bleu-5", "self-bleu-2", "nll-test", "distinct-1", "fed@minilm"):
        assert name in values, values
    assert 0 < values["bleu-5"] <= values["bleu-2"] <= 1 and values["nll-test"] > 0 and values["fed@minilm"] > 0
    text = json.dumps(payload)
    assert "SmoothingFunction().method1" in text and "n_references" in text and "weights_sha256" in text


def test_oracle_run_reports_nll_oracle(cli, tmp_path):
    run = tmp_path / "oracle"
    _run(cli, run, "oracle", *TINY_ORACLE)
    [written] = [cli("generate", str(run), "-n", "4").exit_code == 0]
    assert written
    ids = next((run / "generated").glob("*.txt")).read_text().splitlines()
    assert len(ids) == 4 and all(len(line.split()) == 8 and all(t.isdigit() for t in line.split()) for line in ids)
    report = cli("evaluate", str(run), "-n", "64", "--json", "--metric", "nll-oracle")
    assert report.exit_code == 0, report.output
    payload, _ = json.JSONDecoder().raw_decode(report.output[report.output.index("{"):])
    [result] = [m for m in payload["metrics"] if m["metric"] == "nll-oracle"]
    assert 0 < result["value"] < 2 * torch.log(torch.tensor(40.0)).item() and "random_seed" in json.dumps(result)


def test_resume_in_the_middle_of_the_adversarial_phase_is_bit_exact(cli, tmp_path):
    straight = tmp_path / "straight"
    _run(cli, straight, "oracle", *TINY_ORACLE, "--set", "train.checkpoint_every=1", "--set", "train.keep_last=10")
    final = _checkpoint_tensors(straight, "step-00000005")
    assert any(k.startswith("s/model/rollout.") for k in final)  # the delayed copy is checkpointed

    # Make a run whose latest checkpoint is adversarial iteration 1 of 3 (step 3), then resume it.
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    for step in (4, 5):
        shutil.rmtree(resumed / "checkpoints" / f"step-{step:08d}")
    (resumed / "checkpoints" / "latest").write_text("step-00000003")
    meta = json.loads((resumed / "checkpoints" / "step-00000003" / "state.json").read_text())
    assert meta["phase"] == "adversarial"
    result = cli("run", "--out", str(resumed), "--resume", "--no-progress")
    assert result.exit_code == 0, result.output
    again = _checkpoint_tensors(resumed, "step-00000005")
    assert final.keys() == again.keys()
    differing = [k for k in final if not torch.equal(final[k], again[k])]
    assert not differing, differing[:5]


def test_word2vec_embeddings_initialise_both_tables(cli, tmp_path):
    run = tmp_path / "w2v"
    _run(cli, run, "lee", *TINY_LEE, "--set", "embed.kind=word2vec", "--set", "embed.dim=12",
         "--set", "embed.epochs=2", "--set", "embed.freeze=true", "--set", "phases.adversarial.iterations=0")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["phase"] == "embed" and lines[0]["vectors_known"] > 50
    tensors = _checkpoint_tensors(run, "step-00000003")
    vectors = tensors["s/model/word_vectors"]
    assert vectors.shape[1] == 12 and vectors.abs().sum() > 0
    # Frozen: the tables still hold the word vectors after MLE and discriminator training.
    assert torch.equal(tensors["s/model/generator.embedding.weight"], vectors)
    assert torch.equal(tensors["s/model/discriminator.embedding.weight"], vectors)


@pytest.mark.parametrize("setting, message", [
    ("embed.kind=glove", "unknown embed.kind 'glove'"),
    ("embed.kind=pretrained", "embed.kind=pretrained needs embed.path"),
])
def test_bad_embedding_settings_are_usage_errors(cli, tmp_path, setting, message):
    result = cli("run", "-m", "text", "-p", "seqgan", "-d", "oracle", "--out", str(tmp_path / "r"), "--no-progress",
                 *TINY_SEQGAN, *TINY_ORACLE, "--set", setting)
    assert result.exit_code == 2 and message in result.output


def test_empty_text_file_is_a_usage_error(cli, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = cli("run", "-m", "text", "-p", "seqgan", "-d", str(empty), "--out", str(tmp_path / "r"), "--no-progress")
    assert result.exit_code == 2 and "no non-empty lines" in result.output and "Traceback" not in result.output
