"""Helpers shared by the video tests: writing small video files with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_test_video(path: Path, frames: int, height: int = 48, width: int = 64, fps: int = 10) -> Path:
    """Write an MPEG-4 Part 2 video of a bright square moving right (a codec other than cgan's own)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            pixels = np.zeros((height, width, 3), dtype=np.uint8)
            left = (index * 3) % (width - 12)
            pixels[10:22, left : left + 12] = 230
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
