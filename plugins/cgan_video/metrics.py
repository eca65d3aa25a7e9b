"""The video metrics: ``fvd@classifier``, ``fvd@i3d``, ``frame-fid@...`` and ``temporal-consistency``.

- ``fvd@classifier``: Fréchet distance between 128-d features of real and generated clips from
  a 3-D conv classifier cgan trains on the dataset's labels (offline; see
  :mod:`cgan_video.classifiers`).
- ``fvd@i3d``: the standard FVD with the Kinetics-400 I3D (see :mod:`cgan_video.i3d`).
- ``frame-fid@X``: the image metric ``fid@X`` on individual frames, looked up through the
  registry (the image plugin's extractors; never imported).
- ``temporal-consistency``: for each generated clip, the probability mass the per-frame
  classifier puts on the clip's consensus classes (the top classes of the clip's mean
  prediction; for moving-digits, its one or two digits), averaged over frames and clips. Content that changes identity mid-clip, or
  frames in which nothing recognisable is drawn, lower it; real moving-digits clips score
  close to 1. Higher is better.

This module stays light (it is imported when plugins register); torch is imported when a
metric is computed.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from cgan_core import MetricSpec

FRAME_FID_EXTRACTORS = ("classifier", "effnet-lite0", "inception")


def _clip_features(ctx: Any, model: Any, sha: str, clips_attr: str) -> Any:
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
    real = ctx.cached_features(parts, lambda: _clip_features(ctx, model, sha, "real"))
    fake = ctx.memoized(f"video-fake-features:{sha}", lambda: _clip_features(ctx, model, sha, "fake"))
    ctx.record("fvd@classifier", extractor="classifier", weights_sha256=sha, preprocessing=preprocessing,
               feature_dim=int(real.shape[1]), classifier_accuracy=meta["classifier_accuracy"],
               classifier_trained_on=meta["classifier_trained_on"], real=int(real.shape[0]), fake=int(fake.shape[0]))
    return {"fvd@classifier": frechet_distance(real, fake)}


def compute_fvd_i3d(ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``fvd@i3d`` (the standard FVD)."""
    from cgan_core import frechet_distance

    from cgan_video.classifiers import as_clips
    from cgan_video.i3d import PREPROCESSING, find_weights, i3d_features, load_i3d, sha256_of

    path = find_weights(ctx)
    sha = sha256_of(path)
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


def compute_temporal_consistency(ctx: Any) -> dict[str, float]:
    """``MetricSpec.compute`` of ``temporal-consistency`` (see the module docstring)."""
    from cgan_video.classifiers import INPUT_SIDE, as_clips, load_or_train, resize_frames, run_batched

    model, sha, meta = ctx.memoized("video-frame-classifier", lambda: load_or_train(ctx, "frame"))
    per_clip = int(meta["classes_per_clip"])

    def score(samples: Any) -> tuple[float, float]:
        clips = as_clips(samples)
        n, c, t = clips.shape[:3]

        def probabilities(batch: Any) -> Any:
            frames = resize_frames(batch).transpose(1, 2).reshape(-1, c, INPUT_SIDE, INPUT_SIDE)
            return model(frames).softmax(dim=1).view(batch.shape[0], t, -1)

        probs = run_batched(probabilities, clips, ctx.device, batch_size=32)[..., :-1]  # (N, T, K), "nothing" dropped
        consensus = probs.mean(dim=1).topk(per_clip, dim=1).indices  # (N, k)
        chosen = probs.gather(2, consensus.unsqueeze(1).expand(-1, t, -1))  # (N, T, k)
        frame_agreement = chosen.sum(dim=2)  # probability mass a frame puts on the clip's consensus set
        top = probs.topk(per_clip, dim=2).indices.sort(dim=2).values
        same_set = (top == consensus.sort(dim=1).values.unsqueeze(1)).all(dim=2).float()
        return float(frame_agreement.mean()), float(same_set.mean())

    value, agreement = score(ctx.fake)
    real_value, _ = ctx.memoized(f"video-tc-real:{sha}", lambda: score(ctx.real))
    ctx.record("temporal-consistency", extractor="frame-classifier", weights_sha256=sha,
               preprocessing=f"frames resized to {INPUT_SIDE}x{INPUT_SIDE}, [-1,1] float32",
               classifier_accuracy=meta["classifier_accuracy"], classifier_trained_on=meta["classifier_trained_on"],
               top_set_agreement=agreement, reference_value=real_value, classes_per_clip=per_clip)
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
                   description="per-frame classifier's agreement with each clip's consensus classes (0..1)"),
    ]
    for extractor in FRAME_FID_EXTRACTORS:
        compute: Callable[[Any], dict[str, float]] = partial(compute_frame_fid, extractor)
        specs.append(MetricSpec(
            f"frame-fid@{extractor}", "video", compute, higher_is_better=False, extractor=extractor,
            description=f"the image metric fid@{extractor} on individual frames (through the registry)",
        ))
    return specs
