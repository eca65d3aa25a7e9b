"""Video metrics: fvd@classifier, frame-fid (through the registry), temporal-consistency, fvd@i3d."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cgan_core import EvalContext, MetricUnavailable, UsageError, evaluate_samples, get_registry
from cgan_core.session import build_model, load_data, resolve_run
from cgan_core.trainer import Trainer, seed_everything

QUICK = ["data.resolution=32", "data.frames=8", "data.digits=1", "data.size=256", "data.reference_size=64",
         "model.base_channels=16", "train.batch_size=8", "train.tensorboard=false", "train.device=cpu"]
# Short classifier recipes keep the test fast; the metrics only need to rank, not to be publishable.
OPTIONS = {"clip-classifier.steps": 150, "frame-classifier.steps": 150, "classifier.max_steps": 150}
METRICS = ["fvd@classifier", "frame-fid@classifier", "temporal-consistency"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory):
    """A resolved 32x32 moving-digits run, its data, reference clips and a shared metric cache."""
    resolved = resolve_run("video", "tgan", "moving-digits", set_options=QUICK)
    data = load_data(resolved)
    reference = load_data(resolved, split="reference")
    real = torch.stack([reference.dataset[i] for i in range(len(reference))])
    return resolved, data, reference, real, tmp_path_factory.mktemp("video-metric-cache")


def _evaluate(digits_run, fake: torch.Tensor, metrics=METRICS):
    resolved, data, reference, real, cache = digits_run
    return evaluate_samples(
        "video", real, fake, metrics, real_labels=reference.labels, data_info=data.info, cache_dir=cache,
        dataset_key="moving-digits-32-test", options=OPTIONS, load_split=lambda split: load_data(resolved, split=split),
    )


@pytest.mark.slow
def test_trained_tgan_beats_untrained_on_every_video_metric(digits_run):
    resolved, data = digits_run[0], digits_run[1]
    seed_everything(0)
    model = build_model(resolved, data.info)
    sample = lambda: model.sample(64, generator=torch.Generator().manual_seed(1))  # noqa: E731
    before = _evaluate(digits_run, sample())
    # The paper's objective (Wasserstein + singular value clipping, RMSprop) at a larger step size.
    config = resolved.config
    config.train.max_steps, config.train.lr_g, config.train.lr_d = 80, 5e-4, 5e-4
    trainer = Trainer(model, data, config, get_registry().loss(config.train.loss))
    trainer.fit()
    assert int(model.clip_count) == 16  # singular value clipping ran every 5th critic update
    after = _evaluate(digits_run, sample())
    b, a = before.values(), after.values()
    assert a["fvd@classifier"] < 0.9 * b["fvd@classifier"], (b, a)
    assert a["frame-fid@classifier"] < 0.9 * b["frame-fid@classifier"], (b, a)
    # Untrained output is the same in every clip (about 0); 80 CPU steps give clips content of their
    # own that stays through the clip, still far below real clips (reference_value, about 0.9).
    assert a["temporal-consistency"] > max(100 * b["temporal-consistency"], 1e-3), (b, a)
    for result in after.results:  # every number carries its provenance
        assert result.extractor and len(result.weights_sha256 or "") == 64 and result.preprocessing
        assert result.n_real == 64 and result.n_fake == 64
    consistency = after.result("temporal-consistency").details
    assert consistency["reference_value"] > a["temporal-consistency"]  # real clips are still better
    assert after.result("frame-fid@classifier").details["image_metric"] == "fid@classifier"


def test_real_clips_score_best_and_a_digit_change_mid_clip_is_caught(digits_run):
    _, data, reference, real, _ = digits_run
    other = torch.stack([data.dataset[i] for i in range(64)])  # held-out real clips vs the reference
    report = _evaluate(digits_run, other, ["fvd@classifier", "temporal-consistency"])
    labels = data.labels[:64]
    spliced = other.clone()
    for i in range(64):  # the second half of each clip shows another clip with a different digit
        j = next(k for k in range(64) if labels[k] != labels[i])
        spliced[i, :, 4:] = other[j, :, 4:]
    changed = _evaluate(digits_run, spliced, ["temporal-consistency"])
    assert report.values()["temporal-consistency"] > changed.values()["temporal-consistency"] + 0.15
    noise = torch.rand_like(other) * 2 - 1
    noisy = _evaluate(digits_run, noise, ["fvd@classifier", "temporal-consistency"])
    assert noisy.values()["fvd@classifier"] > 5 * report.values()["fvd@classifier"]
    assert noisy.values()["temporal-consistency"] < 0.2


def test_classifier_metrics_need_labels():
    clips = torch.rand(6, 1, 4, 32, 32) * 2 - 1
    ctx = EvalContext("video", clips, clips, data_info={"shape": [1, 4, 32, 32]})
    for name in ("fvd@classifier", "temporal-consistency"):
        with pytest.raises(MetricUnavailable, match="labelled clips"):
            get_registry().metric("video", name).compute(ctx)


def test_frame_fid_looks_the_image_metric_up_in_the_registry(monkeypatch: pytest.MonkeyPatch):
    from cgan_core.plugins import reset_registry

    monkeypatch.setenv("CGAN_DISABLE_PLUGINS", "image")
    reset_registry()
    clips = torch.rand(6, 1, 4, 32, 32) * 2 - 1
    ctx = EvalContext("video", clips, clips, real_labels=torch.arange(6), data_info={"num_classes": 6})
    with pytest.raises(UsageError, match="unknown metric 'fid@classifier' for modality 'image'"):
        get_registry().metric("video", "frame-fid@classifier").compute(ctx)


class _FakeI3D(torch.nn.Module):
    """Stands in for the Kinetics I3D TorchScript file: same call, 400-d features."""

    def __init__(self) -> None:
        super().__init__()
        self.project = torch.nn.Linear(3 * 4, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if bool(x.min() < 0) or bool(x.max() > 255) or x.shape[1] != 3 or not rescale or not resize:
            raise ValueError("expected RGB in [0, 255] with rescale=True, resize=True")
        pooled = torch.nn.functional.adaptive_avg_pool3d(x / 127.5 - 1.0, (4, 1, 1)).flatten(1)
        return self.project(pooled)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_fvd_i3d_uses_a_local_torchscript_file_or_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import hashlib

    monkeypatch.setenv("CGAN_OFFLINE", "1")
    monkeypatch.delenv("CGAN_I3D_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(12, 1, 8, 16, 16, generator=generator) * 2 - 1
    fake = torch.rand(12, 1, 8, 16, 16, generator=generator) * 0.5
    metric = get_registry().metric("video", "fvd@i3d")
    with pytest.raises(UsageError, match="i3d.weights=PATH"):
        metric.compute(EvalContext("video", real, fake, cache_dir=tmp_path / "cache"))
    torch.manual_seed(0)
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_FakeI3D()).save(str(path))
    ctx = EvalContext("video", real, real.clone(), options={"i3d.weights": str(path)})
    assert metric.compute(ctx)["fvd@i3d"] == pytest.approx(0.0, abs=1e-6)
    assert ctx.provenance["fvd@i3d"]["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ctx.provenance["fvd@i3d"]["feature_dim"] == 400
    far = metric.compute(EvalContext("video", real, fake, options={"i3d.weights": str(path)}))["fvd@i3d"]
    assert far > 0.01
    with pytest.raises(UsageError, match="does not exist"):
        metric.compute(EvalContext("video", real, fake, options={"i3d.weights": str(tmp_path / "missing.pt")}))
