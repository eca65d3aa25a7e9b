"""Named image datasets: ``digits`` (bundled with scikit-learn) and ``fashion-mnist``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cgan_core import DataRequest, LoadedData, SkipLog, TensorData, UsageError, tensor_fingerprint

from cgan_image.preprocess import prepare_images
from cgan_image.sources import read_idx

FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
FASHION_MNIST_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle-boot"]


def _labelled(images: torch.Tensor, labels: torch.Tensor, source: str, class_names: list[str]) -> LoadedData:
    info = {
        "shape": list(images.shape[1:]),
        "channels": int(images.shape[1]),
        "resolution": int(images.shape[-1]),
        "items": int(images.shape[0]),
        "num_classes": len(class_names),
        "class_names": class_names,
    }
    return LoadedData(TensorData(images), info, labels, SkipLog(), source, tensor_fingerprint(images))


def load_digits(request: DataRequest) -> LoadedData:
    """scikit-learn's 1,797 real 8x8 handwritten digits, resized to the configured resolution.

    ``split="reference"`` returns the same images: the digits set is too small to hold out.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    config = request.config
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    if config.max_items:
        images, labels = images[: config.max_items], labels[: config.max_items]
    tensor = prepare_images(images, config.resolution, config.channels, config.crop)
    return _labelled(tensor, torch.as_tensor(labels), "digits", [str(d) for d in range(10)])


def fashion_mnist_dirs() -> list[Path]:
    """Where Fashion-MNIST is looked for: ``$CGAN_DATA_DIR/fashion-mnist`` then Debian's path."""
    dirs = []
    if os.environ.get("CGAN_DATA_DIR"):
        dirs.append(Path(os.environ["CGAN_DATA_DIR"]) / "fashion-mnist")
    dirs.extend(FASHION_MNIST_DIRS)
    return dirs


def _find_fashion_file(stem: str) -> Path | None:
    for directory in fashion_mnist_dirs():
        for name in (f"{stem}.gz", stem):
            if (directory / name).is_file():
                return directory / name
    return None


def _download_fashion_mnist(request: DataRequest) -> Path | None:
    """Download through torchvision where there is a network; ``None`` when offline."""
    if request.cache_dir is None and not os.environ.get("CGAN_DATA_DIR"):
        return None
    root = Path(os.environ.get("CGAN_DATA_DIR") or request.cache_dir)  # type: ignore[arg-type]
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)
    except Exception:
        return None
    raw = root / "FashionMNIST" / "raw"
    return raw if raw.is_dir() else None


def load_fashion_mnist(request: DataRequest) -> LoadedData:
    """Fashion-MNIST's 60,000 training images (10,000 test images for ``split="reference"``)."""
    prefix = "train" if request.split == "train" else "t10k"
    images_path = _find_fashion_file(f"{prefix}-images-idx3-ubyte")
    labels_path = _find_fashion_file(f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        raw = _download_fashion_mnist(request)
        if raw is not None:
            images_path = raw / f"{prefix}-images-idx3-ubyte"
            labels_path = raw / f"{prefix}-labels-idx1-ubyte"
    if images_path is None or labels_path is None or not images_path.exists():
        searched = ", ".join(str(d) for d in fashion_mnist_dirs())
        raise UsageError(
            f"Fashion-MNIST not found (searched {searched}); install it with "
            "'apt-get install dataset-fashion-mnist', or put the IDX files in $CGAN_DATA_DIR/fashion-mnist"
        )
    config = request.config
    images = read_idx(images_path)
    labels = read_idx(labels_path).astype(np.int64)
    if config.max_items:
        images, labels = images[: config.max_items], labels[: config.max_items]
    tensor = prepare_images(images, config.resolution, config.channels, config.crop)
    return _labelled(tensor, torch.as_tensor(labels), "fashion-mnist", FASHION_MNIST_CLASSES)
