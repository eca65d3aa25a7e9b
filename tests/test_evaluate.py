"""``cgan evaluate`` and the evaluation runner on a real (short) digits DCGAN run.

The "Done when" of the evaluation issue: on digits, real-vs-real (two disjoint halves) scores
better than a trained DCGAN, which scores better than an untrained one, for ``fid@classifier``
and ``fid@effnet-lite0``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cgan_core.cli import build_app
from cgan_core.evaluation import (
    ReferenceSet,
    default_cache_dir,
    evaluate_model,
    evaluate_samples,
    reference_from_loaded,
)
from cgan_core.runs import RunDir
from cgan_core.session import build_model, load_data, load_run, resolve_from_run

# A DCGAN that learns digit-like shapes in a few hundred CPU steps; every setting that shapes the
# result is pinned here, so changes of the model's defaults do not change this test.
TRAIN = ["run", "--modality", "image", "--plugin", "dcgan", "--dataset", "digits", "--seed", "0", "--no-progress",
         "--max-steps", "300", "--set", "model.base_channels=16", "--set", "model.spectral_norm=true",
         "--set", "model.latent_dim=100", "--set", "train.batch_size=64", "--set", "train.loss=bce",
         "--set", "train.lr_g=2e-4", "--set", "train.lr_d=2e-4", "--set", "train.ema_decay=0",
         "--set", "train.sample_every=0", "--set", "train.checkpoint_every=0", "--set", "train.tensorboard=false"]
PROVENANCE = {"metric", "value", "extractor", "weights_sha256", "n_real", "n_fake", "seed", "preprocessing",
              "cgan_version", "checkpoint", "higher_is_better"}


def invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "digits"
    started = time.perf_counter()
    result = invoke(*TRAIN, "--out", str(out))
    assert result.exit_code == 0, result.output
    print(f"training took {time.perf_counter() - started:.1f} s")
    return out


def test_real_halves_beat_trained_dcgan_beat_untrained(trained_run):
    """The issue's "Done when": real-vs-real < trained < untrained for fid@classifier and fid@effnet-lite0."""
    started = time.perf_counter()
    resolved = resolve_from_run(RunDir.open(trained_run))
    data = load_data(resolved)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    images = data.dataset.samples
    size = 500
    half_a, half_b = order[:size], order[size : 2 * size]
    assert not set(half_a.tolist()) & set(half_b.tolist())
    reference = ReferenceSet(images[half_a], data.labels[half_a], "digits-half-a", "digits, half A")
    metrics = ["fid@classifier", "fid@effnet-lite0"]
    # 64 px keeps EfficientNet fast on CPU; the size is part of the provenance.
    options = {"effnet-lite0.image_size": 64}
    common = dict(options=options, load_split=lambda split: data, cache_dir=default_cache_dir())

    real_vs_real = evaluate_samples("image", reference.samples, images[half_b], metrics, data_info=data.info,
                                    dataset_key=reference.key, **common).values()
    loaded = load_run(trained_run)
    trained = evaluate_model(loaded.model, resolved, data.info, reference, metrics,
                             sample_generator=loaded.sample_generator, n_samples=size, **common).values()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        untrained_model = build_model(resolved, data.info)
    untrained = evaluate_model(untrained_model, resolved, data.info, reference, metrics, n_samples=size,
                               **common).values()
    print(f"evaluation took {time.perf_counter() - started:.1f} s; real={real_vs_real} "
          f"trained={trained} untrained={untrained}")
    for metric in metrics:
        assert real_vs_real[metric] < trained[metric] < untrained[metric], metric


def test_evaluate_json_has_provenance_and_writes_eval_file(trained_run):
    args = ["evaluate", str(trained_run), "--metric", "fid@classifier,kid@classifier", "--metric",
            "precision@classifier", "--n-samples", "200", "--seed", "3", "--option", "kid.subsets=5", "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [m["metric"] for m in report["metrics"]] == ["fid@classifier", "kid@classifier", "precision@classifier"]
    for entry in report["metrics"]:
        assert PROVENANCE <= set(entry), PROVENANCE - set(entry)
        assert entry["n_fake"] == 200 and entry["n_real"] == 1797 and entry["seed"] == 3
        assert entry["checkpoint"] == "step-00000300" and entry["extractor"] == "classifier"
        assert len(entry["weights_sha256"]) == 64 and entry["preprocessing"]
    kid = report["metrics"][1]
    assert kid["higher_is_better"] is False and kid["details"]["subsets"] == 5 and kid["details"]["std"] >= 0
    assert report["metrics"][2]["higher_is_better"] is True and 0 <= report["metrics"][2]["value"] <= 1
    written = json.loads((trained_run / "eval" / "step-00000300.json").read_text())
    assert {m["metric"]: m["value"] for m in written["metrics"]} == {m["metric"]: m["value"] for m in report["metrics"]}

    again = json.loads(invoke(*args).stdout)  # the same seed gives the same numbers (reference features cached)
    assert [m["value"] for m in again["metrics"]] == [m["value"] for m in report["metrics"]]
    other_seed = json.loads(invoke(*[("4" if a == "3" else a) for a in args]).stdout)
    assert other_seed["metrics"][0]["value"] != report["metrics"][0]["value"]

    table = invoke("evaluate", str(trained_run), "--metric", "recall@classifier", "--n-samples", "200")
    assert table.exit_code == 0 and "recall@classifier" in table.stdout and "higher" in table.stdout
    written = json.loads((trained_run / "eval" / "step-00000300.json").read_text())
    assert {m["metric"] for m in written["metrics"]} >= {"fid@classifier", "recall@classifier"}  # merged


def test_evaluate_unknown_or_foreign_metric_is_a_clear_error(trained_run):
    from cgan_core.plugins import get_registry
    from cgan_core.specs import MetricSpec

    result = invoke("evaluate", str(trained_run), "--metric", "fid@nonet")
    assert result.exit_code == 2
    assert "unknown metric 'fid@nonet' for modality 'image'" in result.stderr and "fid@effnet-lite0" in result.stderr
    registry = get_registry()
    registry.tables["metrics"]["toy/toy-score"] = MetricSpec("toy-score", "toy", compute=lambda ctx: {"toy-score": 1.0})
    result = invoke("evaluate", str(trained_run), "--metric", "toy-score")
    assert result.exit_code == 2 and "(it exists for: toy)" in result.stderr
    assert "Traceback" not in result.output
    listing = invoke("evaluate", str(trained_run), "--list")
    assert listing.exit_code == 0 and "* fid@classifier" in listing.stdout and "  fid@inception" in listing.stdout


def test_unlabelled_reference_skips_default_classifier_metrics(trained_run, tmp_path):
    import numpy as np
    from sklearn.datasets import load_digits

    unlabelled = tmp_path / "digits.npy"
    np.save(unlabelled, load_digits().images[:300].astype(np.float32) / 16.0)
    base = ["evaluate", str(trained_run), "--reference", str(unlabelled), "--n-samples", "100"]
    explicit = invoke(*base, "--metric", "fid@classifier")
    # The classifier learns from the run's training split (digits has labels), so this works ...
    assert explicit.exit_code == 0, explicit.output
    # ... and with a run whose dataset has no labels it does not: use bare samples.
    report = evaluate_samples("image", torch.rand(60, 1, 32, 32) * 2 - 1, torch.rand(60, 1, 32, 32) * 2 - 1,
                              options={"effnet-lite0.image_size": 32})
    assert set(report.skipped) == {"fid@classifier", "kid@classifier", "precision@classifier",
                                   "recall@classifier", "classifier-score"}
    assert "labelled images" in report.skipped["fid@classifier"]
    assert report.values().keys() == {"fid@effnet-lite0"}
    with pytest.raises(Exception, match="labelled images"):
        evaluate_samples("image", torch.rand(60, 1, 32, 32), torch.rand(60, 1, 32, 32), ["fid@classifier"])


def test_reference_subset_is_seeded_and_disjoint_keys():
    from cgan_core import LoadedData, TensorData

    data = LoadedData(TensorData(torch.arange(40.0).view(40, 1)), {}, torch.arange(40) % 3, source="toy",
                      fingerprint="abc")
    a, b, c = reference_from_loaded(data, 10, seed=1), reference_from_loaded(data, 10, seed=1), \
        reference_from_loaded(data, 10, seed=2)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    assert a.key == b.key != c.key
    assert torch.equal(a.labels, a.samples.view(-1).long() % 3)  # labels follow their samples
    assert len(reference_from_loaded(data)) == 40


def test_runner_contract_for_any_metric():
    """Provenance per reported number, errors of misbehaving metrics, and untouched global RNGs."""
    import random

    import numpy as np

    from cgan_core import CganRuntimeError, UsageError
    from cgan_core.plugins import get_registry
    from cgan_core.specs import MetricSpec

    def pair(ctx):
        ctx.record("toy-a", extractor="toy-net", weights_sha256="ab" * 32, preprocessing="none", k=2)
        torch.rand(3), np.random.rand(), random.random()  # a metric may draw random numbers
        return {"toy-a": 1.5, "toy-b": 2}

    tables = get_registry().tables["metrics"]
    tables["image/toy-pair"] = MetricSpec("toy-pair", "image", compute=pair, higher_is_better=True)
    tables["image/toy-text"] = MetricSpec("toy-text", "image", compute=lambda ctx: {"toy-text": "high"})
    tables["image/toy-small"] = MetricSpec("toy-small", "image",
                                           compute=lambda ctx: (_ for _ in ()).throw(ValueError("need 5 samples")))
    real, fake = torch.zeros(4, 1, 8, 8), torch.ones(3, 1, 8, 8)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    report = evaluate_samples("image", real, fake, ["toy-pair"], seed=5, checkpoint="best", step=7, reference="toy")
    assert torch.equal(states[0], torch.get_rng_state()) and (states[1] == np.random.get_state()[1]).all()
    assert states[2] == random.getstate()
    a, b = report.result("toy-a"), report.result("toy-b")
    assert (a.value, a.extractor, a.weights_sha256, a.details) == (1.5, "toy-net", "ab" * 32, {"k": 2})
    assert (b.value, b.extractor, b.higher_is_better) == (2.0, None, True)
    assert (a.n_real, a.n_fake, a.seed, a.checkpoint, a.step, a.reference) == (4, 3, 5, "best", 7, "toy")
    with pytest.raises(CganRuntimeError, match="'toy-text' returned a non-number"):
        evaluate_samples("image", real, fake, ["toy-text"])
    with pytest.raises(UsageError, match="'toy-small' cannot be computed on these samples: need 5 samples"):
        evaluate_samples("image", real, fake, ["toy-small"])
