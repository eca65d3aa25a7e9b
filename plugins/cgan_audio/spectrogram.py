"""Log-magnitude spectrograms as pictures: the audio modality's preview grids."""

from __future__ import annotations

import numpy as np
import torch

# A perceptually ordered dark-to-bright colour map (black, purple, red, orange, pale yellow), so
# previews need no plotting library. Anchors are (position, r, g, b).
_COLOUR_ANCHORS = np.array([
    (0.00, 0, 0, 4),
    (0.25, 80, 18, 123),
    (0.50, 182, 54, 121),
    (0.75, 251, 136, 97),
    (1.00, 252, 253, 191),
], dtype=np.float64)


def colourize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 (shape + (3,)) with the preview colour map."""
    clipped = np.clip(values, 0.0, 1.0)
    channels = [np.interp(clipped, _COLOUR_ANCHORS[:, 0], _COLOUR_ANCHORS[:, i]) for i in (1, 2, 3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def preview_fft_size(length: int) -> int:
    """FFT size that makes a clip's spectrogram about twice as wide as tall (256 for 16,384 samples)."""
    return int(min(512, max(32, 2 ** round(np.log2(2 * np.sqrt(max(length, 1)))))))


def log_spectrogram(wave: torch.Tensor, n_fft: int = 0, floor_db: float = -80.0) -> np.ndarray:
    """dB magnitude spectrogram of a (L,) wave, scaled to [0, 1] (0 = ``floor_db`` below full scale).

    Rows are frequency bins, low frequencies at the bottom. ``n_fft`` 0 picks
    :func:`preview_fft_size`.
    """
    wave = wave.detach().float().cpu().reshape(-1)
    n_fft = min(n_fft or preview_fft_size(wave.shape[0]), max(16, wave.shape[0]))
    window = torch.hann_window(n_fft)
    spec = torch.stft(wave, n_fft, hop_length=n_fft // 4, window=window, return_complex=True).abs()
    # Full scale: a full-amplitude sine gives a peak of sum(window) / 2 in its bin.
    db = 20.0 * torch.log10(spec / (window.sum() / 2) + 1e-10)
    scaled = ((db - floor_db) / -floor_db).clamp(0.0, 1.0)
    return scaled.flip(0).numpy()


def spectrogram_grid(samples: torch.Tensor, padding: int = 2, columns: int = 0) -> np.ndarray:
    """A near-square grid of the samples' spectrograms (N, 1, L) as an (H, W, 3) uint8 image."""
    pictures = [colourize(log_spectrogram(sample)) for sample in samples]
    if not pictures:
        return np.full((1, 1, 3), 255, dtype=np.uint8)
    count = len(pictures)
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    height, width = pictures[0].shape[:2]
    canvas = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), 255, np.uint8)
    for index, picture in enumerate(pictures):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = picture
    return canvas
