"""Reading images from a user's source: a folder of image files, IDX files, or NumPy arrays.

Folders are searched recursively for PNG/JPEG/WebP/BMP files; when every image sits in a
sub-folder, the sub-folder names become class labels. Unreadable or truncated files are skipped
and counted, or, with ``--strict-data``, fail the run naming the file.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cgan_core import (CganRuntimeError, DataRequest, LoadedData, SkipLog, TensorData, UsageError, sha256_file,
                       tensor_fingerprint)

from cgan_image.preprocess import prepare_images

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Raises:
        UsageError: if the file is not IDX or is truncated.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise UsageError(f"cannot read IDX file '{path}': {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise UsageError(f"'{path}' is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header < expected:
        raise UsageError(f"IDX file '{path}' is truncated: {len(raw) - header} of {expected} data bytes")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=header).reshape(dims)


def idx_labels_for(path: Path) -> Optional[Path]:
    """The labels file that pairs with an IDX images file, following MNIST's naming."""
    name = path.name
    for images, labels in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if images in name:
            candidate = path.with_name(name.replace(images, labels))
            if candidate.exists():
                return candidate
    return None


def decode_image_file(path: Path, channels: int) -> np.ndarray:
    """Decode one image file fully (so truncation is detected) into an (H, W[, C]) uint8 array."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        converted = image.convert("L" if channels == 1 else "RGB")
        return np.asarray(converted, dtype=np.uint8)


def _folder_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(request: DataRequest, root: Path) -> LoadedData:
    """Load every image under ``root`` (recursively), resized to the configured resolution."""
    config = request.config
    files = _folder_images(root)
    if not files:
        raise UsageError(f"no images found in '{root}'; expected PNG, JPEG, WebP or BMP files")
    if config.max_items:
        files = files[: config.max_items]
    class_names = sorted({p.parent.relative_to(root).parts[0] for p in files if p.parent != root})
    use_labels = bool(class_names) and all(p.parent != root for p in files)
    skipped = SkipLog()
    tensors, labels = [], []
    for path in files:
        try:
            pixels = decode_image_file(path, config.channels)
        except Exception as exc:  # PIL raises many types for bad files
            if request.strict:
                raise CganRuntimeError(f"unreadable image '{path}': {exc} (--strict-data is set)") from None
            skipped.add(f"{path}: {exc}")
            continue
        tensors.append(prepare_images(pixels[None], config.resolution, config.channels, config.crop))
        if use_labels:
            labels.append(class_names.index(path.relative_to(root).parts[0]))
    if not tensors:
        raise UsageError(f"none of the {len(files)} images in '{root}' could be read (first error: {skipped.reasons[:1]})")
    images = torch.cat(tensors)
    label_tensor = torch.tensor(labels) if use_labels else None
    info = _info(images, label_tensor, class_names if use_labels else None)
    return LoadedData(TensorData(images), info, label_tensor, skipped, str(root), tensor_fingerprint(images))


def load_arrays(request: DataRequest, path: Path) -> LoadedData:
    """Load images (and optional labels) from an IDX, ``.npy`` or ``.npz`` file."""
    config = request.config
    labels: Optional[np.ndarray] = None
    name = path.name.lower()
    if name.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read '{path}' as a NumPy array: {exc}") from None
    elif name.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                key = next((k for k in ("images", "x", "X", "data", "arr_0") if k in keys), keys[0] if keys else None)
                if key is None:
                    raise UsageError(f"'{path}' holds no arrays")
                array = archive[key]
                label_key = next((k for k in ("labels", "y", "Y") if k in keys), None)
                labels = archive[label_key] if label_key else None
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read '{path}' as a NumPy archive: {exc}") from None
    else:
        array = read_idx(path)
        label_path = idx_labels_for(path)
        labels = read_idx(label_path) if label_path else None
    if array.ndim not in (3, 4):
        raise UsageError(f"'{path}' holds an array shaped {array.shape}; expected (N,H,W) or (N,H,W,C) images")
    if config.max_items:
        array = array[: config.max_items]
        labels = labels[: config.max_items] if labels is not None else None
    images = prepare_images(np.ascontiguousarray(array), config.resolution, config.channels, config.crop)
    label_tensor = torch.as_tensor(np.asarray(labels, dtype=np.int64)) if labels is not None and len(labels) == len(images) else None
    return LoadedData(TensorData(images), _info(images, label_tensor), label_tensor, SkipLog(), str(path),
                      tensor_fingerprint(images))


def _info(images: torch.Tensor, labels: Optional[torch.Tensor], class_names: Optional[list[str]] = None) -> dict:
    info = {
        "shape": list(images.shape[1:]),
        "channels": int(images.shape[1]),
        "resolution": int(images.shape[-1]),
        "items": int(images.shape[0]),
        "num_classes": int(labels.max()) + 1 if labels is not None and labels.numel() else None,
    }
    if class_names:
        info["class_names"] = class_names
    return info


def open_image_source(request: DataRequest) -> LoadedData:
    """The image modality's ``open_source``: dispatch on what the path is.

    URL sources (``s3://bucket/images/``, ``memory://x.npz``, ...) reach it as local paths:
    cgan_core fetches them into its cache first (``open_local_or_url``).
    """
    path = Path(request.source).expanduser()
    if not path.exists():
        raise UsageError(f"dataset path '{path}' does not exist; give a folder of images, an IDX, .npy or .npz file, "
                         "or a dataset name (see 'cgan list datasets')")
    if path.is_dir():
        return load_folder(request, path)
    name = path.name.lower()
    if name.endswith((".npy", ".npz")) or "idx" in name or name.endswith(".gz"):
        return load_arrays(request, path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise UsageError(f"'{path}' is a single image; put your images in a folder and pass the folder")
    raise UsageError(f"unsupported image source '{path}'; expected a folder of PNG/JPEG/WebP/BMP, "
                     "an IDX file (.gz or not), or a .npy/.npz array")


def file_digest(path: Path) -> str:
    """Short sha256 of a file (used to fingerprint installed datasets cheaply)."""
    return sha256_file(path)[:16]
