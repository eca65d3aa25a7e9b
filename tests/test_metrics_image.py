"""Image metrics: the extractors (effnet-lite0, classifier, inception) and the registered MetricSpecs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from cgan_core import EvalContext, MetricUnavailable, UsageError
from cgan_core.evaluation import default_cache_dir
from cgan_core.plugins import get_registry


def digits(n: int = 0, resolution: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    from cgan_image.preprocess import prepare_images

    bunch = load_digits()
    images = prepare_images(bunch.images.astype(np.float32) / 16.0, resolution, 1, "center")
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    return (images[:n], labels[:n]) if n else (images, labels)


def digits_loaded():
    """Digits as the image plugin's loader returns them (same tensors, same fingerprint)."""
    from cgan_core import LoadedData, TensorData, tensor_fingerprint

    images, labels = digits()
    return LoadedData(TensorData(images), {"num_classes": 10}, labels, source="digits",
                      fingerprint=tensor_fingerprint(images))


def context(real: torch.Tensor, fake: torch.Tensor, tmp_path: Path, **kwargs) -> EvalContext:
    return EvalContext(modality="image", real=real, fake=fake, cache_dir=tmp_path, dataset_key="test", **kwargs)


# --- effnet-lite0 -------------------------------------------------------------------------------
def test_effnet_weights_load_into_timm_and_recognise_a_photo():
    """The converted package weights are the real ImageNet ones: sklearn's flower photo is a daisy."""
    import timm
    from sklearn.datasets import load_sample_images

    from cgan_image.features import sha256_of
    from cgan_image.features_effnet import ARCHITECTURE, load_effnet_lite0, weights_path

    path = weights_path()
    features = load_effnet_lite0(str(path), sha256_of(path))
    classifier_model = timm.create_model(ARCHITECTURE, pretrained=False)
    state = {f"classifier.{k}": v for k, v in _fc_weights(path).items()}
    state.update(features.state_dict())
    classifier_model.load_state_dict(state, strict=True)
    flower = torch.tensor(load_sample_images().images[1]).permute(2, 0, 1).float() / 127.5 - 1.0
    flower = torch.nn.functional.interpolate(flower[None], size=(224, 224), mode="bilinear", antialias=True)
    with torch.inference_mode():
        top5 = classifier_model.eval()(flower).topk(5).indices[0].tolist()
    daisy = 985  # ImageNet class index of "daisy"
    assert daisy in top5


def _fc_weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {"weight": state["_fc.weight"], "bias": state["_fc.bias"]}


def test_effnet_extractor_features_and_provenance(tmp_path):
    from cgan_image.features import load_extractor
    from cgan_image.features_effnet import weights_path

    images, _ = digits(6)
    ctx = context(images, images, tmp_path, options={"effnet-lite0.image_size": 64})
    extractor = load_extractor("effnet-lite0", ctx)
    features = extractor.features(images, torch.device("cpu"))
    assert features.shape == (6, 1280) and features.dtype == np.float64
    np.testing.assert_allclose(extractor.features(images, torch.device("cpu")), features, rtol=1e-6, atol=1e-6)
    expected_sha = hashlib.sha256(weights_path().read_bytes()).hexdigest()
    assert extractor.provenance()["weights_sha256"] == expected_sha
    assert "64x64" in extractor.provenance()["preprocessing"]
    with pytest.raises(UsageError, match="image_size"):
        load_extractor("effnet-lite0", context(images, images, tmp_path, options={"effnet-lite0.image_size": 8}))


# --- classifier ---------------------------------------------------------------------------------
def test_classifier_trains_caches_and_leaves_global_rng_alone(tmp_path):
    from cgan_image.classifier import load_or_train

    images, labels = digits()
    short = {"classifier.max_steps": 60}  # a short recipe: this test is about training and caching
    ctx = context(images, images, tmp_path, real_labels=labels, data_info={"num_classes": 10}, options=short)
    before = torch.get_rng_state().clone()
    model, sha, meta = load_or_train(ctx)
    assert torch.equal(torch.get_rng_state(), before)
    assert meta["classifier_accuracy"] >= 0.8  # held-out digits after 60 steps
    files = list((tmp_path / "classifiers").glob("*.safetensors"))
    assert len(files) == 1 and hashlib.sha256(files[0].read_bytes()).hexdigest() == sha
    mtime = files[0].stat().st_mtime_ns
    again, sha_again, _ = load_or_train(context(images, images, tmp_path, real_labels=labels, options=short))
    assert sha_again == sha and files[0].stat().st_mtime_ns == mtime  # loaded, not retrained
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name])


def test_classifier_metrics_need_labels(tmp_path):
    images, _ = digits(40)
    spec = get_registry().metric("image", "fid@classifier")
    with pytest.raises(MetricUnavailable, match="labelled images"):
        spec.compute(context(images, images, tmp_path))


# --- inception ----------------------------------------------------------------------------------
def test_inception_without_weights_offline_is_one_clear_error(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    monkeypatch.delenv("CGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(fidelity, "URL_INCEPTION_V3", "http://127.0.0.1:9/weights-inception.pth")
    images, _ = digits(4)
    spec = get_registry().metric("image", "fid@inception")
    with pytest.raises(UsageError, match="could not be downloaded.*--option inception.weights=PATH"):
        spec.compute(context(images, images, tmp_path))
    with pytest.raises(UsageError, match="does not exist"):
        spec.compute(context(images, images, tmp_path, options={"inception.weights": str(tmp_path / "none.pth")}))


def test_inception_loads_a_local_weights_file(tmp_path, monkeypatch):
    """The loading path with a weights file of the right layout (random values: nothing is downloaded)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    from cgan_image.features import load_extractor

    with monkeypatch.context() as patch:
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        layout = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / "inception.pth"
    torch.save(layout.state_dict(), path)
    images, _ = digits(2)
    ctx = context(images, images, tmp_path, options={"inception.weights": str(path)})
    extractor = load_extractor("inception", ctx)
    features = extractor.features(images, torch.device("cpu"))
    assert features.shape == (2, 2048) and np.isfinite(features).all()
    assert extractor.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "299" in extractor.preprocessing
    pickled = tmp_path / "code.pth"
    torch.save({"not": object.__new__(_Arbitrary)}, pickled)
    with pytest.raises(UsageError, match="not a plain Inception-v3 state dict"):
        load_extractor("inception", context(images, images, tmp_path, options={"inception.weights": str(pickled)}))


class _Arbitrary:
    """A class a weights file must not be able to make us instantiate."""


# --- registered specs ---------------------------------------------------------------------------
def test_image_metrics_are_registered_with_extractor_in_the_name():
    registry = get_registry()
    names = set(registry.metrics("image"))
    for extractor in ("effnet-lite0", "classifier", "inception"):
        for metric in ("fid", "kid", "precision", "recall", "density", "coverage"):
            spec = registry.metric("image", f"{metric}@{extractor}")
            assert spec.extractor == extractor
            assert spec.higher_is_better == (metric in ("precision", "recall", "density", "coverage"))
    assert "classifier-score" in names and registry.metric("image", "classifier-score").higher_is_better
    assert set(registry.modality("image").default_metrics) <= names
    with pytest.raises(UsageError, match="unknown metric 'fid@resnet'.*valid: .*fid@effnet-lite0"):
        registry.metric("image", "fid@resnet")


def test_classifier_metrics_on_digits_separate_real_from_noise():
    """Through the registered specs: real-vs-real beats real-vs-blobs on every classifier metric."""
    registry = get_registry()
    images, labels = digits()
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(images), generator=generator)
    half_a, half_b = images[order[:400]], images[order[400:800]]
    blobs = torch.nn.functional.avg_pool2d(torch.rand(400, 1, 32, 32, generator=generator) * 2 - 1, 5, 1, 2)
    scores = {}
    for label, fake in (("real", half_b), ("blobs", blobs)):
        # The classifier learns from the whole labelled set (as from a run's training split) and is
        # cached in the session's cache, which the evaluation tests share.
        ctx = EvalContext(modality="image", real=half_a, fake=fake, data_info={"num_classes": 10},
                          cache_dir=default_cache_dir(), dataset_key="digits-half-a", options={"kid.subsets": 10},
                          load_split=lambda split: digits_loaded())
        scores[label] = {}
        for name in ("fid@classifier", "kid@classifier", "precision@classifier", "recall@classifier",
                     "density@classifier", "coverage@classifier", "classifier-score"):
            scores[label].update(registry.metric("image", name).compute(ctx))
        assert ctx.provenance["fid@classifier"]["extractor"] == "classifier"
        assert ctx.provenance["kid@classifier"]["std"] >= 0
    real, blobs_ = scores["real"], scores["blobs"]
    assert real["fid@classifier"] < blobs_["fid@classifier"] / 5
    assert real["kid@classifier"] < blobs_["kid@classifier"] / 5
    for name in ("precision@classifier", "recall@classifier", "coverage@classifier"):
        assert real[name] > 0.6 > blobs_[name], name
    assert real["classifier-score"] > 5 > blobs_["classifier-score"]
