"""DCGAN training throughput: cgan's Trainer against a plain PyTorch loop, same model, same data.

Prints one JSON document: steps/s of both (median of alternating repeats), their ratio, the
FLOPs of one training step (D update + G update, forward and backward, counted by
``torch.utils.flop_counter``) and the achieved GFLOP/s of each.

    python benchmarks/dcgan_throughput.py [--steps 40] [--repeats 3] [--batch-size 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cgan_core.callbacks import StepTimer
from cgan_core.plugins import get_registry
from cgan_core.runs import RunDir
from cgan_core.session import build_model, load_data, resolve_run
from cgan_core.trainer import Trainer, seed_everything


def make_model_and_data(batch_size: int, device: str, base_channels: int):
    resolved = resolve_run("image", "dcgan", "digits", overrides={
        "train.batch_size": batch_size, "train.device": device, "train.tensorboard": True,
        "model.base_channels": base_channels, "train.ema_decay": 0.0})
    seed_everything(0)
    data = load_data(resolved)
    model = build_model(resolved, data.info)
    return resolved, data, model


def cgan_steps_per_second(steps: int, warmup: int, batch_size: int, device: str, base_channels: int) -> float:
    resolved, data, model = make_model_and_data(batch_size, device, base_channels)
    resolved.config.sections["train"].max_steps = warmup + steps
    resolved.config.sections["train"].checkpoint_every = 0
    resolved.config.sections["train"].sample_every = 0
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.prepare(resume=False, overwrite=False)
        trainer = Trainer(model, data, resolved.config, get_registry().loss("bce"), run=run,
                          modality=resolved.modality, callbacks=[timer])
        trainer.fit()
    return steps / (timer.end - timer.start)


def plain_step(generator, discriminator, opt_g, opt_d, real, latent_dim):
    """One textbook DCGAN step: a discriminator update, then a generator update."""
    n = real.shape[0]
    fake = generator(torch.randn(n, latent_dim, device=real.device))
    d_loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake.detach())).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = F.softplus(-discriminator(generator(torch.randn(n, latent_dim, device=real.device)))).mean()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return d_loss, g_loss


def plain_steps_per_second(steps: int, warmup: int, batch_size: int, device: str,
                           base_channels: int) -> tuple[float, int]:
    resolved, data, model = make_model_and_data(batch_size, device, base_channels)
    target = torch.device(device)
    generator, discriminator = model.generator.to(target), model.discriminator.to(target)
    images = data.dataset.samples.to(target)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    latent_dim = model.latent_dim
    order = torch.randperm(len(images))
    position = 0

    def batch():
        nonlocal position, order
        if position + batch_size > len(images):
            order, position = torch.randperm(len(images)), 0
        index = order[position : position + batch_size]
        position += batch_size
        return images[index]

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        plain_step(generator, discriminator, opt_g, opt_d, batch(), latent_dim)
    flops = counter.get_total_flops()
    for _ in range(warmup - 1):
        plain_step(generator, discriminator, opt_g, opt_d, batch(), latent_dim)
    if target.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        d_loss, _ = plain_step(generator, discriminator, opt_g, opt_d, batch(), latent_dim)
        float(d_loss.detach())  # the trainer reads its losses every step too
    if target.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start), flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--base-channels", type=int, default=32, help="ngf/ndf (the default model's is 32)")
    args = parser.parse_args()
    cgan_rates, plain_rates, flops = [], [], 0
    for _ in range(args.repeats):  # alternate so that machine noise hits both alike
        cgan_rates.append(cgan_steps_per_second(args.steps, args.warmup, args.batch_size, args.device,
                                                args.base_channels))
        rate, flops = plain_steps_per_second(args.steps, args.warmup, args.batch_size, args.device, args.base_channels)
        plain_rates.append(rate)
    cgan_rate, plain_rate = statistics.median(cgan_rates), statistics.median(plain_rates)
    result = {
        "benchmark": "dcgan_throughput",
        "model": f"dcgan 32x32, base_channels {args.base_channels}, latent 100, digits",
        "batch_size": args.batch_size,
        "device": args.device,
        "steps_timed": args.steps,
        "repeats": args.repeats,
        "cgan_steps_per_s": round(cgan_rate, 3),
        "plain_steps_per_s": round(plain_rate, 3),
        "ratio_cgan_over_plain": round(cgan_rate / plain_rate, 4),
        "cgan_steps_per_s_all": [round(r, 3) for r in cgan_rates],
        "plain_steps_per_s_all": [round(r, 3) for r in plain_rates],
        "flops_per_step": flops,
        "cgan_gflops_per_s": round(flops * cgan_rate / 1e9, 2),
        "plain_gflops_per_s": round(flops * plain_rate / 1e9, 2),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "note": "the plain loop is the textbook one (gradients flow into D during the G update); "
                "cgan's step freezes D's parameters there, which saves that backward work",
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
