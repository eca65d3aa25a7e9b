"""Audio metrics: log-mel and classifier Fréchet distances and the classifier score, on generated tones."""

from __future__ import annotations

import pytest
import torch

from cgan_core import DataRequest, EvalContext, MetricUnavailable

from cgan_audio.config import AudioDataConfig
from cgan_audio.datasets import load_tones
from cgan_audio.features import MelSettings, logmel, logmel_statistics
from cgan_audio.metrics import classifier_score_metric, fad_classifier, fad_logmel

CONFIG = AudioDataConfig(sample_rate=8000, length=1024)


@pytest.fixture(scope="module")
def tones():
    return (load_tones(DataRequest("tones", CONFIG)), load_tones(DataRequest("tones", CONFIG, split="reference")))


def _context(reference, fake, labels=True, cache_dir=None, **options):
    return EvalContext(modality="audio", real=reference.dataset.samples, fake=fake,
                       real_labels=reference.labels if labels else None, data_info=reference.info,
                       cache_dir=cache_dir, options={"classifier.max_steps": 120, **options})


def test_mel_settings_follow_the_clip_and_rate():
    assert MelSettings.for_clips(16000, 16384) == MelSettings(16000, 1024, 256, 64)
    assert MelSettings.for_clips(8000, 1024) == MelSettings(8000, 512, 128, 64)
    assert MelSettings.for_clips(4000, 256) == MelSettings(4000, 256, 64, 32)
    spectrograms = logmel(torch.zeros(3, 1, 1024), MelSettings.for_clips(8000, 1024))
    assert spectrograms.shape == (3, 64, 9)
    assert logmel_statistics(spectrograms).shape == (3, 128)


def test_a_louder_tone_moves_energy_into_its_mel_band():
    settings = MelSettings.for_clips(8000, 1024)
    t = torch.arange(1024) / 8000
    low, high = torch.sin(2 * torch.pi * 300 * t), torch.sin(2 * torch.pi * 2000 * t)
    bands = logmel(torch.stack([low, high]).unsqueeze(1), settings).mean(dim=2)
    assert int(bands[0].argmax()) < int(bands[1].argmax())


def test_logmel_distance_orders_real_other_split_and_noise(tones):
    train, reference = tones
    same = fad_logmel(_context(reference, reference.dataset.samples))["fad@logmel"]
    other_split = fad_logmel(_context(reference, train.dataset.samples))["fad@logmel"]
    noise = fad_logmel(_context(reference, 0.3 * torch.randn(200, 1, 1024).clamp(-3, 3) / 3))["fad@logmel"]
    silence = fad_logmel(_context(reference, torch.zeros(200, 1, 1024) + 1e-4 * torch.randn(200, 1, 1024)))
    assert same == pytest.approx(0.0, abs=1e-6)
    assert other_split < 0.1 * noise and other_split < 0.1 * silence["fad@logmel"]


def test_classifier_metrics_separate_real_from_noise_and_record_provenance(tones, tmp_path):
    train, reference = tones
    real_ctx = _context(reference, train.dataset.samples, cache_dir=tmp_path)
    fad_real = fad_classifier(real_ctx)["fad@classifier"]
    score_real = classifier_score_metric(real_ctx)["classifier-score"]
    noise_ctx = _context(reference, 0.2 * torch.randn(384, 1, 1024), cache_dir=tmp_path)
    fad_noise = fad_classifier(noise_ctx)["fad@classifier"]
    score_noise = classifier_score_metric(noise_ctx)["classifier-score"]
    assert fad_real < 0.2 * fad_noise
    assert score_real > 4.0 and score_noise < 2.0  # six classes used evenly vs everything in one class
    record = real_ctx.provenance["fad@classifier"]
    assert record["extractor"] == "classifier" and len(record["weights_sha256"]) == 64
    assert record["classifier_accuracy"] >= 0.9 and record["classifier_trained_on"] == "reference clips"
    assert "n_mels=64" in record["preprocessing"]
    # The second evaluation loaded the cached classifier: the same weights.
    assert noise_ctx.provenance["fad@classifier"]["weights_sha256"] == record["weights_sha256"]
    assert len(list((tmp_path / "classifiers").glob("audio-*.safetensors"))) == 1


def test_classifier_metrics_need_labels_but_logmel_does_not(tones):
    _, reference = tones
    ctx = _context(reference, reference.dataset.samples[:50], labels=False)
    with pytest.raises(MetricUnavailable, match="need labelled clips.*fad@logmel"):
        fad_classifier(ctx)
    assert fad_logmel(ctx)["fad@logmel"] >= 0.0


def test_samples_in_the_wrong_format_are_refused(tones):
    _, reference = tones
    with pytest.raises(ValueError, match=r"\(N, 1, L\)"):
        fad_logmel(_context(reference, torch.zeros(4, 1024)))
