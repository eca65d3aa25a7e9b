"""TGAN throughput: cgan's Trainer against a plain PyTorch loop of the same model, and the video
data pipeline's frames/s against what training consumes.

Prints one JSON document:

* ``trainer`` / ``plain_pytorch``: real clips consumed per second (``batch_size * n_critic`` per
  step) in steady state, after warm-up steps, the median of alternating repeats; both run the same TGAN (same init seed), the same
  Wasserstein loss, RMSprop and singular value clipping every 5 critic updates, on the same
  moving-digits data. ``ratio_trainer_over_plain`` near 1 means the trainer adds no overhead.
* ``data``: frames/s of each stage of the data pipeline in this process (rendering
  moving-digits, PyAV decoding + resizing of MP4 files, the batch stream the trainer draws from)
  against ``training_consumption_frames_per_s``; ``headroom`` = slowest loader / consumption
  (above 1: the loader is not the bottleneck).

Usage::

    python benchmarks/tgan_throughput.py [--resolution 64] [--frames 16] [--batch-size 16]
        [--steps 20] [--warmup 3] [--repeats 3] [--base-channels 16] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _settings(args: argparse.Namespace) -> list[str]:
    return [f"data.resolution={args.resolution}", f"data.frames={args.frames}", f"data.size={args.clips}",
            f"model.base_channels={args.base_channels}", f"train.batch_size={args.batch_size}",
            f"train.device={args.device}", "train.tensorboard=false", "train.amp=false",
            f"train.max_steps={args.warmup + args.steps}", "train.sample_every=0", "train.checkpoint_every=0"]


def bench_trainer(args: argparse.Namespace) -> dict[str, Any]:
    """Steady-state clips/s of ``cgan_core.Trainer.fit`` (no run directory: nothing written)."""
    from cgan_core import Callback, get_registry
    from cgan_core.session import build_model, load_data, resolve_run
    from cgan_core.trainer import Trainer, seed_everything

    resolved = resolve_run("video", "tgan", "moving-digits", set_options=_settings(args))
    seed_everything(0)
    data = load_data(resolved)
    model = build_model(resolved, data.info)
    trainer = Trainer(model, data, resolved.config, get_registry().loss(resolved.config.train.loss))
    marks: dict[str, float] = {}

    class Timer(Callback):
        name = "benchmark-timer"

        def on_step_end(self, trainer_: Any, logs: Any) -> None:
            if trainer_.step in (args.warmup, args.warmup + args.steps):
                _sync(trainer_.device)
                marks[str(trainer_.step)] = time.perf_counter()

    trainer.callbacks.append(Timer())
    trainer.fit()
    seconds = marks[str(args.warmup + args.steps)] - marks[str(args.warmup)]
    clips = args.steps * args.batch_size * resolved.config.train.n_critic
    return {"clips_per_s": clips / seconds, "steps_per_s": args.steps / seconds, "seconds": seconds,
            "clip_count": int(model.clip_count), "device": str(trainer.device)}


def bench_plain(args: argparse.Namespace) -> dict[str, Any]:
    """The same model, loss, optimiser and clipping written as a bare PyTorch loop."""
    from cgan_core.session import build_model, load_data, resolve_run
    from cgan_core.trainer import resolve_device, seed_everything

    from cgan_video.clipping import clip_singular_values

    resolved = resolve_run("video", "tgan", "moving-digits", set_options=_settings(args))
    seed_everything(0)
    data = load_data(resolved)
    device = resolve_device(args.device)
    model = build_model(resolved, data.info).to(device)
    generator, critic = model.generator, model.discriminator
    train = resolved.config.train
    opt_g = torch.optim.RMSprop(generator.parameters(), lr=train.lr_g)
    opt_d = torch.optim.RMSprop(critic.parameters(), lr=train.lr_d)
    order = torch.Generator().manual_seed(0)
    updates = 0

    def real_batch() -> torch.Tensor:
        indices = torch.randint(0, len(data), (args.batch_size,), generator=order).tolist()
        return torch.stack([data.dataset[i] for i in indices]).to(device, non_blocking=True)

    def step() -> None:
        nonlocal updates
        for _ in range(train.n_critic):
            real = real_batch()
            with torch.no_grad():
                fake = generator(torch.randn(args.batch_size, model.latent_dim, device=device))
            loss_d = critic(fake).mean() - critic(real).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            updates += 1
            if updates % resolved.config.model.clip_every == 0:
                clip_singular_values(critic)
        for p in critic.parameters():
            p.requires_grad_(False)
        loss_g = -critic(generator(torch.randn(args.batch_size, model.latent_dim, device=device))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in critic.parameters():
            p.requires_grad_(True)

    for _ in range(args.warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - started
    clips = args.steps * args.batch_size * train.n_critic
    return {"clips_per_s": clips / seconds, "steps_per_s": args.steps / seconds, "seconds": seconds}


def _rate(count: int, function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return count / (time.perf_counter() - started), result


def bench_data(args: argparse.Namespace) -> dict[str, Any]:
    """Frames/s of rendering, PyAV decoding and the trainer's batch stream."""
    from cgan_core import DataRequest, SampleInfo, SeededBatchOrder
    from cgan_core.data import BatchStream

    from cgan_video.config import VideoDataConfig
    from cgan_video.moving_digits import MovingDigits
    from cgan_video.sources import open_video_source
    from cgan_video.writers import write_video_samples

    frames, side = args.frames, args.resolution
    digits = MovingDigits(256, frames, side, 2, 1, seed=0)
    digits[0]  # the digit images are loaded once, outside the timing
    render_rate, _ = _rate(256 * frames, lambda: [digits[i] for i in range(256)])
    with tempfile.TemporaryDirectory() as tmp:
        long_clips = MovingDigits(args.videos, args.video_frames, side, 2, 1, seed=1)
        samples = torch.stack([long_clips[i] for i in range(args.videos)])
        write_video_samples(samples, Path(tmp), SampleInfo(seed=0), {"fps": 25})
        config = VideoDataConfig(resolution=side, frames=frames, channels=1)
        decoded_frames = args.videos * (args.video_frames // frames) * frames
        decode_rate, loaded = _rate(decoded_frames, lambda: open_video_source(DataRequest(tmp, config)))
    batches = 50
    stream = BatchStream(loaded.dataset, SeededBatchOrder(len(loaded), min(args.batch_size, len(loaded)), 0))
    stream_rate, _ = _rate(batches * min(args.batch_size, len(loaded)) * frames,
                           lambda: [next(stream) for _ in range(batches)])
    digits_stream = BatchStream(digits, SeededBatchOrder(len(digits), args.batch_size, 0))
    digits_stream_rate, _ = _rate(batches * args.batch_size * frames, lambda: [next(digits_stream) for _ in range(batches)])
    return {
        "moving_digits_render_frames_per_s": render_rate,
        "pyav_decode_resize_frames_per_s": decode_rate,
        "batch_stream_decoded_clips_frames_per_s": stream_rate,
        "batch_stream_moving_digits_frames_per_s": digits_stream_rate,
        "decoded_video": {"files": args.videos, "frames_per_file": args.video_frames, "codec": "h264 (cgan's writer)",
                          "source_resolution": side},
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median clips/s, plus every repeat's clips/s."""
    ordered = sorted(runs, key=lambda run: run["clips_per_s"])
    median = dict(ordered[len(ordered) // 2])
    median["repeats_clips_per_s"] = [run["clips_per_s"] for run in runs]
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of both loops (median kept)")
    parser.add_argument("--clips", type=int, default=512, help="moving-digits training clips")
    parser.add_argument("--videos", type=int, default=8, help="MP4 files written and decoded")
    parser.add_argument("--video-frames", type=int, default=160, help="frames per MP4 file")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    trainer_runs, plain_runs = [], []
    for _ in range(args.repeats):  # alternate, so load changes on a shared machine hit both alike
        trainer_runs.append(bench_trainer(args))
        plain_runs.append(bench_plain(args))
    trainer = _median_run(trainer_runs)
    plain = _median_run(plain_runs)
    data = bench_data(args)
    consumption = trainer["clips_per_s"] * args.frames
    loaders = {k: v for k, v in data.items() if k.endswith("frames_per_s")}
    data["training_consumption_frames_per_s"] = consumption
    data["headroom"] = {k.removesuffix("_frames_per_s"): v / consumption for k, v in loaders.items()}
    data["slowest_loader_headroom"] = min(data["headroom"].values())
    report = {
        "benchmark": "tgan_throughput",
        "config": {k: v for k, v in vars(args).items()},
        "trainer": trainer,
        "plain_pytorch": plain,
        "ratio_trainer_over_plain": trainer["clips_per_s"] / plain["clips_per_s"],
        "data": data,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
