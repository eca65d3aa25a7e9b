"""WaveGAN's networks, phase shuffle, the model's training defaults, and the audio writers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from cgan_core import SampleInfo, UsageError

from cgan_audio.config import AudioDataConfig, WaveGANConfig
from cgan_audio.phase_shuffle import PhaseShuffle, phase_shuffle
from cgan_audio.wavegan import WaveGAN, WaveGANDiscriminator, WaveGANGenerator, upsampling_layers
from cgan_audio.writers import log_audio_preview, write_audio_preview, write_audio_samples


def _config(length: int = 1024, **model) -> SimpleNamespace:
    return SimpleNamespace(data=AudioDataConfig(length=length), model=WaveGANConfig(**{"model_size": 4, **model}))


@pytest.mark.parametrize("length,layers", [(1024, 3), (4096, 4), (16384, 5)])
def test_generator_and_discriminator_shapes(length, layers):
    assert upsampling_layers(length, 4) == layers
    generator = WaveGANGenerator(latent_dim=10, model_size=2, layers=layers)
    discriminator = WaveGANDiscriminator(model_size=2, layers=layers)
    with torch.no_grad():
        waves = generator(torch.rand(3, 10) * 2 - 1)
    assert waves.shape == (3, 1, length) and float(waves.abs().max()) <= 1.0
    assert discriminator(waves).shape == (3,)
    # The paper's layout: kernel 25, stride 4, channels halving towards the output.
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose1d)]
    assert [(c.kernel_size[0], c.stride[0]) for c in convs] == [(25, 4)] * layers
    assert convs[0].in_channels == 2 * 2 ** (layers - 1) and convs[-1].out_channels == 1


def test_paper_size_generator_is_16_by_1024_at_the_start():
    generator = WaveGANGenerator(latent_dim=100, model_size=64, layers=5)
    assert generator.dense.out_features == 16 * 1024


def test_lengths_that_are_not_16_times_a_power_of_4_are_refused():
    with pytest.raises(UsageError, match=r"data.length = 16 \* 4\*\*k.*16384"):
        WaveGAN(_config(length=16000), {"length": 16000, "channels": 1})


def test_phase_shuffle_shifts_each_example_with_reflection():
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 8).repeat(64, 2, 1)
    out = phase_shuffle(x, 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    seen = set()
    for row in out:
        assert torch.equal(row[0], row[1])  # one shift per example, shared by its channels
        shift = int(row[0, 4] - 4) * -1  # interior positions move by the shift
        seen.add(shift)
        expected = [abs(i - shift) if i - shift < 8 else 14 - (i - shift) for i in range(8)]
        assert row[0].tolist() == [float(v) for v in expected]
    assert seen == {-2, -1, 0, 1, 2}


def test_phase_shuffle_is_off_in_eval_mode_and_passes_gradients():
    layer = PhaseShuffle(2)
    x = torch.randn(4, 3, 32, requires_grad=True)
    layer.train()
    layer(x).sum().backward()
    assert torch.allclose(x.grad.sum(), torch.tensor(4 * 3 * 32.0))  # a permutation-with-reflection keeps the count
    layer.eval()
    assert torch.equal(layer(x), x)


def test_wavegan_samples_are_reproducible_and_latents_uniform():
    model = WaveGAN(_config(), {"length": 1024, "channels": 1})
    a = model.sample(5, generator=torch.Generator().manual_seed(4))
    b = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert a.shape == (5, 1, 1024) and torch.equal(a, b)
    latent = model.sample_latent(2000, generator=torch.Generator().manual_seed(0))
    assert -1.0 <= float(latent.min()) and float(latent.max()) <= 1.0 and abs(float(latent.mean())) < 0.02


def test_default_training_setup_is_the_papers(tmp_path):
    from cgan_core.session import resolve_run

    resolved = resolve_run("audio", "wavegan", "tones")
    train, model, data = resolved.config.train, resolved.config.model, resolved.config.data
    assert (train.loss, train.n_critic, train.lr_g, train.lr_d, tuple(train.betas)) == ("wgan-gp", 5, 1e-4, 1e-4, (0.5, 0.9))
    assert (model.kernel_size, model.stride, model.phase_shuffle, model.latent_dim) == (25, 4, 2, 100)
    assert (data.sample_rate, data.length) == (16000, 16384)
    assert resolved.modality.default_dataset == "spoken-digits"
    from cgan_core.plugins import get_registry

    loss = get_registry().loss(train.loss)
    assert loss.penalty is not None and loss.default_penalty_weight == 10.0


def test_wav_and_flac_samples_read_back_at_rate_and_length(tmp_path):
    samples = torch.linspace(-1, 1, 3 * 1024).view(3, 1, 1024)
    paths = write_audio_samples(samples, tmp_path / "out", SampleInfo(seed=7), {"sample_rate": 8000})
    assert [p.name for p in paths] == [f"seed7-sample-00000{i}.wav" for i in range(3)]
    for path, sample in zip(paths, samples):
        info = soundfile.info(str(path))
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (8000, 1024, 1, "PCM_16")
        data, _ = soundfile.read(str(path), dtype="float32")
        assert np.abs(data - sample.numpy().reshape(-1)).max() <= 2.0 / 32767  # scaled by 32767, read back by 32768
    flac = write_audio_samples(samples[:1], tmp_path / "flac", SampleInfo(), {"sample_rate": 8000}, fmt="flac")
    assert flac[0].name == "sample-000000.flac" and soundfile.info(str(flac[0])).frames == 1024
    with pytest.raises(ValueError, match="wav or flac"):
        write_audio_samples(samples, tmp_path, SampleInfo(), {}, fmt="mp4")


def test_preview_is_a_spectrogram_grid_with_a_listening_file(tmp_path):
    t = torch.arange(4096) / 16000
    tone = (0.5 * torch.sin(2 * torch.pi * 1000 * t)).view(1, 1, -1)
    samples = torch.cat([tone, torch.zeros(1, 1, 4096), tone, tone])
    path = write_audio_preview(samples, tmp_path / "samples" / "step-00000010", {"sample_rate": 16000})
    assert path == tmp_path / "samples" / "step-00000010.png"
    picture = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert picture.shape[0] > 50 and picture.shape[1] > 50
    listening = tmp_path / "samples" / "audio" / "step-00000010.wav"
    info = soundfile.info(str(listening))
    assert info.samplerate == 16000 and info.frames == 4 * 4096 + 4 * 4000
    # The silent clip (top right tile) is dark, the tone's tile has a bright line.
    height, width = (picture.shape[0] - 2) // 2, (picture.shape[1] - 2) // 2
    silent_tile = picture[2:height, width + 2 : 2 * width]
    tone_tile = picture[2:height, 2:width]
    assert silent_tile.sum(axis=2).max() < 30 and tone_tile.sum(axis=2).max() > 500


def test_tensorboard_preview_adds_audio_at_the_sample_rate():
    calls = []

    class Writer:
        def add_audio(self, tag, sound, step, sample_rate):
            calls.append(("audio", tag, tuple(sound.shape), step, sample_rate))

        def add_image(self, tag, image, step, dataformats):
            calls.append(("image", tag, image.shape[-1], step, dataformats))

    log_audio_preview(Writer(), "samples", torch.zeros(6, 1, 1024), 3, {"sample_rate": 8000})
    assert calls[:4] == [("audio", f"samples/{i}", (1, 1024), 3, 8000) for i in range(4)]
    assert calls[4] == ("image", "samples/spectrograms", 3, 3, "HWC") and len(calls) == 5
