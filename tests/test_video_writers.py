"""Video content: H.264/yuv420p MP4 and GIF per sample, reproducible bytes, frame-strip previews."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from cgan_core import SampleInfo, UsageError

av = pytest.importorskip("av")

from cgan_video.writers import frame_strips, log_video_preview, write_video_preview, write_video_samples  # noqa: E402


def _samples(n: int = 3, channels: int = 1, frames: int = 6, side: int = 32) -> torch.Tensor:
    """Clips of a bright square moving diagonally on a dark background, in [-1, 1]."""
    clips = -torch.ones(n, channels, frames, side, side)
    for i in range(n):
        for t in range(frames):
            top = 2 + 3 * t + i
            clips[i, :, t, top : top + 8, top : top + 8] = 0.8
    return clips


def _decode(path: Path) -> tuple[np.ndarray, str, str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="gray") for frame in container.decode(stream)])
        return frames, stream.codec_context.name, stream.codec_context.pix_fmt


def test_mp4_is_h264_yuv420p_and_decodes_back(tmp_path: Path):
    samples = _samples()
    paths = write_video_samples(samples, tmp_path, SampleInfo(seed=7, start_index=10), {"fps": 12})
    assert [p.name for p in paths] == [f"seed7-sample-{i:06d}.mp4" for i in (10, 11, 12)]
    for path, sample in zip(paths, samples):
        frames, codec, pix_fmt = _decode(path)
        assert (codec, pix_fmt) == ("h264", "yuv420p")
        assert frames.shape == (6, 32, 32)
        expected = ((sample[0].numpy() + 1) * 127.5)
        assert np.abs(frames.astype(np.float64) - expected).mean() < 3.0  # near-lossless (crf 12)
    with av.open(str(paths[0])) as container:
        assert container.streams.video[0].average_rate == 12


def test_mp4_bytes_are_reproducible_and_odd_sizes_are_padded(tmp_path: Path):
    samples = _samples(n=2, channels=3)
    first = write_video_samples(samples, tmp_path / "a", SampleInfo(seed=1), {})
    second = write_video_samples(samples, tmp_path / "b", SampleInfo(seed=1), {})
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in first]
    assert digest == [hashlib.sha256(p.read_bytes()).hexdigest() for p in second]
    odd = write_video_samples(_samples(n=1, side=33), tmp_path / "odd", SampleInfo(), {})
    frames, _, _ = _decode(odd[0])
    assert frames.shape == (6, 34, 34)  # yuv420p needs even sides


def test_gif_per_sample_and_bad_format(tmp_path: Path):
    from PIL import Image

    paths = write_video_samples(_samples(n=2), tmp_path, SampleInfo(), {"fps": 5}, fmt="gif")
    assert [p.suffix for p in paths] == [".gif", ".gif"]
    with Image.open(paths[0]) as image:
        assert image.n_frames == 6 and image.size == (32, 32)
        image.seek(3)
        assert abs(np.asarray(image.convert("L"), dtype=np.float64)[12, 12] - 229.5) < 2
    still = _samples(n=1)[:, :, :1].expand(-1, -1, 6, -1, -1)  # six identical frames stay six frames
    (path,) = write_video_samples(still, tmp_path / "still", SampleInfo(), {}, fmt="gif")
    with Image.open(path) as image:
        assert image.n_frames == 6
    colour = _samples(n=1, channels=3)
    colour[:, 1] = -0.5  # a coloured square: one palette for the clip, no dithering
    (path,) = write_video_samples(colour, tmp_path / "colour", SampleInfo(), {}, fmt="gif")
    with av.open(str(path)) as container:
        decoded = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    expected = ((colour[0].permute(1, 2, 3, 0) + 1) * 127.5).round().numpy()
    assert decoded.shape == (6, 32, 32, 3) and np.abs(decoded - expected).max() <= 1
    with pytest.raises(UsageError, match="mp4 or gif"):
        write_video_samples(_samples(), tmp_path, SampleInfo(), {}, fmt="avi")


def test_preview_is_a_grid_of_frame_strips(tmp_path: Path):
    from PIL import Image

    samples = _samples(n=3, frames=6)
    path = write_video_preview(samples, tmp_path / "step-00000010", {})
    assert path.suffix == ".png"
    with Image.open(path) as image:
        assert image.size == (6 * 34 + 2, 3 * 34 + 2)  # one row per sample, one column per frame
    strips = frame_strips(samples)
    # row 0, frame 0 shows the square at (2..10, 2..10); frame 5 at (17..25, 17..25)
    assert strips[2 + 5, 2 + 5, 0] == 230 and strips[2 + 20, 2 + 20, 0] == 0
    assert strips[2 + 20, 2 + 5 * 34 + 20, 0] == 230


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def add_image(self, tag, image, step, dataformats="CHW"):
        self.calls.append(("add_image", (tag, image.shape, step, dataformats)))

    def add_video(self, tag, video, step, fps=4):
        self.calls.append(("add_video", (tag, tuple(video.shape), step, fps)))


def test_tensorboard_preview_falls_back_to_strips_without_moviepy(monkeypatch: pytest.MonkeyPatch):
    import cgan_video.writers as writers

    recorder = _Recorder()
    monkeypatch.setattr(writers, "_moviepy_available", lambda: False)
    log_video_preview(recorder, "samples", _samples(n=2), 5, {"fps": 8})
    assert recorder.calls == [("add_image", ("samples/strips", (2 * 34 + 2, 6 * 34 + 2, 3), 5, "HWC"))]
    monkeypatch.setattr(writers, "_moviepy_available", lambda: True)
    log_video_preview(recorder, "samples", _samples(n=2), 6, {"fps": 8})
    assert recorder.calls[-1] == ("add_video", ("samples", (2, 6, 1, 32, 32), 6, 8))
