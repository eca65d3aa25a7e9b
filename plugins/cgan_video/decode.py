"""Streaming video decoding with PyAV: frames are resized as they are decoded.

A video file is read one frame at a time through ``container.decode``; each frame is scaled
by FFmpeg (libswscale) so its short side equals the target resolution, centre-cropped and kept
as uint8. Only the frames of the clip being assembled are held, so a long video never sits
whole in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif", ".m4v", ".mpg", ".mpeg"}


def _scaled_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """Frame size whose short side is ``resolution`` (aspect ratio kept)."""
    if width <= height:
        return resolution, max(resolution, round(height * resolution / width))
    return max(resolution, round(width * resolution / height)), resolution


def _center_crop(pixels: np.ndarray, resolution: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    top, left = (height - resolution) // 2, (width - resolution) // 2
    return pixels[top : top + resolution, left : left + resolution]


def iter_frames(path: Path, resolution: int, channels: int, stride: int = 1) -> Iterator[np.ndarray]:
    """Yield every ``stride``-th frame of a video as uint8 ``(resolution, resolution, channels)``.

    Raises:
        av.error.FFmpegError (or OSError): the file cannot be opened or decoded.
    """
    import av

    pixel_format = "gray" if channels == 1 else "rgb24"
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg
        for index, frame in enumerate(container.decode(stream)):
            if index % stride:
                continue
            width, height = _scaled_size(frame.width, frame.height, resolution)
            scaled = frame.reformat(width=width, height=height, format=pixel_format, interpolation="AREA")
            pixels = scaled.to_ndarray()
            if pixels.ndim == 2:
                pixels = pixels[:, :, None]
            yield np.ascontiguousarray(_center_crop(pixels, resolution))

