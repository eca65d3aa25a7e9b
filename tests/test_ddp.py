"""Distributed training on the CPU with gloo and 2 processes (this file is also the worker).

The worker half (``python tests/test_ddp.py MODE OUT`` with torchrun's variables set) trains tiny
models with the real :class:`~cgan_core.trainer.Trainer` under a process group and saves every
rank's weights; the tests compare them:

- ranks end with identical parameters and batch-norm statistics (the DDP path of the core's
  default step, a step function that calls the bare modules, DCGAN with batch norm, SeqGAN's
  own steps with rollouts, TGAN's singular value clipping);
- a 2-process run with per-rank batch B equals a 1-process run with batch 2B within 1e-5
  (why that tolerance, and why this model, is said at :func:`test_two_processes_match_one_with_twice_the_batch`);
- a stop that reaches one rank stops both at the same step, and the resumed run ends bit-for-bit
  where the uninterrupted one does (per-rank RNG streams and the data order are restored).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import torch
from torch import nn

from cgan_core.callbacks import Callback
from cgan_core.config import EvalConfig, RunConfig, TrainConfig
from cgan_core.data import LoadedData, TensorData
from cgan_core.distributed import current_position
from cgan_core.losses import bce_discriminator_loss, non_saturating_generator_loss
from cgan_core.model import GANModel, Phase
from cgan_core.runs import RunDir
from cgan_core.specs import LossSpec
from cgan_core.trainer import Trainer, TrainingInterrupted, seed_everything

STEPS = 6
PER_RANK_BATCH = 8
TOLERANCE = 1e-5


# --- the models and the training the worker runs ---------------------------------------------------
@dataclass
class _Empty:
    """An empty config section."""


class TinyGAN(GANModel):
    """An MLP GAN without batch norm: its losses are means of per-sample terms.

    With ``shared_noise`` the latent batch of a step is drawn for the whole job from a counter
    seed and each rank takes its slice, so 2 ranks x B see the same noise as 1 rank x 2B.
    With ``bare_step`` the phase's step calls the bare modules (as SeqGAN's policy gradient
    does), which DDP cannot see: the trainer's optimiser hook must average those gradients.
    """

    def __init__(self, shared_noise: bool = True, bare_step: bool = False) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 6))
        self.discriminator = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
        self.shared_noise = shared_noise
        self.bare_step = bare_step
        self.draws = 0

    def sample_latent(self, n, generator=None):
        if generator is not None or not self.shared_noise:
            return self.randn(n, 4, generator=generator)
        rank, world = current_position()
        seeded = torch.Generator().manual_seed(10_000 + self.draws)
        self.draws += 1
        return torch.randn(n * world, 4, generator=seeded)[rank * n:(rank + 1) * n]

    def extra_state_tensors(self):
        return {"draws": torch.tensor([self.draws])}

    def load_extra_state_tensors(self, tensors):
        self.draws = int(tensors["draws"][0])

    def _bare(self, ctx):
        real = ctx.next_batch()
        fake = self.generator(self.sample_latent(len(real))).detach()
        loss_d = ctx.loss.discriminator_loss(self.discriminator(real), self.discriminator(fake))
        ctx.optimize("discriminator", loss_d)
        loss_g = ctx.loss.generator_loss(self.discriminator(self.generator(self.sample_latent(len(real)))))
        ctx.optimize("generator", loss_g)
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    def phases(self, train):
        return [Phase("adversarial", train.max_steps, self._bare if self.bare_step else None)]


def _config(batch: int, steps: int, optimizer: str = "sgd", **train) -> RunConfig:
    section = TrainConfig(max_steps=steps, batch_size=batch, optimizer=optimizer, lr_g=0.05, lr_d=0.05, amp=False,
                          sample_every=0, n_preview=4, tensorboard=False, log_every=1, seed=3,
                          device="cpu", **train)
    return RunConfig("points", "tiny", "memory", {"train": section, "eval": EvalConfig(), "data": _Empty(),
                                                   "model": _Empty()})


def _data() -> LoadedData:
    points = torch.randn(64, 6, generator=torch.Generator().manual_seed(11)) * 0.5 + 1.0
    return LoadedData(TensorData(points), {"shape": [6]})


def _bce() -> LossSpec:
    return LossSpec("bce", bce_discriminator_loss, non_saturating_generator_loss)


def train_tiny(batch: int, steps: int = STEPS, run_dir: Optional[Path] = None, callbacks=(), resume: bool = False,
               **model_options):
    """Train the tiny model (in whatever process group is active); returns the trainer."""
    seed_everything(3)
    run = None
    if run_dir is not None:
        run = RunDir(run_dir)
    config = _config(batch, steps, checkpoint_every=4)
    if run is not None and current_position()[0] == 0:
        run.prepare(resume=resume, overwrite=not resume)
        run.config_path.write_text(config.to_yaml())
    trainer = Trainer(TinyGAN(**model_options), _data(), config, _bce(), run=run, callbacks=list(callbacks),
                      device=torch.device("cpu"))
    trainer.fit(resume=resume)
    return trainer


def _dcgan():
    from cgan_core.plugins import get_registry
    from cgan_core.session import ResolvedRun, build_model, resolve_run

    resolved: ResolvedRun = resolve_run("image", "dcgan", "digits", None,
                                        ["model.base_channels=4", "model.latent_dim=8"], registry=get_registry())
    info = {"shape": [1, 32, 32], "channels": 1, "resolution": 32, "items": 32, "num_classes": None}
    return resolved, build_model(resolved, info)


# The other modalities' models, tiny: SeqGAN runs every phase (its policy gradient and
# discriminator rounds call the bare modules), TGAN clips its critic after every update.
PLUGIN_RUNS = {
    "seqgan": ("text", "seqgan", "oracle", [
        "model.g_embed_dim=8", "model.g_hidden_dim=8", "model.d_embed_dim=8", "model.d_filter_sizes=2,3",
        "model.d_num_filters=6,6", "model.rollouts=2", "model.d_rounds=1", "model.d_epochs=1",
        "model.d_batches_per_epoch=2", "model.reward_batch=64", "train.batch_size=8", "phases.mle.epochs=1",
        "phases.pretrain_d.rounds=1", "phases.adversarial.iterations=2", "data.oracle_vocab=40",
        "data.oracle_embed=6", "data.oracle_hidden=6", "data.max_len=8", "data.oracle_samples=96"]),
    "tgan": ("video", "tgan", "moving-digits", [
        "model.base_channels=4", "model.latent_dim=8", "model.frame_latent_dim=8", "data.resolution=32",
        "data.frames=4", "data.size=16", "train.batch_size=2", "train.max_steps=2", "model.clip_every=1",
        "model.clipping=singular"]),
}


def _plugin_trainer(modality: str, plugin: str, dataset: str, settings: list[str]) -> Trainer:
    from cgan_core.plugins import get_registry
    from cgan_core.session import build_model, load_data, resolve_run

    common = ["train.device=cpu", "train.tensorboard=false", "train.checkpoint_every=0", "train.sample_every=0"]
    resolved = resolve_run(modality, plugin, dataset, set_options=[*settings, *common])
    seed_everything(resolved.config.train.seed)
    data = load_data(resolved)
    model = build_model(resolved, data.info)
    return Trainer(model, data, resolved.config, get_registry().loss(resolved.config.train.loss),
                   device=torch.device("cpu"))


def _save(trainer, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(tensors, str(path))


class _StopOnOneRank(Callback):
    """Simulates a signal that reaches rank 1 only, after ``at`` steps."""

    name = "stop-one-rank"

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer, logs) -> None:
        if trainer.step == self.at and trainer.rank == 1:
            trainer._stop_signal = 15


def clipped_update(rank: int) -> list[float]:
    """One ``StepContext.optimize`` with clipping, where the two ranks' gradients point apart.

    Rank 0's gradient is (10, 0), rank 1's (0, 10): their mean (5, 5) clipped to norm 1 is
    (0.707, 0.707). Clipping each rank's gradient first would give (1, 0) and (0, 1), mean (0.5, 0.5).
    """
    from cgan_core.distributed import GradientSync
    from cgan_core.step import StepContext

    weight = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    sync = GradientSync({"w": optimizer}, {})
    ctx = StepContext(model=None, config=_config(1, 1), loss=_bce(), optimizers={"w": optimizer},  # type: ignore[arg-type]
                      device=torch.device("cpu"), data=_data(), batches=iter(()), world_size=2, rank=rank,
                      gradient_sync=sync)
    direction = torch.tensor([10.0, 0.0]) if rank == 0 else torch.tensor([0.0, 10.0])
    ctx.optimize("w", (weight * direction).sum(), clip=1.0)
    sync.remove()
    return (-weight.detach()).tolist()


def worker(mode: str, out: Path) -> None:
    """Run under a process group (or as the 1-process reference) and save what the tests compare."""
    from cgan_core import distributed

    context = distributed.init_distributed("cpu")
    rank = context.rank
    facts: dict = {"world_size": context.world_size}
    try:
        if mode in ("train", "all"):
            for name, options in (("default", {}), ("bare", {"bare_step": True})):
                trainer = train_tiny(PER_RANK_BATCH, **options)
                _save(trainer, out / f"{name}-rank{rank}.safetensors")
                facts[f"{name}_manual_syncs"] = trainer.gradient_sync.manual_syncs
                facts[f"{name}_logs"] = trainer.last_logs
            resolved, model = _dcgan()
            seed_everything(5)
            images = torch.rand(32, 1, 32, 32, generator=torch.Generator().manual_seed(rank)) * 2 - 1
            config = resolved.config
            config.train.batch_size, config.train.max_steps, config.train.device = 4, 3, "cpu"
            config.train.tensorboard, config.train.checkpoint_every = False, 0
            dcgan = Trainer(model, LoadedData(TensorData(images), {}), config, _bce(), device=torch.device("cpu"))
            dcgan.fit()
            _save(dcgan, out / f"dcgan-rank{rank}.safetensors")
            facts["clipped_update"] = clipped_update(rank)
        if mode in ("plugins", "all"):
            for name, (modality, plugin, dataset, settings) in PLUGIN_RUNS.items():
                trainer = _plugin_trainer(modality, plugin, dataset, settings)
                trainer.fit()
                _save(trainer, out / f"{name}-rank{rank}.safetensors")
                facts[f"{name}_manual_syncs"] = trainer.gradient_sync.manual_syncs
                facts[f"{name}_step"] = trainer.step
        if mode in ("resume", "all"):
            options = {"shared_noise": False}  # rank-seeded noise: the resume must restore each rank's RNG
            whole = train_tiny(PER_RANK_BATCH, steps=8, run_dir=out / "whole", **options)
            _save(whole, out / f"whole-rank{rank}.safetensors")
            try:
                train_tiny(PER_RANK_BATCH, steps=8, run_dir=out / "cut", callbacks=[_StopOnOneRank(2)], **options)
                facts["stopped"] = None
            except TrainingInterrupted as stop:
                facts["stopped"] = str(stop)
            resumed = train_tiny(PER_RANK_BATCH, steps=8, run_dir=out / "cut", resume=True, **options)
            _save(resumed, out / f"resumed-rank{rank}.safetensors")
        (out / f"facts-{mode}-rank{rank}.json").write_text(json.dumps(facts))
    finally:
        distributed.teardown_distributed()


# --- the tests -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(mode: str, out: Path, world: int = 2, timeout: float = 180) -> None:
    """Start ``world`` worker processes the way torchrun would (its variables, one port)."""
    port = str(_free_port())
    processes = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=port, CGAN_DB_URL="none")
        processes.append(subprocess.Popen([sys.executable, __file__, mode, str(out)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for rank, process in enumerate(processes):
        assert process.returncode == 0, f"rank {rank} failed:\n{outputs[rank][-3000:]}"


def _load(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp-train")
    launch("all", out)
    return out


def test_ranks_end_with_identical_weights(trained: Path) -> None:
    for name in ("default", "bare", "dcgan"):
        rank0, rank1 = _load(trained / f"{name}-rank0.safetensors"), _load(trained / f"{name}-rank1.safetensors")
        # Parameters, and batch-norm statistics (averaged over ranks at the end), bit for bit.
        assert _max_difference(rank0, rank1) == 0.0, name
    seed_everything(3)
    initial = TinyGAN().state_dict()
    assert _max_difference(initial, _load(trained / "default-rank0.safetensors")) > 1e-3  # it did train
    facts = [json.loads((trained / f"facts-all-rank{r}.json").read_text()) for r in (0, 1)]
    assert facts[0]["world_size"] == 2
    # DDP averaged the default step's gradients itself; the bare step needed the optimiser hook.
    assert facts[0]["default_manual_syncs"] == 0
    assert facts[0]["bare_manual_syncs"] == 2 * STEPS
    assert facts[0]["default_logs"] == facts[1]["default_logs"]  # logs are reduced over ranks


def test_clipping_sees_the_gradient_averaged_over_ranks(trained: Path) -> None:
    for rank in (0, 1):
        update = json.loads((trained / f"facts-all-rank{rank}.json").read_text())["clipped_update"]
        assert update == pytest.approx([2 ** -0.5, 2 ** -0.5], abs=1e-6)  # not (0.5, 0.5)


def test_seqgan_and_tgan_ranks_stay_identical(trained: Path) -> None:
    facts = json.loads((trained / "facts-all-rank0.json").read_text())
    for name in PLUGIN_RUNS:
        rank0, rank1 = _load(trained / f"{name}-rank0.safetensors"), _load(trained / f"{name}-rank1.safetensors")
        assert _max_difference(rank0, rank1) == 0.0, name
    assert facts["seqgan_step"] == 4  # mle 1 epoch, pretrain_d 1 round, adversarial 2 (embed is off)
    assert facts["seqgan_manual_syncs"] > 0  # its own step functions: the optimiser hook averaged them
    assert facts["tgan_step"] == 2 and facts["tgan_manual_syncs"] == 0  # the core's step: DDP did


def test_two_processes_match_one_with_twice_the_batch(trained: Path) -> None:
    """2 ranks x batch B == 1 process x batch 2B, within 1e-5 after 6 steps.

    What makes the comparison meaningful: the tiny model has no batch norm (whose per-rank batch
    statistics would differ from full-batch ones), its losses are means of per-sample terms, the
    two ranks' index shards of one epoch permutation together are exactly the 1-process batch,
    and its noise is drawn for the whole job and sliced per rank. What remains is float32
    rounding: each rank averages B terms and the all-reduce averages the two means, where one
    process averages 2B terms. That is ~1e-7 relative per step; SGD carries it through linearly,
    so 1e-5 after 6 steps is a 100x margin. (Adam is not used here: its first updates are about
    ``lr * sign(grad)``, and a gradient component near zero can flip sign under 1e-8 noise.)
    """
    two = _load(trained / "default-rank0.safetensors")
    reference = {k: v for k, v in train_tiny(2 * PER_RANK_BATCH).model.state_dict().items()}
    assert _max_difference(two, reference) < TOLERANCE
    bare = _load(trained / "bare-rank0.safetensors")
    assert _max_difference(bare, dict(train_tiny(2 * PER_RANK_BATCH, bare_step=True).model.state_dict())) < TOLERANCE
    # The check can fail: a 1-process run with batch B (half the data per step) is far away.
    seed_everything(3)
    assert _max_difference(two, dict(train_tiny(PER_RANK_BATCH).model.state_dict())) > 100 * TOLERANCE


def test_stop_on_one_rank_stops_both_and_resume_is_exact(trained: Path) -> None:
    facts = [json.loads((trained / f"facts-all-rank{r}.json").read_text()) for r in (0, 1)]
    for rank_facts in facts:  # rank 1 got the "signal" after step 2; both stopped after step 3
        assert rank_facts["stopped"] is not None and "at step 3" in rank_facts["stopped"]
    checkpoints = sorted(p.name for p in (trained / "cut" / "checkpoints").glob("step-*"))
    assert "step-00000003" in checkpoints
    state = json.loads((trained / "cut" / "checkpoints" / "step-00000003" / "state.json").read_text())
    payload = dict(state["payload"]["__dict__"])
    assert len(payload["rng_ranks"]) == 2  # every rank's RNG state is in the checkpoint
    assert json.loads((trained / "cut" / "run.json").read_text())["status"] == "completed"
    for rank in (0, 1):
        whole = _load(trained / f"whole-rank{rank}.safetensors")
        resumed = _load(trained / f"resumed-rank{rank}.safetensors")
        assert _max_difference(whole, resumed) == 0.0
    steps = [json.loads(line)["step"] for line in (trained / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))  # one log line per step, written by rank 0 only


def test_data_order_position_is_global_so_any_process_count_resumes_it() -> None:
    from cgan_core.data import SeededBatchOrder

    def order(world: int, rank: int = 0, batch: int = 2) -> SeededBatchOrder:
        return SeededBatchOrder(40, batch, seed=1, rank=rank, world_size=world)

    single = order(1, batch=4)
    pair = [order(2, rank) for rank in (0, 1)]
    for _ in range(3):  # 2 ranks x batch 2 see exactly the samples of 1 process x batch 4
        assert sorted(single.next_indices().tolist()) == sorted(torch.cat([o.next_indices() for o in pair]).tolist())
    state = pair[0].state_dict()
    assert state["position"] == single.state_dict()["position"] == 12 and state["world_size"] == 2
    resumed = order(1, batch=4)  # 2 processes -> 1
    resumed.load_state_dict(state)
    assert torch.equal(resumed.next_indices(), single.next_indices())
    three = [order(3, rank) for rank in range(3)]  # 2 processes -> 3: they continue the same permutation
    for rank_order in three:
        rank_order.load_state_dict(state)
    expected = order(1, batch=6)
    expected.load_state_dict(state)
    assert sorted(torch.cat([o.next_indices() for o in three]).tolist()) == sorted(expected.next_indices().tolist())


if __name__ == "__main__":
    worker(sys.argv[1], Path(sys.argv[2]))
