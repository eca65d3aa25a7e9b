"""A short WaveGAN run moves every audio metric the right way: trained beats untrained, real beats both.

WaveGAN needs thousands of steps before it makes tones or speech, so this test trains on a
texture that a short run can learn: two labelled classes of noise ("hiss" is white, "rumble"
low-passed) at random levels. Within 100 steps the generator moves from its initial quiet,
periodic upsampling artefacts to loud noise of both colours, which every metric must reward.
"""

from __future__ import annotations

import numpy as np
import soundfile
import torch

from cgan_core import DataRequest, evaluate_samples

from cgan_audio.config import AudioDataConfig
from cgan_audio.sources import open_audio_source

LENGTH, RATE = 1024, 8000


def _textures(root, seed: int, per_class: int = 96):
    rng = np.random.default_rng(seed)
    for name in ("hiss", "rumble"):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            noise = rng.standard_normal(LENGTH + 32)
            if name == "rumble":
                noise = np.convolve(noise, np.ones(16) / 4, mode="same")
            wave = noise[16 : 16 + LENGTH]
            wave = wave / np.abs(wave).max() * rng.uniform(0.3, 0.9)
            soundfile.write(root / name / f"{index:03d}.wav", wave.astype(np.float32), RATE, subtype="PCM_16")
    return root


def test_short_training_beats_untrained_on_every_audio_metric(cli, tmp_path):
    from cgan_core.session import build_model, load_run
    from cgan_core.trainer import seed_everything

    train_dir = _textures(tmp_path / "train", seed=0)
    out = tmp_path / "run"
    result = cli("run", "-m", "audio", "-p", "wavegan", "--dataset", str(train_dir), "--max-steps", "100",
                 "--out", str(out), "--no-progress", "--set", f"data.length={LENGTH}", "--set", f"data.sample_rate={RATE}",
                 "--set", "data.normalize=none", "--set", "train.lr_g=1e-3", "--set", "train.lr_d=1e-3",
                 "--set", "train.checkpoint_every=0", "--set", "train.sample_every=0", "--set", "train.tensorboard=false")
    assert result.exit_code == 0, result.output
    trained = load_run(out)
    seed_everything(trained.resolved.config.train.seed)  # the weights the run started from
    untrained = build_model(trained.resolved, trained.data_info)

    config = AudioDataConfig(sample_rate=RATE, length=LENGTH, normalize="none")
    reference = open_audio_source(DataRequest(str(_textures(tmp_path / "reference", seed=1)), config))
    train_clips = open_audio_source(DataRequest(str(train_dir), config)).dataset.samples

    def scores(fake: torch.Tensor) -> dict[str, float]:
        report = evaluate_samples("audio", reference.dataset.samples, fake, real_labels=reference.labels,
                                  data_info=reference.info, cache_dir=tmp_path / "cache",
                                  options={"classifier.max_steps": 150})
        return {row.metric: row.value for row in report.results}

    def generated(model, module) -> torch.Tensor:
        return model.sample(192, generator=torch.Generator().manual_seed(0), generator_module=module)

    real = scores(train_clips)
    after = scores(generated(trained.model, trained.sample_generator))
    before = scores(generated(untrained, untrained.generator))
    assert set(after) == {"fad@logmel", "fad@classifier", "classifier-score"}
    for metric in ("fad@logmel", "fad@classifier"):
        assert real[metric] < after[metric] < before[metric], (metric, real, after, before)
    assert real["classifier-score"] > after["classifier-score"] > before["classifier-score"], (real, after, before)
