"""Writing video samples: MP4 (H.264) or GIF per sample, frame-strip previews, TensorBoard.

MP4 files are H.264 in yuv420p through PyAV's bundled libx264, the combination every browser
plays. yuv420p halves the chroma resolution, so frame sides must be even: odd sizes are padded
by one edge pixel (and noted in the log) rather than refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from cgan_core import SampleInfo, UsageError

from cgan_video.clips import to_uint8

CONTENT_FORMATS = ("mp4", "gif")


def video_frames(sample: torch.Tensor) -> np.ndarray:
    """One sample ``(C, T, H, W)`` in ``[-1, 1]`` to RGB uint8 frames ``(T, H, W, 3)``."""
    pixels = to_uint8(sample).permute(1, 2, 3, 0).numpy()  # (T, H, W, C)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3])


def _even(frames: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """One RGB uint8 frame ``(H, W, 3)`` (even sides) as a planar yuv420p array ``(H * 3 / 2, W)``.

    BT.601 limited range, chroma averaged over 2x2 blocks. Converting here rather than in
    FFmpeg's swscale keeps the encoder input, and so the file, identical from run to run
    (swscale's conversion was seen to vary occasionally).
    """
    rgb = frame.astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    height, width = y.shape

    def half(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [y.ravel(), half(cb).ravel(), half(cr).ravel()]
    return np.rint(np.concatenate(planes)).clip(0, 255).astype(np.uint8).reshape(height * 3 // 2, width)


def write_mp4(frames: np.ndarray, path: Path, fps: int) -> Path:
    """Encode RGB uint8 frames ``(T, H, W, 3)`` as H.264/yuv420p MP4, atomically."""
    import av

    frames = _even(frames)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        # Near-lossless quality for small synthetic clips. One thread, options given when the
        # stream is created (options set afterwards made the bytes vary run to run), and no
        # macroblock-tree rate control keep the file reproducible from run, checkpoint and seed:
        # with mbtree on, libx264 encoded the same 32x32 frames differently about once in 1,500
        # files even on one thread; with mbtree=0, 0 in 45,000.
        stream = container.add_stream("libx264", rate=int(fps),
                                      options={"crf": "12", "threads": "1", "x264-params": "mbtree=0"})
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(pixels), format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def palette_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 frames ``(T, H, W, 3)`` as palette indices ``(T, H, W)`` and one ARGB palette ``(256, 4)``.

    Gray frames use the 256 gray levels (lossless); colour frames share one palette that
    Pillow's median cut makes from all frames together (no dithering, so it is deterministic).
    """
    palette = np.full((256, 4), 255, dtype=np.uint8)
    if (frames[..., 0] == frames[..., 1]).all() and (frames[..., 1] == frames[..., 2]).all():
        palette[:, 1:] = np.arange(256, dtype=np.uint8)[:, None]
        return np.ascontiguousarray(frames[..., 0]), palette
    from PIL import Image

    count, height, width, _ = frames.shape
    mosaic = Image.fromarray(frames.reshape(count * height, width, 3))
    quantized = mosaic.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    colours = np.asarray(quantized.getpalette()[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
    palette[: len(colours), 1:] = colours
    return np.asarray(quantized, dtype=np.uint8).reshape(count, height, width), palette


def write_gif(frames: np.ndarray, path: Path, fps: int) -> Path:
    """Write RGB uint8 frames ``(T, H, W, 3)`` as a looping GIF (FFmpeg's encoder), atomically.

    Every frame is kept, also when it repeats the previous one (Pillow's GIF writer merges
    repeated frames, which would change the clip's length).
    """
    import av

    indices, palette = palette_frames(frames)
    tmp = path.with_name(path.name + ".tmp.gif")
    with av.open(str(tmp), mode="w", format="gif") as container:
        stream = container.add_stream("gif", rate=int(fps))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "pal8"
        for index, pixels in enumerate(indices):
            frame = av.VideoFrame.from_ndarray((pixels, palette), format="pal8")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def write_video_samples(samples: torch.Tensor, out_dir: Path, info: SampleInfo,
                        data_info: Mapping[str, Any], fmt: str = "mp4") -> list[Path]:
    """Write each sample ``(C, T, H, W)`` as ``out_dir/[seedS-]sample-NNNNNN.mp4`` (or ``.gif``)."""
    if fmt not in CONTENT_FORMATS:
        raise UsageError(f"video samples are written as {' or '.join(CONTENT_FORMATS)}, not '{fmt}'")
    if samples.dim() != 5:
        raise ValueError(f"video samples must be (N, C, T, H, W), got {tuple(samples.shape)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = int(data_info.get("fps", 8) or 8)
    writer = write_mp4 if fmt == "mp4" else write_gif
    prefix = f"seed{info.seed}-" if info.seed is not None else ""
    paths = []
    for offset, sample in enumerate(samples):
        path = out_dir / f"{prefix}sample-{info.start_index + offset:06d}.{fmt}"
        paths.append(writer(video_frames(sample), path, fps))
    return paths


def frame_strips(samples: torch.Tensor, max_rows: int = 16, max_frames: int = 16, padding: int = 2) -> np.ndarray:
    """A grid image: one row per sample, its frames left to right; returns RGB uint8 ``(H, W, 3)``.

    Long clips show ``max_frames`` evenly spaced frames; at most ``max_rows`` samples are shown.
    """
    samples = samples[:max_rows]
    frames_total = samples.shape[2]
    picks = np.unique(np.linspace(0, frames_total - 1, min(max_frames, frames_total)).round().astype(int))
    rows, columns = samples.shape[0], len(picks)
    height, width = samples.shape[-2:]
    canvas = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), 255, np.uint8)
    for row, sample in enumerate(samples):
        frames = video_frames(sample)
        for column, t in enumerate(picks):
            top, left = padding + row * (height + padding), padding + column * (width + padding)
            canvas[top : top + height, left : left + width] = frames[t]
    return canvas


def write_video_preview(samples: torch.Tensor, path: Path, data_info: Mapping[str, Any]) -> Path:
    """Write a PNG of frame strips (one row per sample) at ``path`` (``.png`` added when missing)."""
    from PIL import Image

    path = Path(path)
    if path.suffix != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame_strips(samples)).save(path, format="PNG", optimize=False, compress_level=6)
    return path


def _moviepy_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("moviepy") is not None


def log_video_preview(writer: Any, tag: str, samples: torch.Tensor, step: int, data_info: Mapping[str, Any]) -> None:
    """TensorBoard: animated previews with ``add_video`` when moviepy is installed, else the strips image.

    ``SummaryWriter.add_video`` encodes GIFs through moviepy; without it the frame strips carry
    the same content as a still image (tag ``TAG/strips``).
    """
    if _moviepy_available():
        videos = to_uint8(samples[:16]).permute(0, 2, 1, 3, 4)  # (N, T, C, H, W)
        writer.add_video(tag, videos, step, fps=int(data_info.get("fps", 8) or 8))
    else:
        writer.add_image(f"{tag}/strips", frame_strips(samples), step, dataformats="HWC")
