"""The audio plugin: modality ``audio``, model ``wavegan``, datasets ``spoken-digits`` and ``tones``, audio metrics.

This module is what the ``cgan.plugins`` entry point names, so it stays light: torch, torchaudio,
soundfile and PyAV are imported only when a loader, writer, model or metric is actually used.
"""

from __future__ import annotations

from typing import Any, Callable

from cgan_core import DatasetSpec, MetricSpec, ModalitySpec, ModelSpec, hookimpl, lazy

from cgan_audio.config import AudioDataConfig, WaveGANConfig

DEFAULT_METRICS = ("fad@logmel", "fad@classifier", "classifier-score")


@hookimpl
def register_modalities(register: Callable[[Any], None]) -> None:
    """Register the ``audio`` modality."""
    register(ModalitySpec(
        name="audio",
        data_config=AudioDataConfig,
        open_source=lazy("cgan_audio.sources", "open_audio_source"),
        write_samples=lazy("cgan_audio.writers", "write_audio_samples"),
        write_preview=lazy("cgan_audio.writers", "write_audio_preview"),
        log_preview=lazy("cgan_audio.writers", "log_audio_preview"),
        default_dataset="spoken-digits",
        default_metrics=DEFAULT_METRICS,
        default_eval_samples=500,
        content_formats=("wav", "flac"),
        description="mono waveforms (N, 1, L) in [-1, 1]: folders of WAV/FLAC/OGG/MP3, resampled (16 kHz default)",
        # Short 8 kHz clips keep the kit fast; without peak normalisation, WAVs read back unchanged
        # up to 16-bit rounding.
        conformance={"data.length": 1024, "data.sample_rate": 8000, "data.normalize": "none",
                     "roundtrip_atol": 1e-4},
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register WaveGAN."""
    register(ModelSpec(
        name="wavegan",
        modality="audio",
        config=WaveGANConfig,
        build=lazy("cgan_audio.wavegan", "build_wavegan"),
        train_defaults={"max_steps": 1000, "batch_size": 16, "loss": "wgan-gp", "n_critic": 5,
                        "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.5, 0.9), "checkpoint_every": 200,
                        "sample_every": 200, "n_preview": 16},
        description="WaveGAN (Donahue et al. 2019): 1-D transposed convolutions, phase shuffle, WGAN-GP",
        conformance={"dataset": "tones", "model.model_size": 2, "model.latent_dim": 16},
    ))


@hookimpl
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register the installed and generated audio datasets."""
    register(DatasetSpec("spoken-digits", "audio", lazy("cgan_audio.datasets", "load_spoken_digits"),
                         data_defaults={"augment": 31}, conformance={"data.augment": 0},
                         description="recorded spoken digits 0-9, labelled, x32 perturbed copies "
                                     "(Debian asterisk-core-sounds-en-wav or $CGAN_DATA_DIR)"))
    register(DatasetSpec("tones", "audio", lazy("cgan_audio.datasets", "load_tones"),
                         description="generated: sines, chirps, square waves and noise bursts in 6 labelled classes"))


@hookimpl
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register the audio metrics (log-mel and classifier Fréchet distances, classifier score)."""
    register(MetricSpec("fad@logmel", "audio", lazy("cgan_audio.metrics", "fad_logmel"),
                        higher_is_better=False, extractor="logmel",
                        description="Fréchet distance between log-mel band statistics of real and generated clips"))
    register(MetricSpec("fad@classifier", "audio", lazy("cgan_audio.metrics", "fad_classifier"),
                        higher_is_better=False, extractor="classifier",
                        description="Fréchet distance on features of a small CNN cgan trains on the labelled reference set"))
    register(MetricSpec("classifier-score", "audio", lazy("cgan_audio.metrics", "classifier_score_metric"),
                        higher_is_better=True, extractor="classifier",
                        description="Inception-Score-style exp(E KL(p(y|x) || p(y))) from the same classifier"))
