"""WaveGAN training throughput: cgan's Trainer against a plain PyTorch WGAN-GP loop, same networks, same clips.

Prints one JSON document: real clips consumed per second (``n_critic * batch_size`` per step) by
both (median of alternating repeats), their ratio, and the setting. The plain loop is the
textbook WGAN-GP step written out by hand: ``n_critic`` critic updates with the gradient penalty
at random interpolates, then one generator update, Adam (1e-4, betas 0.5/0.9).

    python benchmarks/wavegan_throughput.py [--steps 10] [--repeats 3] [--dataset tones] [--device cpu]
        [--set data.length=16384 --set model.model_size=8 ...]
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

from cgan_core.callbacks import StepTimer
from cgan_core.plugins import get_registry
from cgan_core.runs import RunDir
from cgan_core.session import build_model, load_data, resolve_run
from cgan_core.trainer import Trainer, seed_everything


def setup(dataset: str, device: str, sets: list[str]):
    resolved = resolve_run("audio", "wavegan", dataset, set_options=sets,
                           overrides={"train.device": device, "train.tensorboard": False})
    seed_everything(0)
    data = load_data(resolved)
    return resolved, data, build_model(resolved, data.info)


def cgan_clips_per_second(args: argparse.Namespace) -> float:
    resolved, data, model = setup(args.dataset, args.device, args.set)
    train = resolved.config.sections["train"]
    train.max_steps, train.checkpoint_every, train.sample_every = args.warmup + args.steps, 0, 0
    timer = StepTimer(args.warmup)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.prepare(resume=False, overwrite=False)
        trainer = Trainer(model, data, resolved.config, get_registry().loss(train.loss), run=run,
                          modality=resolved.modality, callbacks=[timer])
        trainer.fit()
    return args.steps * train.n_critic * train.batch_size / (timer.end - timer.start)


def plain_step(generator, critic, opt_g, opt_d, batches, latent_dim, n_critic, weight):
    """One WGAN-GP step by hand: ``n_critic`` critic updates, one generator update."""
    for _ in range(n_critic):
        real = next(batches)
        n = real.shape[0]
        with torch.no_grad():
            fake = generator(torch.rand(n, latent_dim, device=real.device) * 2 - 1)
        alpha = torch.rand(n, 1, 1, device=real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        loss_d = critic(fake).mean() - critic(real).mean() + weight * penalty
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    for p in critic.parameters():
        p.requires_grad_(False)
    loss_g = -critic(generator(torch.rand(real.shape[0], latent_dim, device=real.device) * 2 - 1)).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for p in critic.parameters():
        p.requires_grad_(True)
    return loss_d


def plain_clips_per_second(args: argparse.Namespace) -> float:
    resolved, data, model = setup(args.dataset, args.device, args.set)
    train = resolved.config.train
    target = torch.device(args.device)
    generator, critic = model.generator.to(target), model.discriminator.to(target)
    clips = data.dataset.samples.to(target)
    opt_g = torch.optim.Adam(generator.parameters(), lr=train.lr_g, betas=tuple(train.betas))
    opt_d = torch.optim.Adam(critic.parameters(), lr=train.lr_d, betas=tuple(train.betas))

    def batches():
        while True:
            order = torch.randperm(len(clips))
            for start in range(0, len(clips) - train.batch_size + 1, train.batch_size):
                yield clips[order[start : start + train.batch_size]]

    stream = batches()
    step = lambda: plain_step(generator, critic, opt_g, opt_d, stream, model.latent_dim, train.n_critic,  # noqa: E731
                              train.penalty_weight)
    for _ in range(args.warmup):
        step()
    if target.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        float(step().detach())  # the trainer reads its losses every step too
    if target.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * train.n_critic * train.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="tones", help="audio dataset (tones needs no installed data)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. model.model_size=64")
    args = parser.parse_args()
    cgan_rates, plain_rates = [], []
    for _ in range(args.repeats):  # alternate so that machine noise hits both alike
        cgan_rates.append(cgan_clips_per_second(args))
        plain_rates.append(plain_clips_per_second(args))
    resolved = resolve_run("audio", "wavegan", args.dataset, set_options=args.set)
    cgan_rate, plain_rate = statistics.median(cgan_rates), statistics.median(plain_rates)
    result = {
        "benchmark": "wavegan_throughput",
        "dataset": args.dataset,
        "data": {"sample_rate": resolved.config.data.sample_rate, "length": resolved.config.data.length},
        "model": {"model_size": resolved.config.model.model_size, "phase_shuffle": resolved.config.model.phase_shuffle},
        "train": {"batch_size": resolved.config.train.batch_size, "n_critic": resolved.config.train.n_critic,
                  "loss": resolved.config.train.loss},
        "device": args.device,
        "steps_timed": args.steps,
        "repeats": args.repeats,
        "cgan_clips_per_s": round(cgan_rate, 2),
        "plain_clips_per_s": round(plain_rate, 2),
        "ratio_cgan_over_plain": round(cgan_rate / plain_rate, 4),
        "cgan_clips_per_s_all": [round(r, 2) for r in cgan_rates],
        "plain_clips_per_s_all": [round(r, 2) for r in plain_rates],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
