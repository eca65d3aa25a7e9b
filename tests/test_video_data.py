"""Video data: moving-digits, PyAV decoding of folders (bad files skipped or fatal), arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cgan_core import CganRuntimeError, DataRequest, UsageError
from video_helpers import write_test_video

pytest.importorskip("av")

from cgan_video.config import VideoDataConfig  # noqa: E402
from cgan_video.moving_digits import load_moving_digits  # noqa: E402
from cgan_video.sources import decode_video, open_video_source  # noqa: E402


def _digits(**changes) -> "object":
    config = VideoDataConfig(resolution=32, frames=8, size=12, reference_size=6)
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def _stack(data) -> torch.Tensor:
    return torch.stack([data.dataset[i] for i in range(len(data))])


def test_moving_digits_is_seeded_labelled_and_in_range():
    first = load_moving_digits(DataRequest("moving-digits", _digits()))
    again = load_moving_digits(DataRequest("moving-digits", _digits()))
    other = load_moving_digits(DataRequest("moving-digits", _digits(seed=1)))
    reference = load_moving_digits(DataRequest("moving-digits", _digits(), split="reference"))
    clips = _stack(first)
    assert clips.shape == (12, 1, 8, 32, 32)
    assert clips.min() == -1.0 and clips.max() == 1.0
    assert torch.equal(clips, _stack(again)) and torch.equal(first.labels, again.labels)
    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert not torch.equal(clips, _stack(other))
    assert len(reference) == 6 and not torch.equal(_stack(reference), clips[:6])
    # two digits per clip by default: labels 10 * a + b, decodable into the digits drawn
    assert first.labels.dtype == torch.int64 and int(first.labels.max()) < 100
    assert first.info["digits_per_clip"] == 2 and first.info["num_classes"] == 100
    assert first.info["shape"] == [1, 8, 32, 32] and first.info["frames"] == 8
    # the digits move: consecutive frames differ, and no frame is empty
    assert (clips[:, :, 1:] != clips[:, :, :-1]).any(dim=(1, 3, 4)).all()
    assert (clips.amax(dim=(3, 4)) > 0).all()


def test_moving_digits_single_digit_labels_and_rgb():
    data = load_moving_digits(DataRequest("moving-digits", _digits(digits=1, channels=3)))
    clips = _stack(data)
    assert clips.shape == (12, 3, 8, 32, 32)
    assert torch.equal(clips[:, 0], clips[:, 2])
    assert int(data.labels.max()) <= 9 and data.info["num_classes"] == 10
    with pytest.raises(UsageError, match="data.digits"):
        load_moving_digits(DataRequest("moving-digits", _digits(digits=3)))


@pytest.fixture
def video_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    write_test_video(folder / "a.mp4", frames=20)
    write_test_video(folder / "b.avi", frames=9)
    write_test_video(folder / "short.mp4", frames=3)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    truncated = (folder / "a.mp4").read_bytes()
    (folder / "truncated.mkv").write_bytes(truncated[: len(truncated) // 3])
    return folder


def test_video_folder_skips_and_counts_bad_files(video_folder: Path):
    config = VideoDataConfig(resolution=32, frames=8, stride=1, channels=1)
    data = open_video_source(DataRequest(str(video_folder), config))
    clips = _stack(data)
    # a.mp4 (20 frames) gives 2 clips of 8, b.avi (9 frames) gives 1; the other three are bad
    assert clips.shape == (3, 1, 8, 32, 32)
    assert data.skipped.count == 3
    reasons = " ".join(data.skipped.reasons)
    assert "broken.mp4" in reasons and "short.mp4" in reasons and "truncated.mkv" in reasons
    assert "shorter than one clip" in reasons
    # the square is bright on a dark background and moves to the right
    first = clips[0, 0]
    assert first.max() > 0.5 and first.min() < -0.9
    columns = [int(frame.mean(dim=0).argmax()) for frame in first]
    assert columns[-1] > columns[0]


def test_video_folder_strict_data_names_the_file(video_folder: Path):
    config = VideoDataConfig(resolution=32, frames=8)
    with pytest.raises(CganRuntimeError, match=r"broken\.mp4.*--strict-data"):
        open_video_source(DataRequest(str(video_folder), config, strict=True))


def test_cli_strict_data_exits_1_naming_the_file(video_folder: Path, tmp_path: Path, cli):
    result = cli("run", "--modality", "video", "--plugin", "tgan", "--dataset", str(video_folder), "--strict-data",
                 "--set", "data.resolution=32", "--set", "data.frames=8", "--max-steps", "1",
                 "--out", str(tmp_path / "run"), "--no-progress")
    assert result.exit_code == 1
    assert "broken.mp4" in result.output and "Traceback" not in result.output


def test_decoding_streams_and_stops_early(tmp_path: Path):
    path = write_test_video(tmp_path / "long.mp4", frames=120)
    config = VideoDataConfig(resolution=16, frames=4, stride=2)
    clips, kept = decode_video(path, config, limit=2)
    assert len(clips) == 2 and clips[0].shape == (4, 16, 16, 1)
    assert kept == 8  # only the frames of two clips were decoded and kept, not the whole video
    config_all = VideoDataConfig(resolution=16, frames=4, stride=2, clips_per_video=0)
    clips, kept = decode_video(path, config_all, limit=0)
    assert kept == 60 and len(clips) == 15


def test_numpy_arrays_are_resized_and_scaled(tmp_path: Path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(5, 10, 40, 40), dtype=np.uint8)
    np.save(tmp_path / "gray.npy", gray)
    data = open_video_source(DataRequest(str(tmp_path / "gray.npy"), VideoDataConfig(resolution=40, frames=5, stride=2)))
    clips = _stack(data)
    assert clips.shape == (5, 1, 5, 40, 40)
    expected = torch.from_numpy(gray[:, ::2][:, :5].astype(np.float32)) / 127.5 - 1.0
    assert torch.allclose(clips[:, 0], expected, atol=1e-6)
    rgb = rng.random((3, 8, 20, 30, 3)).astype(np.float32)
    np.savez(tmp_path / "rgb.npz", videos=rgb, labels=np.array([0, 1, 1]))
    data = open_video_source(DataRequest(str(tmp_path / "rgb.npz"), VideoDataConfig(resolution=16, frames=8, channels=3)))
    assert _stack(data).shape == (3, 3, 8, 16, 16) and data.labels.tolist() == [0, 1, 1]
    with pytest.raises(UsageError, match="needs 17"):
        open_video_source(DataRequest(str(tmp_path / "gray.npy"), VideoDataConfig(frames=9, stride=2)))


def test_unusable_sources_are_usage_errors(tmp_path: Path):
    with pytest.raises(UsageError, match="does not exist"):
        open_video_source(DataRequest(str(tmp_path / "missing"), VideoDataConfig()))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no video files"):
        open_video_source(DataRequest(str(tmp_path / "empty"), VideoDataConfig()))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match="unsupported video source"):
        open_video_source(DataRequest(str(tmp_path / "notes.txt"), VideoDataConfig()))
