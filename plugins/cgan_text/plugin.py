"""The text plugin: modality ``text``, model ``seqgan``, datasets ``lee`` and ``oracle``, and the
text metrics.

This module is what the ``cgan.plugins`` entry point names, so it stays light: torch, gensim,
nltk and transformers are imported only when a loader, writer, model or metric is used.
"""

from __future__ import annotations

from typing import Any, Callable

from cgan_core import DatasetSpec, MetricSpec, ModalitySpec, ModelSpec, hookimpl, lazy

from cgan_text.config import EmbedConfig, PhasesConfig, SeqGANConfig, TextDataConfig


@hookimpl
def register_modalities(register: Callable[[Any], None]) -> None:
    """Register the ``text`` modality."""
    register(ModalitySpec(
        name="text",
        data_config=TextDataConfig,
        open_source=lazy("cgan_text.sources", "open_text_source"),
        write_samples=lazy("cgan_text.writers", "write_text_samples"),
        write_preview=lazy("cgan_text.writers", "write_text_preview"),
        log_preview=lazy("cgan_text.writers", "log_text_preview"),
        default_dataset="lee",
        # nll-oracle applies to the oracle dataset only; elsewhere evaluate skips it with a note.
        default_metrics=("nll-oracle", "nll-test", "bleu", "self-bleu", "fed@minilm", "distinct"),
        default_eval_samples=1000,
        content_formats=("txt", "jsonl"),
        description="Token sequences: .txt (one sample per line), folders of .txt, .csv/.jsonl with data.field",
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register SeqGAN."""
    register(ModelSpec(
        name="seqgan",
        modality="text",
        config=SeqGANConfig,
        build=lazy("cgan_text.seqgan", "build_seqgan"),
        # One step is an MLE epoch, a D round or an adversarial iteration; max_steps only caps.
        train_defaults={"max_steps": 1_000_000, "batch_size": 64, "checkpoint_every": 10, "sample_every": 10,
                        "log_every": 1, "n_preview": 16, "amp": False},
        extra_sections={"phases": PhasesConfig, "embed": EmbedConfig},
        description="SeqGAN (Yu et al., AAAI 2017): LSTM generator, CNN discriminator, policy gradient with rollouts",
        conformance={"model.g_embed_dim": 8, "model.g_hidden_dim": 8, "model.d_embed_dim": 8,
                     "model.d_filter_sizes": [2, 3], "model.d_num_filters": [6, 6], "model.rollouts": 2,
                     "model.d_rounds": 1, "model.d_epochs": 1, "model.d_batches_per_epoch": 2,
                     "model.reward_batch": 64, "data.max_len": 10, "data.max_vocab": 100},
    ))


@hookimpl
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register the bundled ``lee`` corpus and the generated ``oracle`` sequences."""
    register(DatasetSpec("lee", "text", lazy("cgan_text.datasets", "load_lee"),
                         data_defaults={"max_len": 32, "min_freq": 2},
                         description="gensim's bundled Lee news corpus (350 articles), split into sentences"))
    register(DatasetSpec("oracle", "text", lazy("cgan_text.datasets", "load_oracle"),
                         data_defaults={"max_len": 20},
                         conformance={"data.oracle_vocab": 50, "data.oracle_embed": 8, "data.oracle_hidden": 8},
                         description="SeqGAN's synthetic data: 9,984 sequences from an oracle LSTM "
                                     "(data.oracle_params=PATH.npz for the paper's, else a seeded random one)"))


@hookimpl
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register the text metrics."""
    register(MetricSpec("nll-oracle", "text", lazy("cgan_text.metrics", "nll_oracle"),
                        description="Per-token NLL of generated sequences under the oracle (oracle dataset only)"))
    register(MetricSpec("nll-test", "text", lazy("cgan_text.metrics", "nll_test"),
                        description="The generator's per-token NLL on held-out real sequences"))
    register(MetricSpec("bleu", "text", lazy("cgan_text.metrics", "bleu"), higher_is_better=True,
                        description="BLEU-2..5 of generated against held-out sentences (NLTK, smoothing 1)"))
    register(MetricSpec("self-bleu", "text", lazy("cgan_text.metrics", "self_bleu"),
                        description="Self-BLEU-2..5 among generated sentences (lower = more diverse)"))
    register(MetricSpec("distinct", "text", lazy("cgan_text.metrics", "distinct"), higher_is_better=True,
                        description="distinct-1..4: share of distinct n-grams in generated sentences"))
    register(MetricSpec("fed@minilm", "text", lazy("cgan_text.metrics", "fed_minilm"), extractor="all-MiniLM-L6-v2",
                        description="Fréchet distance of all-MiniLM-L6-v2 sentence embeddings (real vs generated)"))
