"""Audio sources and datasets: decoding, resampling, mono, cut/pad, skipping bad files, named datasets."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from cgan_core import CganRuntimeError, DataRequest, UsageError

from cgan_audio import datasets as audio_datasets
from cgan_audio.config import AudioDataConfig
from cgan_audio.preprocess import fit_length, normalize, prepare_clips
from cgan_audio.sources import open_audio_source


def _sine(freq: float, rate: int, seconds: float, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    return np.stack([wave] * channels, axis=1).astype(np.float32)


def _peak_hz(clip: torch.Tensor, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(clip.reshape(-1).numpy()))
    return float(np.fft.rfftfreq(clip.numel(), 1 / rate)[spectrum.argmax()])


def _request(source, strict=False, **data) -> DataRequest:
    return DataRequest(source=str(source), config=AudioDataConfig(**data), strict=strict)


@pytest.fixture
def sound_folder(tmp_path):
    """Two labelled sub-folders of WAV (stereo, 22.05 kHz), FLAC (8 kHz), OGG and MP3 files, plus a broken WAV."""
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    soundfile.write(tmp_path / "low" / "a.wav", _sine(440, 22050, 1.5, channels=2), 22050, subtype="PCM_16")
    soundfile.write(tmp_path / "low" / "b.flac", _sine(440, 8000, 0.5), 8000)
    soundfile.write(tmp_path / "high" / "c.ogg", _sine(2000, 16000, 0.5), 16000, format="OGG", subtype="VORBIS")
    soundfile.write(tmp_path / "high" / "d.mp3", _sine(2000, 16000, 0.5), 16000, format="MP3")
    (tmp_path / "high" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio at all")
    return tmp_path


def test_folder_is_resampled_mono_cut_padded_labelled_and_bad_files_counted(sound_folder):
    data = open_audio_source(_request(sound_folder, sample_rate=16000, length=4096))
    clips = data.dataset.samples
    assert clips.shape == (4, 1, 4096) and clips.dtype == torch.float32
    assert float(clips.abs().max()) <= 1.0
    assert data.skipped.count == 1 and "broken.wav" in data.skipped.reasons[0]
    assert data.info["class_names"] == ["high", "low"] and data.info["num_classes"] == 2
    assert data.info["sample_rate"] == 16000 and data.info["length"] == 4096 and data.info["shape"] == [1, 4096]
    # Files sorted: high/c.ogg, high/d.mp3, low/a.wav, low/b.flac (the broken file is skipped).
    assert data.labels.tolist() == [0, 0, 1, 1]
    # Pitch survives resampling from 22.05 kHz and 8 kHz (FFT bin width here is ~3.9 Hz).
    assert _peak_hz(clips[2], 16000) == pytest.approx(440, abs=8)
    assert _peak_hz(clips[3], 16000) == pytest.approx(440, abs=8)
    assert _peak_hz(clips[0], 16000) == pytest.approx(2000, abs=8)
    assert _peak_hz(clips[1], 16000) == pytest.approx(2000, abs=8)
    # Every file is longer than 4096 samples at 16 kHz, so each is cut; peak normalisation brings each to 0.95.
    assert clips.abs().amax(dim=(1, 2)).tolist() == pytest.approx([0.95] * 4, abs=1e-4)


def test_short_clips_are_padded_with_silence_at_the_end(tmp_path):
    soundfile.write(tmp_path / "short.wav", _sine(300, 8000, 0.1), 8000)  # 800 samples -> 1600 at 16 kHz
    data = open_audio_source(_request(tmp_path, sample_rate=16000, length=4096, normalize="none"))
    clip = data.dataset.samples[0, 0]
    assert clip[:1500].abs().max() > 0.4 and float(clip[1700:].abs().max()) == 0.0
    assert data.labels is None and data.info["num_classes"] is None


def test_strict_data_fails_naming_the_file(sound_folder):
    with pytest.raises(CganRuntimeError, match=r"broken\.wav.*--strict-data"):
        open_audio_source(_request(sound_folder, strict=True, length=1024))


@pytest.mark.parametrize("make,fragment", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no audio files found"),
    (lambda p: (p / "x.txt").write_text("hi") and p / "x.txt", "single file"),
])
def test_bad_sources_are_usage_errors(tmp_path, make, fragment):
    with pytest.raises(UsageError, match=fragment):
        open_audio_source(_request(make(tmp_path)))


def test_only_undecodable_files_is_a_usage_error(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="none of the 1 audio files could be decoded"):
        open_audio_source(_request(tmp_path))


def test_bad_data_settings_name_the_key(tmp_path):
    soundfile.write(tmp_path / "a.wav", _sine(300, 8000, 0.1), 8000)
    with pytest.raises(UsageError, match="data.crop must be 'start' or 'center'"):
        open_audio_source(_request(tmp_path, crop="middle"))


def test_fit_length_crops_start_or_centre_and_normalize_scales_the_peak():
    wave = torch.arange(10, dtype=torch.float32)
    assert fit_length(wave, 4, "start").tolist() == [0, 1, 2, 3]
    assert fit_length(wave, 4, "center").tolist() == [3, 4, 5, 6]
    assert fit_length(wave[:2], 4, "start", offset=1).tolist() == [0, 0, 1, 0]
    assert float(normalize(torch.tensor([0.1, -0.2]), "peak", 0.5).abs().max()) == pytest.approx(0.5)
    assert normalize(torch.tensor([2.0, -3.0]), "none", 0.5).tolist() == [1.0, -1.0]


def test_augmented_copies_are_seeded_and_differ_from_the_original():
    config = AudioDataConfig(sample_rate=8000, length=2048)
    samples = _sine(500, 8000, 0.15)[:, 0]
    first = prepare_clips(samples, 8000, config, 6, torch.Generator().manual_seed(3))
    again = prepare_clips(samples, 8000, config, 6, torch.Generator().manual_seed(3))
    assert len(first) == 7 and all(c.shape == (1, 2048) for c in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(first[0], c) for c in first[1:])


def test_tones_are_labelled_deterministic_and_the_reference_split_differs():
    config = AudioDataConfig(sample_rate=8000, length=1024)
    train = audio_datasets.load_tones(DataRequest("tones", config))
    again = audio_datasets.load_tones(DataRequest("tones", config))
    reference = audio_datasets.load_tones(DataRequest("tones", config, split="reference"))
    assert train.dataset.samples.shape == (384, 1, 1024) and train.info["num_classes"] == 6
    assert torch.bincount(train.labels).tolist() == [64] * 6
    assert train.fingerprint == again.fingerprint != reference.fingerprint
    # The low sines sit at 200-400 Hz, the high ones at 800-1600 Hz.
    low = train.dataset.samples[train.labels == 0][:8]
    high = train.dataset.samples[train.labels == 1][:8]
    assert all(150 <= _peak_hz(c, 8000) <= 450 for c in low)
    assert all(750 <= _peak_hz(c, 8000) <= 1650 for c in high)


def test_spoken_digits_missing_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_datasets, "SPOKEN_DIGITS_DIRS", (tmp_path / "nowhere",))
    monkeypatch.delenv("CGAN_DATA_DIR", raising=False)
    with pytest.raises(UsageError, match="apt-get install asterisk-core-sounds-en-wav"):
        audio_datasets.load_spoken_digits(DataRequest("spoken-digits", AudioDataConfig()))


def test_spoken_digits_from_cgan_data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "spoken-digits"
    folder.mkdir()
    for digit in range(10):
        soundfile.write(folder / f"{digit}.wav", _sine(200 + 50 * digit, 8000, 0.3), 8000, subtype="PCM_16")
    monkeypatch.setenv("CGAN_DATA_DIR", str(tmp_path))
    data = audio_datasets.load_spoken_digits(DataRequest("spoken-digits", AudioDataConfig(length=4096, augment=2)))
    assert data.dataset.samples.shape == (30, 1, 4096)
    assert data.labels.tolist() == [d for d in range(10) for _ in range(3)]
    assert data.info["class_names"][3] == "three"


@pytest.mark.skipif(not audio_datasets.SPOKEN_DIGITS_DIRS[0].is_dir(),
                    reason="needs Debian's asterisk-core-sounds-en-wav (.ci/run installs it)")
def test_installed_spoken_digits_are_real_recordings(monkeypatch):
    monkeypatch.delenv("CGAN_DATA_DIR", raising=False)
    data = audio_datasets.load_spoken_digits(DataRequest("spoken-digits", AudioDataConfig(augment=1)))
    clips = data.dataset.samples
    assert clips.shape == (20, 1, 16384) and data.labels.tolist() == [d for d in range(10) for _ in range(2)]
    # Recorded speech: loud somewhere, and not a constant tone (energy varies over time).
    energy = clips[0, 0].reshape(-1, 512).pow(2).mean(dim=1)
    assert float(clips.abs().max()) > 0.5 and float(energy.max()) > 20 * float(energy.min() + 1e-9)


def _write_m4a(path, wave: np.ndarray, rate: int) -> None:
    """AAC in MP4 through PyAV: a format libsndfile cannot read."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, len(wave), 1024):
            chunk = np.zeros((1, 1024), np.float32)
            part = wave[start : start + 1024]
            chunk[0, : len(part)] = part
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_formats_libsndfile_cannot_read_fall_back_to_pyav(tmp_path):
    from cgan_audio.decode import decode_audio_file

    _write_m4a(tmp_path / "tone.m4a", _sine(440, 16000, 1.0)[:, 0], 16000)
    decoded = decode_audio_file(tmp_path / "tone.m4a")
    assert decoded.backend == "pyav" and decoded.sample_rate == 16000 and decoded.samples.shape[0] == 1
    data = open_audio_source(_request(tmp_path, sample_rate=8000, length=4096))
    assert data.skipped.count == 0 and _peak_hz(data.dataset.samples[0], 8000) == pytest.approx(440, abs=4)
