"""Evaluation throughput: feature extraction images/s and the time of a full ``cgan evaluate``.

Prints one JSON document:

* ``extraction.effnet-lite0``: images/s through cgan's extractor path (batching, gray->RGB,
  resize, channels-last, float64 features on the CPU) and through a plain timm forward loop on the
  same images with the same weights (the reference), their ratio, and the largest difference
  between the two feature sets (they must agree).
* ``extraction.classifier``: images/s of the domain classifier's features.
* ``evaluate``: wall time of one full ``cgan evaluate`` (the modality's default metrics) of a
  short digits DCGAN run with ``--n-samples`` generated samples, cold (empty cache: the
  classifier is trained and the reference features computed) and warm (cached), with the time
  of each metric.

Usage::

    python benchmarks/eval_throughput.py                      # 10,000 samples, 224 px effnet input
    python benchmarks/eval_throughput.py --n-samples 2000 --threads 1 --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def digits_images(n: int) -> torch.Tensor:
    """``n`` digits images (1x32x32 in [-1, 1]), the bundled set repeated as needed."""
    from sklearn.datasets import load_digits

    from cgan_image.preprocess import prepare_images

    images = prepare_images(load_digits().images.astype(np.float32) / 16.0, 32, 1, "center")
    repeats = -(-n // len(images))
    return images.repeat(repeats, 1, 1, 1)[:n].contiguous()


def time_call(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def plain_timm_features(images: torch.Tensor, size: int, batch_size: int,
                        device: torch.device) -> tuple[float, np.ndarray]:
    """The reference: timm's tf_efficientnet_lite0 with the same weights, a plain forward loop.

    Returns:
        Seconds of the loop (weights loading excluded) and the features.
    """
    import timm

    from cgan_image.features_effnet import ARCHITECTURE, convert_state_dict, weights_path

    model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=0)
    model.load_state_dict(convert_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True), model))
    model = model.eval().to(device)
    outputs = []
    with torch.no_grad():
        model(F.interpolate(images[:2].to(device).expand(-1, 3, -1, -1), size=(size, size), mode="bilinear"))  # warm-up
        started = time.perf_counter()
        for batch in images.split(batch_size):
            batch = batch.to(device).expand(-1, 3, -1, -1)
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
            outputs.append(model(batch).cpu())
        elapsed = time.perf_counter() - started
    return elapsed, torch.cat(outputs).double().numpy()


def extraction(n_images: int, size: int, device: torch.device) -> dict:
    from cgan_core import EvalContext

    from cgan_image.features import load_extractor

    images = digits_images(n_images)
    ctx = EvalContext(modality="image", real=images, fake=images, device=device,
                      options={"effnet-lite0.image_size": size})
    extractor = load_extractor("effnet-lite0", ctx)
    extractor.features(images[:2], device)  # warm-up (weights loaded, kernels chosen)
    cgan_seconds, cgan_features = time_call(extractor.features, images, device)
    reference_seconds, reference_features = plain_timm_features(images, size, extractor.batch_size, device)
    labels = torch.arange(len(images)) % 10
    classifier_ctx = EvalContext(modality="image", real=images, fake=images, real_labels=labels, device=device,
                                 data_info={"num_classes": 10})
    train_seconds, classifier = time_call(load_extractor, "classifier", classifier_ctx)
    classifier.features(images[:2], device)
    classifier_seconds, _ = time_call(classifier.features, images, device)
    return {
        "images": n_images,
        "effnet-lite0": {
            "image_size": size,
            "cgan_images_per_s": round(n_images / cgan_seconds, 2),
            "plain_timm_images_per_s": round(n_images / reference_seconds, 2),
            "ratio_cgan_over_plain": round(reference_seconds / cgan_seconds, 3),
            "max_abs_feature_difference": float(np.abs(cgan_features - reference_features).max()),
        },
        "classifier": {
            "images_per_s": round(n_images / classifier_seconds, 2),
            "training_seconds_uncached": round(train_seconds, 2),
        },
    }


def short_run(out: Path, steps: int) -> Path:
    """A short digits DCGAN run to evaluate (what the tests train)."""
    from typer.testing import CliRunner

    from cgan_core.cli import build_app

    args = ["run", "-m", "image", "-p", "dcgan", "--dataset", "digits", "--seed", "0", "--no-progress",
            "--max-steps", str(steps), "--set", "model.base_channels=16", "--set", "model.spectral_norm=true",
            "--set", "train.ema_decay=0",
            "--set", "train.sample_every=0", "--set", "train.checkpoint_every=0", "--set", "train.tensorboard=false",
            "--out", str(out)]
    result = CliRunner().invoke(build_app(), args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"training the benchmark run failed: {result.output}")
    return out


def full_evaluate(n_samples: int, steps: int, device: str, warm: bool = True) -> dict:
    from cgan_core.evaluation import evaluate_run

    with tempfile.TemporaryDirectory() as tmp:
        run = short_run(Path(tmp) / "run", steps)
        cache = Path(tmp) / "cache"
        timings = {}
        for label in ("cold", "warm") if warm else ("cold",):
            started = time.perf_counter()
            report = evaluate_run(run, n_samples=n_samples, device=device, cache_dir=cache)
            timings[label] = {
                "seconds": round(time.perf_counter() - started, 2),
                "metrics": {r.metric: {"value": round(r.value, 6), "seconds": r.seconds} for r in report.results},
            }
        return {"n_samples": n_samples, "n_real": report.n_real, "training_steps": steps,
                "metrics": [r.metric for r in report.results], **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=1024, help="Images for the extraction timing.")
    parser.add_argument("--image-size", type=int, default=224, help="EfficientNet input size.")
    parser.add_argument("--n-samples", type=int, default=10_000, help="Generated samples of the full evaluate.")
    parser.add_argument("--train-steps", type=int, default=300, help="Steps of the run that is evaluated.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument("--skip-evaluate", action="store_true", help="Only time the feature extraction.")
    parser.add_argument("--no-warm", action="store_true", help="Time only the cold (empty cache) evaluate.")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = {
        "benchmark": "eval_throughput",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2), "device": str(device),
                    "python": platform.python_version(), "torch": torch.__version__},
        "extraction": extraction(args.n_images, args.image_size, device),
    }
    if not args.skip_evaluate:
        result["evaluate"] = full_evaluate(args.n_samples, args.train_steps, args.device, warm=not args.no_warm)
    result["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
