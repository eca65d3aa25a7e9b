"""The Trainer: default step, phases, EMA, NaN guard, checkpoint/resume of a multi-phase model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cgan_core.config import EvalConfig, RunConfig, TrainConfig
from cgan_core.data import LoadedData, TensorData
from cgan_core.model import GANModel, Phase
from cgan_core.plugins import get_registry
from cgan_core.runs import RunDir
from cgan_core.session import build_model, load_data, resolve_run
from cgan_core.trainer import Trainer, TrainingDiverged, seed_everything


class ToyGAN(GANModel):
    """2-D points; an optional extra phase that only trains the discriminator."""

    def __init__(self, warmup_steps: int = 0, nan_at: int = -1) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        self.discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
        self.warmup_steps = warmup_steps
        self.nan_at = nan_at

    def sample_latent(self, n, generator=None):
        return self.randn(n, 4, generator=generator)

    def _warmup(self, ctx):
        real = ctx.next_batch()
        loss = ctx.loss.discriminator_loss(self.discriminator(real), self.discriminator(self.generate(self.sample_latent(len(real))).detach()))
        ctx.optimize("discriminator", loss)
        ctx.state["warmup_calls"] = ctx.state.get("warmup_calls", 0) + 1
        value = float("nan") if ctx.step == self.nan_at else float(loss.detach())
        return {"loss_d": value}

    def phases(self, train):
        phases = [Phase("warmup", self.warmup_steps, self._warmup)] if self.warmup_steps else []
        adversarial_steps = train.max_steps if not self.warmup_steps else 4
        return phases + [Phase("adversarial", adversarial_steps)]


def _config(**train) -> RunConfig:
    return RunConfig("points", "toy", "ring", {"train": TrainConfig(**{"batch_size": 8, "tensorboard": False, **train}),
                                               "eval": EvalConfig(), "data": None, "model": None})


def _data() -> LoadedData:
    angles = torch.linspace(0, 6.28, 64)
    return LoadedData(TensorData(torch.stack([angles.cos(), angles.sin()], 1)), {"shape": [2]})


def _trainer(tmp_path=None, warmup_steps=0, nan_at=-1, **train) -> Trainer:
    seed_everything(0)
    model = ToyGAN(warmup_steps, nan_at)
    config = _config(**train)
    run = None
    if tmp_path is not None:
        run = RunDir(tmp_path)
        run.prepare(resume=False, overwrite=True)
    return Trainer(model, _data(), config, get_registry().loss(config.train.loss), run=run)


def test_dcgan_trains_a_few_steps_on_digits_with_finite_losses():
    resolved = resolve_run("image", "dcgan", "digits", set_options=["model.base_channels=8", "train.batch_size=16"],
                           overrides={"train.max_steps": 3, "train.tensorboard": False})
    seed_everything(0)
    data = load_data(resolved)
    assert len(data) == 1797 and data.info["shape"] == [1, 32, 32]
    model = build_model(resolved, data.info)
    before = [p.detach().clone() for p in model.generator.parameters()]
    trainer = Trainer(model, data, resolved.config, get_registry().loss("bce"))
    logs = trainer.fit()
    assert trainer.step == 3 and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))
    samples = model.sample(5, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (5, 1, 32, 32) and samples.min() >= -1 and samples.max() <= 1


def test_phases_run_in_order_and_max_steps_caps_multi_phase_models():
    trainer = _trainer(warmup_steps=3, max_steps=4)
    trainer.fit()
    assert trainer.step == 4 and trainer.context.state["warmup_calls"] == 3
    assert trainer.phase_name == "adversarial"


@pytest.mark.parametrize("loss,penalty", [("hinge", "none"), ("wasserstein", "gp"), ("lsgan", "r1"), ("wgan-gp", "none")])
def test_every_loss_and_penalty_trains(loss, penalty):
    trainer = _trainer(loss=loss, penalty=penalty, max_steps=3, n_critic=2)
    logs = trainer.fit()
    assert trainer.step == 3
    if penalty != "none" or loss == "wgan-gp":
        assert "penalty" in logs and logs["penalty"] >= 0


def test_ema_generator_differs_and_is_used_for_samples(tmp_path):
    trainer = _trainer(tmp_path, max_steps=5, ema_decay=0.9, checkpoint_every=0)
    trainer.fit()
    live = dict(trainer.model.generator.named_parameters())
    shadow = dict(trainer.ema.shadow.named_parameters())
    assert any(not torch.equal(live[k], shadow[k]) for k in live)
    assert trainer.sample_generator is trainer.ema.shadow
    from cgan_core.checkpoint import load_latest_good

    payload = load_latest_good(tmp_path / "checkpoints").restore()
    assert torch.equal(payload["ema"]["0.weight"], shadow["0.weight"])


def test_nan_guard_stops_with_the_last_good_checkpoint_intact(tmp_path):
    trainer = _trainer(tmp_path, warmup_steps=10, nan_at=5, max_steps=20, checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match=r"step 6 of phase 'warmup' \(loss_d=nan\).*'step-00000004' is intact"):
        trainer.fit()
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-00000004"
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


class _Crash(Exception):
    pass


class CrashAfterCheckpoint:
    """Simulates a kill right after the checkpoint of a given step was written."""

    name = "crash"

    def __init__(self, step):
        self.step = step

    def __getattr__(self, hook):  # every other callback hook is a no-op
        return lambda *args, **kwargs: None

    def on_checkpoint(self, trainer, name):
        if trainer.step == self.step:
            raise _Crash()

    def state_dict(self):
        return {}


@pytest.mark.parametrize("crash_step", [2, 3, 5])
def test_resume_matches_an_uninterrupted_run_at_any_point_of_any_phase(tmp_path, crash_step):
    full = _trainer(tmp_path / "full", warmup_steps=3, max_steps=100, checkpoint_every=1)
    full.fit()
    assert full.step == 7
    crashing = _trainer(tmp_path / "part", warmup_steps=3, max_steps=100, checkpoint_every=1)
    crashing.callbacks.append(CrashAfterCheckpoint(crash_step))
    with pytest.raises(_Crash):
        crashing.fit()
    torch.manual_seed(1234)  # a new process: fresh weights and RNG, all replaced by the checkpoint
    resumed = Trainer(ToyGAN(warmup_steps=3), _data(), _config(max_steps=100, checkpoint_every=1),
                      get_registry().loss("bce"), run=RunDir(tmp_path / "part"))
    resumed.fit(resume=True)
    assert resumed.step == 7 and resumed.context.state == full.context.state
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    for name in ("generator", "discriminator"):
        a, b = full.optimizers[name].state_dict()["state"], resumed.optimizers[name].state_dict()["state"]
        assert all(torch.equal(a[i]["exp_avg"], b[i]["exp_avg"]) for i in a)
