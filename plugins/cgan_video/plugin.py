"""The video plugin: modality ``video``, model ``tgan``, dataset ``moving-digits``, video metrics.

This module is what the ``cgan.plugins`` entry point names, so it stays light: torch and PyAV
are imported only when a loader, writer, model or metric is actually used.
"""

from __future__ import annotations

from typing import Any, Callable

from cgan_core import DatasetSpec, ModalitySpec, ModelSpec, hookimpl, lazy

from cgan_video.config import TGANConfig, VideoDataConfig

# H.264 (crf 12) and the GIF palette are lossy; this bounds the pixel error of reading content back.
ROUNDTRIP_ATOL = 0.15


@hookimpl
def register_modalities(register: Callable[[Any], None]) -> None:
    """Register the ``video`` modality."""
    register(ModalitySpec(
        name="video",
        data_config=VideoDataConfig,
        open_source=lazy("cgan_video.sources", "open_video_source"),
        write_samples=lazy("cgan_video.writers", "write_video_samples"),
        write_preview=lazy("cgan_video.writers", "write_video_preview"),
        log_preview=lazy("cgan_video.writers", "log_video_preview"),
        default_dataset="moving-digits",
        default_metrics=("fvd@classifier", "frame-fid@classifier", "temporal-consistency"),
        default_eval_samples=512,
        content_formats=("mp4", "gif"),
        description="video clips as float (N, C, T, H, W) in [-1, 1]: folders of MP4/AVI/MOV/WebM/MKV/GIF "
                    "(PyAV), .npy/.npz arrays (N, T, H, W[, C])",
        conformance={"data.resolution": 32, "data.frames": 8, "roundtrip_atol": ROUNDTRIP_ATOL},
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register TGAN."""
    register(ModelSpec(
        name="tgan",
        modality="video",
        config=TGANConfig,
        build=lazy("cgan_video.tgan", "build_tgan"),
        train_defaults={"max_steps": 2000, "batch_size": 16, "loss": "wasserstein", "optimizer": "rmsprop",
                        "lr_g": 5e-5, "lr_d": 5e-5, "n_critic": 1, "checkpoint_every": 200,
                        "sample_every": 200, "n_preview": 8},
        conformance={"model.base_channels": 8, "model.latent_dim": 16, "model.frame_latent_dim": 16,
                     "data.resolution": 32, "data.frames": 8, "train.batch_size": 4},
        description="TGAN (Saito et al. 2017): temporal + image generators, 3-D critic, singular value clipping",
    ))


@hookimpl
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register the generated ``moving-digits`` dataset."""
    register(DatasetSpec(
        "moving-digits", "video", lazy("cgan_video.moving_digits", "load_moving_digits"),
        description="Moving-MNIST recipe on scikit-learn's digits: 1-2 digits bouncing in 64x64 frames, "
                    "16 frames (generated, seeded; --set data.resolution=32 for quick runs)",
        conformance={"data.resolution": 32, "data.frames": 8, "data.size": 64, "data.reference_size": 64},
    ))


@hookimpl
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register fvd@classifier, fvd@i3d, frame-fid@... and temporal-consistency."""
    from cgan_video.metrics import video_metric_specs

    for spec in video_metric_specs():
        register(spec)
