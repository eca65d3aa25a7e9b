"""The video metrics: ``fvd@classifier``, ``fvd@i3d``, ``frame-fid@...`` and ``temporal-consistency``.

- ``fvd@classifier``: Fréchet distance between 128-d features of real and generated clips from
  a 3-D conv classifier cgan trains on the dataset's labels (offline; see
  :mod:`cgan_video.classifiers`).
- ``fvd@i3d``: the standard FVD with the Kinetics-400 I3D (see :mod:`cgan_video.i3d`).
- ``frame-fid@X``: the image metric ``fid@X`` on individual frames, looked up through the
  registry (the image plugin's extractors; never imported).
- ``temporal-consistency``: how much of what a per-frame classifier (trained on the dataset's
  labels) sees in a frame belongs to the clip it comes from: the mean inner product of the
  features of two frames of one clip minus that of frames of two different clips (features
  centred on their mean), divided by the feature variance of real frames. A digit that changes
  mid-clip lowers it, and so does content that drifts or flickers; output that is the same in
  every clip (an untrained or collapsed generator) or noise scores about 0. Real clips give
  the ``reference_value`` in its provenance, next to ``consensus_mass``: the probability mass
  frames put on their clip's consensus classes (a stricter reading: 0 until frames show
  recognisable classes). Higher is better.

This module stays light (it is imported when plugins register); torch is imported when a
metric is computed.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from cgan_core import MetricSpec

FRAME_FID_EXTRACTORS = ("classifier", "effnet-lite0", "inception")


def _clip_features(ctx: Any, model: Any, clips_attr: str) -> Any:
    """Clip-classifier features of ``ctx.real`` or ``ctx.fake`` as a float64 array."""
    from cgan_video.classifiers import as_clips, resize_frames, run_batched

    clips = as_clips(getattr(ctx, clips_attr))
    return run_batched(lambda batch: model.features(resize_frames(batch)), clips, ctx.device).double().numpy()


def compute_fvd_classifier(ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``fvd@classifier``."""
    from cgan_core import frechet_distance

    from cgan_video.classifiers import INPUT_SIDE, load_or_train

    model, sha, meta = ctx.memoized("video-clip-classifier", lambda: load_or_train(ctx, "clip"))
    preprocessing = f"frames resized to {INPUT_SIDE}x{INPUT_SIDE} (bilinear, antialiased), [-1,1] float32"
    parts = {"extractor": "video-clip-classifier", "weights_sha256": sha, "preprocessing": preprocessing}
    real = ctx.cached_features(parts, lambda: _clip_features(ctx, model, "real"))
    fake = ctx.memoized(f"video-fake-features:{sha}", lambda: _clip_features(ctx, model, "fake"))
    ctx.record("fvd@classifier", extractor="classifier", weights_sha256=sha, preprocessing=preprocessing,
               feature_dim=int(real.shape[1]), classifier_accuracy=meta["classifier_accuracy"],
               classifier_trained_on=meta["classifier_trained_on"], real=int(real.shape[0]), fake=int(fake.shape[0]))
    return {"fvd@classifier": frechet_distance(real, fake)}


def compute_fvd_i3d(ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``fvd@i3d`` (the standard FVD)."""
    from cgan_core import frechet_distance, sha256_file

    from cgan_video.classifiers import as_clips
    from cgan_video.i3d import PREPROCESSING, find_weights, i3d_features, load_i3d

    path = find_weights(ctx)
    sha = sha256_file(path)
    model = load_i3d(str(path), sha).to(ctx.device)
    parts = {"extractor": "i3d", "weights_sha256": sha, "preprocessing": PREPROCESSING}
    real = ctx.cached_features(parts, lambda: i3d_features(ctx, as_clips(ctx.real), model).double().numpy())
    fake = ctx.memoized(f"video-fake-i3d:{sha}", lambda: i3d_features(ctx, as_clips(ctx.fake), model).double().numpy())
    ctx.record("fvd@i3d", extractor="i3d", weights_sha256=sha, preprocessing=PREPROCESSING,
               feature_dim=int(real.shape[1]), real=int(real.shape[0]), fake=int(fake.shape[0]))
    return {"fvd@i3d": frechet_distance(real, fake)}


def _frames(clips: Any, per_clip: int) -> Any:
    """``(N, C, T, H, W)`` -> ``(N * k, C, H, W)``, k evenly spaced frames per clip (0 = all)."""
    import torch

    t = clips.shape[2]
    if per_clip and per_clip < t:
        clips = clips[:, :, torch.linspace(0, t - 1, per_clip).round().long()]
    return clips.transpose(1, 2).reshape(-1, clips.shape[1], *clips.shape[-2:])


def compute_frame_fid(extractor: str, ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``frame-fid@extractor``: the registry's image ``fid@extractor`` on frames."""
    from cgan_core import EvalContext, get_registry

    from cgan_video.classifiers import as_clips

    image_metric = get_registry().metric("image", f"fid@{extractor}")
    per_clip = int(ctx.option("frame-fid.frames_per_clip", 0))
    real, fake = as_clips(ctx.real), as_clips(ctx.fake)
    frames = real.shape[2] if not per_clip else min(per_clip, real.shape[2])
    labels = ctx.real_labels.long().repeat_interleave(frames) if ctx.real_labels is not None else None
    info = {
        "shape": [int(real.shape[1]), int(real.shape[3]), int(real.shape[4])],
        "channels": int(real.shape[1]), "resolution": int(real.shape[3]),
        "num_classes": ctx.data_info.get("num_classes"),
    }
    if ctx.data_info.get("class_names"):
        info["class_names"] = ctx.data_info["class_names"]
    image_ctx = EvalContext(
        modality="image", real=_frames(real, per_clip), fake=_frames(as_clips(fake), per_clip), real_labels=labels,
        data_info=info, config=ctx.config, device=ctx.device, seed=ctx.seed, cache_dir=ctx.cache_dir,
        dataset_key=f"{ctx.dataset_key}:frames:{per_clip}", options=dict(ctx.options),
    )
    values = image_metric.compute(image_ctx)
    name = f"frame-fid@{extractor}"
    ctx.record(name, **image_ctx.provenance.get(f"fid@{extractor}", {}), image_metric=f"fid@{extractor}",
               frames_per_clip=frames)
    return {name: float(values[f"fid@{extractor}"])}


def clip_identity_covariance(features: Any) -> float:
    """Mean inner product of two different frames of one clip minus that of frames of two clips.

    With features centred on their own mean this is the feature variance that belongs to the
    clip a frame comes from (what stays the same through a clip and differs between clips).

    Args:
        features: ``(N, T, D)`` per-frame features (float64), ``N >= 2`` and ``T >= 2``.
    """
    n, t, _ = features.shape
    features = features - features.mean(dim=(0, 1))
    clip_sums = features.sum(dim=1)  # (N, D)
    squares = (clip_sums * clip_sums).sum(dim=1)  # |sum_t f_it|^2 per clip
    frame_squares = (features * features).sum(dim=(1, 2))  # sum_t |f_it|^2 per clip
    within = float(((squares - frame_squares) / (t * (t - 1))).mean())  # pairs t != t' of a clip
    total = clip_sums.sum(dim=0)
    between = (float(total @ total) - float(squares.sum())) / (t * t * n * (n - 1))
    return within - between


def compute_temporal_consistency(ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``temporal-consistency`` (see the module docstring)."""
    import torch

    from cgan_core import MetricUnavailable

    from cgan_video.classifiers import INPUT_SIDE, as_clips, load_or_train, resize_frames, run_batched

    model, sha, meta = ctx.memoized("video-frame-classifier", lambda: load_or_train(ctx, "frame"))
    per_clip = int(meta["classes_per_clip"])

    def frame_outputs(samples: Any) -> tuple[Any, Any]:
        clips = as_clips(samples)
        n, c, t = clips.shape[:3]

        def run(batch: Any) -> Any:
            frames = resize_frames(batch).transpose(1, 2).reshape(-1, c, INPUT_SIDE, INPUT_SIDE)
            features = model.features(frames)
            probabilities = model.head(features).softmax(dim=1)
            return torch.cat([features, probabilities], dim=1).view(batch.shape[0], t, -1)

        out = run_batched(run, clips, ctx.device, batch_size=32)
        classes = int(meta["classes"]) + 1  # the last one is "nothing"
        return out[..., :-classes].double(), out[..., -classes:-1].double()

    real_features, real_probs = ctx.memoized(f"video-tc-real:{sha}", lambda: frame_outputs(ctx.real))
    fake_features, fake_probs = frame_outputs(ctx.fake)
    if fake_features.shape[0] < 2 or fake_features.shape[1] < 2:
        raise MetricUnavailable("temporal-consistency needs at least 2 clips of at least 2 frames")
    # The scale comes from the real frames, so variations too small to matter score near 0.
    scale = float(((real_features - real_features.mean(dim=(0, 1))) ** 2).sum(dim=2).mean())

    def consistency(features: Any) -> float:
        return clip_identity_covariance(features) / max(scale, 1e-12)

    def consensus_mass(probs: Any) -> float:
        consensus = probs.mean(dim=1).topk(per_clip, dim=1).indices  # (N, k)
        chosen = probs.gather(2, consensus.unsqueeze(1).expand(-1, probs.shape[1], -1))
        return float(chosen.sum(dim=2).mean())

    value = consistency(fake_features)
    ctx.record("temporal-consistency", extractor="frame-classifier", weights_sha256=sha,
               preprocessing=f"frames resized to {INPUT_SIDE}x{INPUT_SIDE}, [-1,1] float32; 128-d frame "
                             "features, scaled by the reference frames' feature variance",
               classifier_accuracy=meta["classifier_accuracy"], classifier_trained_on=meta["classifier_trained_on"],
               reference_value=consistency(real_features), consensus_mass=consensus_mass(fake_probs),
               reference_consensus_mass=consensus_mass(real_probs), classes_per_clip=per_clip)
    return {"temporal-consistency": value}


def video_metric_specs() -> list[MetricSpec]:
    """Every video metric."""
    specs = [
        MetricSpec("fvd@classifier", "video", compute_fvd_classifier, higher_is_better=False, extractor="classifier",
                   description="Fréchet video distance on features of a 3-D conv classifier cgan trains on the "
                               "dataset's labels (offline)"),
        MetricSpec("fvd@i3d", "video", compute_fvd_i3d, higher_is_better=False, extractor="i3d",
                   description="standard FVD: Kinetics-400 I3D TorchScript features (needs its file or a download)"),
        MetricSpec("temporal-consistency", "video", compute_temporal_consistency, higher_is_better=True,
                   extractor="frame-classifier",
                   description="clip-identity share of per-frame classifier feature variance (0 for collapsed "
                               "output or noise; real clips give the reference value)"),
    ]
    for extractor in FRAME_FID_EXTRACTORS:
        compute: Callable[[Any], dict[str, float]] = partial(compute_frame_fid, extractor)
        specs.append(MetricSpec(
            f"frame-fid@{extractor}", "video", compute, higher_is_better=False, extractor=extractor,
            description=f"the image metric fid@{extractor} on individual frames (through the registry)",
        ))
    return specs
