"""The audio metrics: ``fad@logmel``, ``fad@classifier`` and ``classifier-score``.

The maths (Fréchet distance, the Inception-Score-style score) is the core's; this module turns
clips into features. Reference features are cached on disk through the context, generated ones
are computed once per evaluation, and each number records how its features were made.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cgan_core import EvalContext, classifier_score, frechet_distance

from cgan_audio.classifier import load_or_train
from cgan_audio.features import MelSettings, logmel, logmel_statistics


def _waves(samples: Any, what: str) -> torch.Tensor:
    if not isinstance(samples, torch.Tensor) or samples.dim() != 3 or samples.shape[1] != 1:
        shape = tuple(samples.shape) if hasattr(samples, "shape") else type(samples).__name__
        raise ValueError(f"audio metrics need {what} clips shaped (N, 1, L), got {shape}")
    return samples


def mel_settings(ctx: EvalContext) -> MelSettings:
    """Mel settings for the run's clips (rate and length from the dataset facts, else the samples)."""
    length = int(ctx.data_info.get("length") or _waves(ctx.real, "reference").shape[-1])
    return MelSettings.for_clips(int(ctx.data_info.get("sample_rate", 16000)), length)


def fad_logmel(ctx: EvalContext) -> dict[str, float]:
    """``MetricSpec.compute`` of ``fad@logmel``: Fréchet distance of per-clip log-mel band statistics."""
    settings = mel_settings(ctx)
    preprocessing = settings.describe() + "; per clip: mean and std over time of each band"
    real = ctx.cached_features({"extractor": "logmel", "preprocessing": preprocessing},
                               lambda: logmel_statistics(logmel(_waves(ctx.real, "reference"), settings, ctx.device)))
    fake = ctx.memoized(f"audio-logmel-fake:{preprocessing}",
                        lambda: logmel_statistics(logmel(_waves(ctx.fake, "generated"), settings, ctx.device)))
    ctx.record("fad@logmel", extractor="logmel", weights_sha256=settings.filterbank_sha256(),
               preprocessing=preprocessing, feature_dim=int(real.shape[1]))
    return {"fad@logmel": frechet_distance(real, fake)}


class _ClassifierFeatures:
    """The trained classifier with its provenance, built once per evaluation."""

    def __init__(self, ctx: EvalContext) -> None:
        self.settings = mel_settings(ctx)
        self.model, self.weights_sha256, self.meta = load_or_train(ctx, self.settings)
        self.model = self.model.to(ctx.device).eval()
        self.device = ctx.device
        self.preprocessing = self.settings.describe()

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "classifier", "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing,
                "classifier_accuracy": self.meta.get("classifier_accuracy"),
                "classifier_trained_on": self.meta.get("classifier_trained_on")}

    @torch.no_grad()
    def run(self, waves: torch.Tensor, probabilities: bool = False) -> np.ndarray:
        outputs = []
        for start in range(0, waves.shape[0], 256):
            spectrograms = logmel(waves[start : start + 256], self.settings, self.device).to(self.device)
            features = self.model.features(spectrograms)
            outputs.append((torch.softmax(self.model.head(features), dim=1) if probabilities else features).cpu())
        return torch.cat(outputs).double().numpy()


def _classifier(ctx: EvalContext) -> _ClassifierFeatures:
    return ctx.memoized("audio-classifier", lambda: _ClassifierFeatures(ctx))


def fad_classifier(ctx: EvalContext) -> dict[str, float]:
    """``MetricSpec.compute`` of ``fad@classifier``: Fréchet distance of the classifier's 128-d features."""
    extractor = _classifier(ctx)
    parts = {"extractor": "classifier", "weights_sha256": extractor.weights_sha256,
             "preprocessing": extractor.preprocessing}
    real = ctx.cached_features(parts, lambda: extractor.run(_waves(ctx.real, "reference")))
    fake = ctx.memoized(f"audio-classifier-fake:{extractor.weights_sha256}",
                        lambda: extractor.run(_waves(ctx.fake, "generated")))
    ctx.record("fad@classifier", **extractor.provenance(), feature_dim=int(real.shape[1]))
    return {"fad@classifier": frechet_distance(real, fake)}


def classifier_score_metric(ctx: EvalContext) -> dict[str, float]:
    """``MetricSpec.compute`` of ``classifier-score``: exp(E KL(p(y|x) || p(y))) over generated clips."""
    extractor = _classifier(ctx)
    probabilities = ctx.memoized(f"audio-classifier-probabilities:{extractor.weights_sha256}",
                                 lambda: extractor.run(_waves(ctx.fake, "generated"), probabilities=True))
    splits = min(int(ctx.option("classifier-score.splits", 10)), len(probabilities))
    # Splits must be random subsets: a set ordered by class (a real set, folder by folder) would
    # otherwise give each split a single class and a score near 1.
    order = np.random.default_rng(ctx.seed).permutation(len(probabilities))
    mean, std = classifier_score(probabilities[order], splits=splits)
    ctx.record("classifier-score", **extractor.provenance(), std=std, splits=splits,
               classes=int(probabilities.shape[1]))
    return {"classifier-score": mean}
