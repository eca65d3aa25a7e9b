"""Image sources: folders (with bad files), IDX, NumPy arrays, named datasets, preprocessing."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cgan_core import CganRuntimeError, UsageError
from cgan_core.session import load_data, resolve_run

RNG = np.random.default_rng(0)


def _png(path: Path, size=(20, 12), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    pixels = RNG.integers(0, 255, size=(size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(path)


def _load(source, *sets, strict=False):
    resolved = resolve_run("image", "dcgan", str(source), set_options=list(sets))
    return load_data(resolved, strict=strict)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_folder_with_class_subfolders_and_bad_files_skips_and_counts(tmp_path):
    for name in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / name / f"{i}.png")
    good = (tmp_path / "cat" / "0.png").read_bytes()
    (tmp_path / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "dog" / "not-an-image.jpg").write_text("hello")
    data = _load(tmp_path, "data.resolution=32", "data.channels=3")
    assert len(data) == 6 and data.skipped.count == 2
    assert any("truncated.png" in reason for reason in data.skipped.reasons)
    assert data.info["shape"] == [3, 32, 32] and data.info["class_names"] == ["cat", "dog"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    images = data.dataset.samples
    assert images.min() >= -1 and images.max() <= 1


def test_strict_data_names_the_bad_file(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(CganRuntimeError, match=r"unreadable image '.*b\.png'.*--strict-data"):
        _load(tmp_path, strict=True)


def test_strict_data_cli_exit_code_is_1(tmp_path, cli):
    _png(tmp_path / "data" / "a.png")
    (tmp_path / "data" / "b.png").write_bytes(b"garbage")
    result = cli("run", "-m", "image", "-p", "dcgan", "--dataset", str(tmp_path / "data"), "--strict-data",
                 "--max-steps", "1", "--out", str(tmp_path / "run"), "--no-progress")
    assert result.exit_code == 1 and "b.png" in result.stderr


def test_empty_and_missing_sources_are_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images found"):
        _load(tmp_path / "empty")
    with pytest.raises(UsageError, match="does not exist"):
        _load(tmp_path / "missing" / "dir")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="unsupported image source"):
        _load(tmp_path / "notes.txt")


def test_idx_gz_with_labels_is_read_and_resized(tmp_path):
    images = RNG.integers(0, 255, size=(7, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(7) % 3)
    data = _load(tmp_path / "train-images-idx3-ubyte.gz")
    assert len(data) == 7 and data.info["shape"] == [1, 32, 32]
    assert data.labels.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_truncated_idx_is_a_clear_error(tmp_path):
    path = tmp_path / "x-images-idx3-ubyte"
    _write_idx(path, RNG.integers(0, 255, size=(4, 8, 8)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UsageError, match="truncated"):
        _load(path)


def test_npy_and_npz_arrays(tmp_path):
    np.save(tmp_path / "a.npy", RNG.integers(0, 255, size=(5, 64, 64, 3), dtype=np.uint8))
    data = _load(tmp_path / "a.npy", "data.channels=3", "data.resolution=64")
    assert data.info["shape"] == [3, 64, 64]
    np.savez(tmp_path / "b.npz", images=RNG.random((4, 16, 16)), labels=np.array([1, 0, 1, 0]))
    data = _load(tmp_path / "b.npz")
    assert data.labels.tolist() == [1, 0, 1, 0] and data.info["num_classes"] == 2


def test_preprocessing_maps_black_and_white_to_the_range_ends():
    from cgan_image.preprocess import prepare_images

    array = np.zeros((2, 40, 30), dtype=np.uint8)
    array[1] = 255
    out = prepare_images(array, 32, 1, "center")
    assert out.shape == (2, 1, 32, 32)
    assert torch.allclose(out[0], torch.full_like(out[0], -1.0)) and torch.allclose(out[1], torch.ones_like(out[1]))


def test_digits_is_the_bundled_default():
    resolved = resolve_run("image", "dcgan")
    assert resolved.config.dataset == "digits"
    data = load_data(resolved)
    assert len(data) == 1797 and data.info["num_classes"] == 10


def test_fashion_mnist_from_the_debian_package_or_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CGAN_DATA_DIR", str(tmp_path / "nowhere"))
    installed = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
    if installed:
        data = _load("fashion-mnist", "data.max_items=100")
        assert len(data) == 100 and data.info["num_classes"] == 10 and data.info["shape"] == [1, 32, 32]
    else:
        with pytest.raises(UsageError, match="apt-get install dataset-fashion-mnist"):
            _load("fashion-mnist")
