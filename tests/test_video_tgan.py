"""TGAN: shapes, and singular value clipping that really runs inside the core's adversarial step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cgan_core import adversarial_step, get_registry
from cgan_core.session import build_model, load_data, resolve_run
from cgan_core.trainer import Trainer

from cgan_video.clipping import batchnorm_scales, clip_singular_values, largest_singular_values, weight_matrix
from cgan_video.tgan import TGANDiscriminator, TGANGenerator

TINY = ["data.resolution=32", "data.frames=8", "data.size=32", "model.base_channels=8", "model.latent_dim=16",
        "model.frame_latent_dim=16", "train.batch_size=4", "train.tensorboard=false", "train.device=cpu"]


def _trainer(*settings: str) -> Trainer:
    resolved = resolve_run("video", "tgan", "moving-digits", set_options=[*TINY, *settings])
    data = load_data(resolved)
    model = build_model(resolved, data.info)
    return Trainer(model, data, resolved.config, get_registry().loss(resolved.config.train.loss))


@pytest.mark.parametrize("frames,resolution", [(16, 64), (8, 32), (12, 32)])
def test_generator_and_discriminator_shapes(frames: int, resolution: int):
    generator = TGANGenerator(16, 16, 3, frames, resolution, base=4).eval()
    video = generator(torch.randn(2, 16))
    assert video.shape == (2, 3, frames, resolution, resolution)
    assert video.min() >= -1.0 and video.max() <= 1.0
    # frames differ (the temporal generator gives each its own latent), clips differ
    assert not torch.allclose(video[:, :, 0], video[:, :, -1])
    assert not torch.allclose(video[0], video[1])
    scores = TGANDiscriminator(3, frames, resolution, base=4)(video)
    assert scores.shape == (2,)


def test_tgan_defaults_are_the_papers_objective():
    config = resolve_run("video", "tgan", "moving-digits").config
    assert (config.train.loss, config.train.optimizer, config.train.lr_d, config.train.lr_g) == \
        ("wasserstein", "rmsprop", 5e-5, 5e-5)
    assert config.model.clipping == "auto" and config.model.clip_every == 5
    assert config.data.resolution == 64 and config.data.frames == 16


def test_clip_singular_values_caps_reshaped_weights_and_bn_scales():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(2, 4, 3), nn.BatchNorm3d(4), nn.ConvTranspose2d(4, 3, 4), nn.Linear(5, 7))
    with torch.no_grad():
        for module in model:
            module.weight.mul_(25.0)
    assert weight_matrix(model[0]).shape == (4, 2 * 27)
    assert weight_matrix(model[2]).shape == (3, 4 * 16)  # transposed: (out, in * k * k)
    before = largest_singular_values(model)
    assert min(before.values()) > 1.5 and max(batchnorm_scales(model).values()) > 1.5
    assert clip_singular_values(model) == 4
    for value in largest_singular_values(model).values():
        assert value == pytest.approx(1.0, abs=1e-4)
    assert max(batchnorm_scales(model).values()) <= 1.0 + 1e-5
    assert clip_singular_values(model) == 0  # already within the bound: nothing to do


def _inflate(discriminator: nn.Module, factor: float = 30.0) -> None:
    """Push every singular value and batch-norm scale well above 1."""
    with torch.no_grad():
        for module in discriminator.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.BatchNorm3d)):
                module.weight.mul_(factor)


def test_singular_value_clipping_runs_in_the_default_adversarial_step():
    trainer = _trainer("train.n_critic=1", "model.clip_every=1")
    model = trainer.model
    discriminator = model.discriminator
    assert model.clipping == "singular"  # auto + wasserstein
    _inflate(discriminator)
    assert max(largest_singular_values(discriminator).values()) > 2.0
    assert max(batchnorm_scales(discriminator).values()) > 2.0
    after_clipping = []
    hook = model.after_discriminator_step

    def spy(step: int) -> None:  # what the critic looks like right after the core called the hook
        hook(step)
        after_clipping.append((largest_singular_values(discriminator), batchnorm_scales(discriminator)))

    model.after_discriminator_step = spy
    trainer.train_config.max_steps = 1
    trainer.phases = model.phases(trainer.train_config)
    trainer.fit()
    assert int(model.clip_count) == 1 and int(model.d_updates) == 1 and len(after_clipping) == 1
    sigmas, scales = after_clipping[0]
    assert len(sigmas) == 4  # three 3-D convolutions (32x32 frames) and the final 2-D one
    assert max(sigmas.values()) <= 1.0 + 1e-4 and min(sigmas.values()) > 0.99  # capped at exactly 1
    assert len(scales) == 2 and max(scales.values()) <= 1.0 + 1e-4
    # the generator update that followed left the critic's weights alone
    assert max(largest_singular_values(discriminator).values()) <= 1.0 + 1e-4


def test_clipping_fires_every_nth_discriminator_update():
    trainer = _trainer("train.n_critic=2", "model.clip_every=5")
    model = trainer.model
    _inflate(model.discriminator)
    for step in range(2):  # 4 discriminator updates: not clipped yet
        trainer.context.step = step
        adversarial_step(trainer.context)
    assert int(model.d_updates) == 4 and int(model.clip_count) == 0
    assert max(largest_singular_values(model.discriminator).values()) > 2.0
    trainer.context.step = 2
    adversarial_step(trainer.context)  # updates 5 and 6: clipped after the 5th
    assert int(model.d_updates) == 6 and int(model.clip_count) == 1
    # the 6th update moved the weights by at most lr; the cap holds up to that step
    assert max(largest_singular_values(model.discriminator).values()) < 1.05


def test_weight_clipping_and_registry_losses():
    trainer = _trainer("model.clipping=weight", "model.clip_every=1", "model.weight_clip=0.01")
    _inflate(trainer.model.discriminator, 10.0)
    trainer.train_config.max_steps = 1
    trainer.phases = trainer.model.phases(trainer.train_config)
    trainer.fit()
    assert int(trainer.model.clip_count) == 1
    assert max(float(p.detach().abs().max()) for p in trainer.model.discriminator.parameters()) <= 0.01 + 1e-7
    hinge = _trainer("train.loss=hinge", "train.optimizer=adam")
    assert hinge.model.clipping == "none"  # auto: the hinge loss brings no clipping
    hinge.train_config.max_steps = 1
    hinge.phases = hinge.model.phases(hinge.train_config)
    logs = hinge.fit()
    assert int(hinge.model.clip_count) == 0 and set(logs) >= {"loss_d", "loss_g"}
    gp = _trainer("train.loss=wgan-gp")
    gp.train_config.max_steps = 1
    gp.phases = gp.model.phases(gp.train_config)
    assert "penalty" in gp.fit()


def test_bad_model_settings_are_usage_errors():
    from cgan_core import UsageError

    with pytest.raises(UsageError, match="model.clipping"):
        _trainer("model.clipping=spectral")
    with pytest.raises(UsageError, match="32x32 or 64x64"):
        _trainer("data.resolution=48")
