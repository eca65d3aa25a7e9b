"""Config sections of the video modality and the TGAN model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class VideoDataConfig:
    """The ``data`` section for video.

    Attributes:
        frames: Frames per clip (T).
        stride: Keep every ``stride``-th decoded frame (1 = every frame).
        resolution: Side of the square frames the model sees (TGAN: 32 or 64).
        channels: 1 for grayscale, 3 for RGB; sources are converted.
        max_items: Use at most this many clips (0 = all).
        clips_per_video: At most this many non-overlapping clips from each video file (0 = all).
        fps: Frame rate written into MP4/GIF content files.
        size: ``moving-digits``: number of training clips generated.
        reference_size: ``moving-digits``: clips of the held-out ``reference`` split (evaluation).
        digits: ``moving-digits``: digits bouncing in each clip (1 or 2).
        seed: ``moving-digits``: seed of the generator (same seed, same clips).
    """

    frames: int = 16
    stride: int = 1
    resolution: int = 64
    channels: int = 1
    max_items: int = 0
    clips_per_video: int = 0
    fps: int = 8
    size: int = 4000
    reference_size: int = 512
    digits: int = 2
    seed: int = 0


@dataclass
class TGANConfig:
    """The ``model`` section of TGAN (Saito, Matsumoto and Saito, ICCV 2017).

    Attributes:
        latent_dim: Size of the clip latent z0 (the paper's K0 = 100).
        frame_latent_dim: Size of each per-frame latent z1^t made by the temporal generator (K1).
        base_channels: Feature maps of the image generator's last layer and the discriminator's
            first layer; deeper layers double it (the paper uses 64).
        clipping: ``singular`` (singular value clipping, the paper's), ``weight`` (WGAN's weight
            clipping), ``none``, or ``auto``: ``singular`` with the ``wasserstein`` loss and
            ``none`` with any other loss (hinge, wgan-gp, ... bring their own Lipschitz control).
        clip_every: Apply the clipping after every N-th discriminator update (the paper: 5).
        weight_clip: Bound ``c`` of weight clipping (weights kept in ``[-c, c]``).
    """

    latent_dim: int = 100
    frame_latent_dim: int = 100
    base_channels: int = 16
    clipping: str = "auto"
    clip_every: int = 5
    weight_clip: float = 0.01
