"""The image plugin: modality ``image``, model ``dcgan``, datasets ``digits`` and ``fashion-mnist``.

This module is what the ``cgan.plugins`` entry point names, so it stays light: torch and the
image libraries are imported only when a loader, writer or model is actually used.
"""

from __future__ import annotations

from typing import Any, Callable

from cgan_core import DatasetSpec, ModalitySpec, ModelSpec, hookimpl, lazy

from cgan_image.config import DCGANConfig, ImageDataConfig


@hookimpl
def register_modalities(register: Callable[[Any], None]) -> None:
    """Register the ``image`` modality."""
    register(ModalitySpec(
        name="image",
        data_config=ImageDataConfig,
        open_source=lazy("cgan_image.sources", "open_image_source"),
        write_samples=lazy("cgan_image.writers", "write_image_samples"),
        write_preview=lazy("cgan_image.writers", "write_image_preview"),
        log_preview=lazy("cgan_image.writers", "log_image_preview"),
        default_dataset="digits",
        default_metrics=("fid@classifier", "kid@classifier", "precision@classifier", "recall@classifier",
                         "classifier-score", "fid@effnet-lite0"),
        default_eval_samples=2000,
        content_formats=("png",),
        # PNG stores 8-bit pixels: a written sample reads back within half a grey level of 2/255.
        conformance={"roundtrip_atol": 0.008},
        description="2-D images: folders of PNG/JPEG/WebP/BMP, IDX (MNIST) files, .npy/.npz arrays",
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register DCGAN."""
    register(ModelSpec(
        name="dcgan",
        modality="image",
        config=DCGANConfig,
        build=lazy("cgan_image.dcgan", "build_dcgan"),
        # The paper's optimiser; 1,200 steps with an EMA generator give recognisable digits on the
        # bundled dataset in about two minutes on 2 CPU cores.
        train_defaults={"max_steps": 1200, "batch_size": 64, "loss": "bce", "lr_g": 2e-4, "lr_d": 2e-4,
                        "betas": (0.5, 0.999), "ema_decay": 0.995, "checkpoint_every": 300,
                        "sample_every": 200},
        conformance={"model.base_channels": 8, "model.latent_dim": 16},
        description="DCGAN (Radford et al. 2016), 32x32 or 64x64",
    ))


@hookimpl
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register the bundled and installed image datasets."""
    register(DatasetSpec("digits", "image", lazy("cgan_image.datasets", "load_digits"),
                         description="scikit-learn's 1,797 real 8x8 handwritten digits (bundled), resized"))
    register(DatasetSpec("fashion-mnist", "image", lazy("cgan_image.datasets", "load_fashion_mnist"),
                         description="Fashion-MNIST 28x28 (Debian dataset-fashion-mnist, $CGAN_DATA_DIR, or download)"))


@hookimpl
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register fid/kid/precision/recall/density/coverage @effnet-lite0, @classifier, @inception."""
    from cgan_image.metrics import image_metric_specs  # light: torch is imported when computing

    for spec in image_metric_specs():
        register(spec)
