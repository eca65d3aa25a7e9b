"""Reading video from a user's source: a folder of video files, one video file, or NumPy arrays.

Folders are searched recursively for MP4/AVI/MOV/WebM/MKV/GIF files; when every video sits in a
sub-folder, the sub-folder names become class labels. Each video is decoded as a stream into
non-overlapping clips of ``data.frames`` frames (every ``data.stride``-th frame). Files that
cannot be decoded, and videos shorter than one clip, are skipped and counted, or, with
``--strict-data``, fail the run naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from cgan_core import CganRuntimeError, DataRequest, LoadedData, SkipLog, UsageError

from cgan_video.clips import ClipDataset, clip_info, fingerprint_uint8
from cgan_video.decode import VIDEO_SUFFIXES, iter_frames

ARRAY_SUFFIXES = (".npy", ".npz")


def check_data_config(config: Any) -> None:
    """Reject data settings no source can honour, naming the key."""
    if config.frames < 1:
        raise UsageError(f"data.frames must be at least 1, got {config.frames}")
    if config.stride < 1:
        raise UsageError(f"data.stride must be at least 1, got {config.stride}")
    if config.resolution < 8:
        raise UsageError(f"data.resolution must be at least 8, got {config.resolution}")
    if config.channels not in (1, 3):
        raise UsageError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {config.channels}")


def decode_video(path: Path, config: Any, limit: int) -> tuple[list[np.ndarray], int]:
    """Decode the clips of one video: ``(clips (T, H, W, C) uint8, frames kept)``.

    ``limit`` caps the clips taken (0 = none); decoding stops there, so a long video is never
    decoded further than needed.
    """
    clips: list[np.ndarray] = []
    buffer: list[np.ndarray] = []
    kept = 0
    for frame in iter_frames(path, config.resolution, config.channels, config.stride):
        kept += 1
        buffer.append(frame)
        if len(buffer) == config.frames:
            clips.append(np.stack(buffer))
            buffer = []
            if limit and len(clips) >= limit:
                break
    return clips, kept


def _video_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _bad_item(request: DataRequest, skipped: SkipLog, path: Path, reason: str) -> None:
    if request.strict:
        raise CganRuntimeError(f"bad video '{path}': {reason} (--strict-data is set)")
    skipped.add(f"{path}: {reason}")


def load_videos(request: DataRequest, files: list[Path], root: Optional[Path]) -> LoadedData:
    """Decode clips from ``files``; labels come from sub-folders of ``root`` when all have one."""
    config = request.config
    class_names = sorted({p.parent.relative_to(root).parts[0] for p in files if p.parent != root}) if root else []
    use_labels = bool(class_names) and all(p.parent != root for p in files)
    skipped = SkipLog()
    clips: list[np.ndarray] = []
    labels: list[int] = []
    for path in files:
        remaining = config.max_items - len(clips) if config.max_items else 0
        limit = min(v for v in (config.clips_per_video, remaining) if v) if (config.clips_per_video or remaining) else 0
        try:
            found, kept = decode_video(path, config, limit)
        except Exception as exc:  # PyAV raises many FFmpegError subclasses (and OSError) for bad files
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            _bad_item(request, skipped, path, f"cannot decode: {first}")
            continue
        if not found:
            _bad_item(request, skipped, path, f"shorter than one clip ({kept} frames kept with stride "
                                              f"{config.stride}, {config.frames} needed)")
            continue
        clips.extend(found)
        if use_labels:
            labels.extend([class_names.index(path.relative_to(root).parts[0])] * len(found))  # type: ignore[arg-type]
        if config.max_items and len(clips) >= config.max_items:
            break
    if not clips:
        first = f" (first problem: {skipped.reasons[0]})" if skipped.reasons else ""
        raise UsageError(f"no clip of {config.frames} frames could be read from {len(files)} video file(s){first}")
    array = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).contiguous()  # (N, C, T, H, W)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if use_labels else None
    extra = {"class_names": class_names} if use_labels else {}
    info = clip_info(tuple(array.shape[1:]), array.shape[0], config.fps, label_tensor, extra)
    source = str(root or files[0])
    return LoadedData(ClipDataset(array), info, label_tensor, skipped, source,
                      fingerprint_uint8(array, config.stride))


def _read_array(path: Path) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Clips and optional labels from a ``.npy`` (memory-mapped) or ``.npz`` file."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False), None
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            key = next((k for k in ("videos", "clips", "x", "X", "data", "arr_0") if k in keys), keys[0] if keys else None)
            if key is None:
                raise UsageError(f"'{path}' holds no arrays")
            label_key = next((k for k in ("labels", "y", "Y") if k in keys), None)
            return archive[key], (archive[label_key] if label_key else None)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read '{path}' as a NumPy array: {exc}") from None


def _to_uint8(chunk: np.ndarray) -> np.ndarray:
    """uint8 as is; other integers scaled by their maximum; floats read as [0, 1] or [-1, 1]."""
    if chunk.dtype == np.uint8:
        return chunk
    if np.issubdtype(chunk.dtype, np.integer):
        return (chunk.astype(np.float64) / np.iinfo(chunk.dtype).max * 255).clip(0, 255).round().astype(np.uint8)
    values = chunk.astype(np.float32)
    if values.size and values.min() < 0:
        values = (values + 1.0) / 2.0
    return (values.clip(0, 1) * 255).round().astype(np.uint8)


def load_array_clips(request: DataRequest, path: Path) -> LoadedData:
    """Clips from an array shaped ``(N, T, H, W)`` or ``(N, T, H, W, C)`` (``.npy`` or ``.npz``)."""
    config = request.config
    array, labels = _read_array(path)
    if array.ndim == 4:
        array = array[..., None]
    if array.ndim != 5 or array.shape[-1] not in (1, 3, 4):
        raise UsageError(f"'{path}' holds an array shaped {array.shape}; expected (N, T, H, W) or (N, T, H, W, C)")
    needed = (config.frames - 1) * config.stride + 1
    if array.shape[1] < needed:
        raise UsageError(f"'{path}' has {array.shape[1]} frames per clip; data.frames={config.frames} with "
                         f"data.stride={config.stride} needs {needed}")
    count = min(array.shape[0], config.max_items) if config.max_items else array.shape[0]
    out = torch.empty((count, config.channels, config.frames, config.resolution, config.resolution), dtype=torch.uint8)
    for index in range(count):  # one clip at a time: a memory-mapped array is never loaded whole
        clip = _to_uint8(np.array(array[index, : needed : config.stride, ..., :3]))  # a copy: mmaps are read-only
        frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float()  # (T, C, H, W)
        if frames.shape[1] != config.channels:
            frames = frames.mean(dim=1, keepdim=True) if config.channels == 1 else frames.expand(-1, 3, -1, -1)
        side = min(frames.shape[-2:])
        top, left = (frames.shape[-2] - side) // 2, (frames.shape[-1] - side) // 2
        frames = frames[..., top : top + side, left : left + side]
        if side != config.resolution:
            frames = F.interpolate(frames, size=(config.resolution,) * 2, mode="bilinear", align_corners=False,
                                   antialias=side > config.resolution)
        out[index] = frames.clamp(0, 255).round().to(torch.uint8).permute(1, 0, 2, 3)
    label_tensor = None
    if labels is not None and len(labels) >= count:
        label_tensor = torch.as_tensor(np.asarray(labels[:count], dtype=np.int64))
    info = clip_info(tuple(out.shape[1:]), count, config.fps, label_tensor)
    return LoadedData(ClipDataset(out), info, label_tensor, SkipLog(), str(path), fingerprint_uint8(out, config.stride))


def open_video_source(request: DataRequest) -> LoadedData:
    """The video modality's ``open_source``: dispatch on what the path is (URLs arrive as cached local copies)."""
    check_data_config(request.config)
    path = Path(request.source).expanduser()
    if not path.exists():
        raise UsageError(f"dataset path '{path}' does not exist; give a folder of videos, a video file, a .npy/.npz "
                         "array (N, T, H, W[, C]), or a dataset name (see 'cgan list datasets')")
    if path.is_dir():
        files = _video_files(path)
        if not files:
            raise UsageError(f"no video files found in '{path}'; expected {', '.join(sorted(VIDEO_SUFFIXES))}")
        return load_videos(request, files, path)
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return load_array_clips(request, path)
    if suffix in VIDEO_SUFFIXES:
        return load_videos(request, [path], None)
    raise UsageError(f"unsupported video source '{path}'; expected a folder of videos, a video file "
                     f"({', '.join(sorted(VIDEO_SUFFIXES))}) or a .npy/.npz array")
