"""DDP scaling on the CPU: cgan's Trainer with 1 and 2 processes (gloo), and a plain PyTorch loop.

Weak scaling: every process trains DCGAN on its own batch of ``--batch-size`` images, so 2
processes consume twice the samples per step. Prints one JSON document with samples/s (real
images through the discriminator step per second, summed over processes) of:

- ``plain_1proc``: a plain PyTorch loop (same networks, losses and optimisers), 1 thread;
- ``cgan_1proc``: cgan's Trainer in one process, 1 thread (``ratio_cgan_to_plain`` compares them);
- ``cgan_1proc_2threads``: one process using both cores through intra-op threads;
- ``cgan_2proc``: cgan under torch.distributed, 2 processes x 1 thread (gloo all-reduce);

and ``scaling_efficiency = cgan_2proc / (2 * cgan_1proc)``, with the machine's core count and load
average (other work on the machine lowers every number). Samples per CPU-second (summed over
processes) are reported too: on a shared machine they still show what DDP costs in work
(``cpu_efficiency_2proc``) when the wall-clock speed-up only shows how busy the machine was. Each configuration runs ``--repeats``
times, interleaved; the median run is reported, and every repeat's samples/s listed.

    python benchmarks/ddp_scaling.py [--steps 30] [--warmup 5] [--batch-size 64] [--base-channels 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cgan_core.callbacks import StepTimer
from cgan_core.data import LoadedData, TensorData
from cgan_core.plugins import get_registry
from cgan_core.session import build_model, resolve_run
from cgan_core.trainer import Trainer, seed_everything


def _model(args: argparse.Namespace) -> tuple[Any, Any]:
    resolved = resolve_run("image", "dcgan", "digits", overrides={
        "train.batch_size": args.batch_size, "train.device": "cpu", "train.tensorboard": False,
        "train.max_steps": args.warmup + args.steps, "train.checkpoint_every": 0, "train.sample_every": 0,
        "train.n_preview": 1, "train.amp": False, "model.base_channels": args.base_channels,
        "model.latent_dim": 100})
    seed_everything(0)
    info = {"shape": [1, 32, 32], "channels": 1, "resolution": 32, "items": args.items, "num_classes": None}
    return resolved, build_model(resolved, info)


def _images(args: argparse.Namespace) -> torch.Tensor:
    return torch.rand(args.items, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


def cgan_samples_per_second(args: argparse.Namespace) -> dict[str, Any]:
    """Train with cgan's Trainer in whatever process group is active; rank 0 reports."""
    from cgan_core import distributed

    context = distributed.init_distributed("cpu")
    try:
        torch.set_num_threads(args.threads)
        resolved, model = _model(args)
        timer = StepTimer(args.warmup)
        trainer = Trainer(model, LoadedData(TensorData(_images(args)), {}), resolved.config,
                          get_registry().loss(resolved.config.train.loss), callbacks=[timer],
                          device=torch.device("cpu"))
        trainer.fit()
        seconds = timer.end - timer.start
        cpu_seconds = sum(distributed.all_gather_object(timer.cpu_end - timer.cpu_start))  # every rank's CPU
        samples = args.steps * args.batch_size * context.world_size
        return {"processes": context.world_size, "threads_per_process": args.threads, "seconds": round(seconds, 3),
                "samples_per_s": round(samples / seconds, 2), "steps_per_s": round(args.steps / seconds, 3),
                "cpu_seconds": round(cpu_seconds, 3), "samples_per_cpu_s": round(samples / cpu_seconds, 2),
                "gradient_syncs_outside_ddp": trainer.gradient_sync.manual_syncs if trainer.gradient_sync else 0}
    finally:
        distributed.teardown_distributed()


def plain_samples_per_second(args: argparse.Namespace) -> dict[str, Any]:
    """The same DCGAN step written as a plain PyTorch loop (BCE on logits, Adam, D then G)."""
    torch.set_num_threads(args.threads)
    _, model = _model(args)
    generator, discriminator = model.generator, model.discriminator
    train = {"lr": 2e-4, "betas": (0.5, 0.999)}
    opt_g = torch.optim.Adam(generator.parameters(), **train)
    opt_d = torch.optim.Adam(discriminator.parameters(), **train)
    images = _images(args)
    latent_shape = model.sample_latent(1).shape[1:]
    torch.manual_seed(1)
    start = cpu_start = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start, cpu_start = time.perf_counter(), time.process_time()
        real = images[torch.randint(0, len(images), (args.batch_size,))]
        with torch.no_grad():
            fake = generator(torch.randn(args.batch_size, *latent_shape))
        real_logits, fake_logits = discriminator(real), discriminator(fake)
        loss_d = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        for p in discriminator.parameters():  # no gradients into D during the G update
            p.requires_grad_(False)
        logits = discriminator(generator(torch.randn(args.batch_size, *latent_shape)))
        loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in discriminator.parameters():
            p.requires_grad_(True)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"processes": 1, "threads_per_process": args.threads, "seconds": round(seconds, 3),
            "samples_per_s": round(args.steps * args.batch_size / seconds, 2),
            "steps_per_s": round(args.steps / seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "samples_per_cpu_s": round(args.steps * args.batch_size / cpu_seconds, 2)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(args: argparse.Namespace, processes: int, threads: int) -> dict[str, Any]:
    """Run the cgan measurement in ``processes`` fresh processes (torchrun's variables, gloo)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        port = str(_free_port())
        children = []
        for rank in range(processes):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), CGAN_DB_URL="none")
            if processes > 1:
                env.update(RANK=str(rank), WORLD_SIZE=str(processes), LOCAL_RANK=str(rank),
                           LOCAL_WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
            else:
                for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
                    env.pop(name, None)
            command = [sys.executable, __file__, "--worker", str(result), "--threads", str(threads),
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
                       "--base-channels", str(args.base_channels), "--items", str(args.items)]
            children.append(subprocess.Popen(command, env=env))
        codes = [child.wait() for child in children]
        if any(codes):
            raise SystemExit(f"a benchmark process failed: exit codes {codes}")
        return json.loads(result.read_text())


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(results, key=lambda r: r["samples_per_s"])[len(results) // 2]


def main() -> None:
    """Parse options, run every configuration, print the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="Timed steps (after the warm-up).")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed steps first.")
    parser.add_argument("--batch-size", type=int, default=64, help="Images per process per step.")
    parser.add_argument("--base-channels", type=int, default=32, help="DCGAN width (ngf/ndf).")
    parser.add_argument("--items", type=int, default=2048, help="Synthetic 32x32 images in the dataset.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved repeats; the median is reported.")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        measured = cgan_samples_per_second(args)
        if int(os.environ.get("RANK", "0")) == 0:
            args.worker.write_text(json.dumps(measured))
        return

    load_before = os.getloadavg()
    torch.set_num_threads(1)
    runs: dict[str, list[dict[str, Any]]] = {"plain_1proc": [], "cgan_1proc": [], "cgan_1proc_2threads": [],
                                              "cgan_2proc": []}
    for _ in range(args.repeats):  # interleaved, so a burst of other load hits every configuration alike
        runs["plain_1proc"].append(plain_samples_per_second(argparse.Namespace(**{**vars(args), "threads": 1})))
        runs["cgan_1proc"].append(launch(args, processes=1, threads=1))
        runs["cgan_2proc"].append(launch(args, processes=2, threads=1))
        runs["cgan_1proc_2threads"].append(launch(args, processes=1, threads=2))
    plain, one, one_two_threads, two = (_median_run(runs[name]) for name in
                                        ("plain_1proc", "cgan_1proc", "cgan_1proc_2threads", "cgan_2proc"))
    print(json.dumps({
        "benchmark": "ddp_scaling",
        "model": f"dcgan 32x32x1, base_channels={args.base_channels}, latent 100, bce, adam",
        "batch_per_process": args.batch_size, "timed_steps": args.steps, "warmup_steps": args.warmup,
        "backend": "gloo", "device": "cpu",
        "cpu_cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__, "python": platform.python_version(),
        "plain_1proc": plain, "cgan_1proc": one, "cgan_1proc_2threads": one_two_threads, "cgan_2proc": two,
        "ratio_cgan_to_plain": round(one["samples_per_s"] / plain["samples_per_s"], 3),
        "scaling_efficiency": round(two["samples_per_s"] / (2 * one["samples_per_s"]), 3),
        "speedup_2proc_vs_1proc": round(two["samples_per_s"] / one["samples_per_s"], 3),
        # Work per sample, independent of how much CPU other programs left us: the share of the
        # 2-process run's CPU time that went into useful training (DDP overhead lowers it).
        "cpu_efficiency_2proc": round(two["samples_per_cpu_s"] / one["samples_per_cpu_s"], 3),
        "ratio_cgan_to_plain_per_cpu_s": round(one["samples_per_cpu_s"] / plain["samples_per_cpu_s"], 3),
        "speedup_2proc_vs_1proc_2threads": round(two["samples_per_s"] / one_two_threads["samples_per_s"], 3),
        "repeats": args.repeats,
        "samples_per_s_each_repeat": {name: [r["samples_per_s"] for r in results] for name, results in runs.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
