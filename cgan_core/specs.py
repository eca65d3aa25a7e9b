"""Plain dataclasses that plugins register through the hooks in :mod:`cgan_core.hookspecs`.

A spec says *what* a component is and how to build it; the core decides *when* to call it.
Every field a plugin may leave out has a default, so adding a field later breaks no plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only; keeps `cgan --help` free of torch
    import torch

    from cgan_core.data import LoadedData
    from cgan_core.model import GANModel


@dataclass
class DataRequest:
    """What the core asks a modality or dataset loader for.

    Attributes:
        source: A dataset name or a path/URL given with ``--dataset``.
        config: The resolved ``data`` config section (the modality's data config dataclass).
        strict: ``--strict-data``: fail on the first bad item instead of skipping it.
        split: ``"train"`` for training, ``"reference"`` for evaluation reference sets.
        cache_dir: A directory the loader may use to cache decoded or downloaded data.
    """

    source: str
    config: Any
    strict: bool = False
    split: str = "train"
    cache_dir: Optional[Path] = None


@dataclass
class SampleInfo:
    """Provenance handed to a modality writer for each batch of samples."""

    seed: Optional[int] = None
    start_index: int = 0
    run: Optional[str] = None
    checkpoint: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModalitySpec:
    """A kind of content (image, text, video, ...).

    Attributes:
        name: Registry name, e.g. ``"image"``.
        data_config: Dataclass type of this modality's ``data`` config section.
        open_source: ``open_source(request) -> LoadedData`` for a path or URL source.
        write_samples: ``write_samples(samples, out_dir, info, data_info) -> list[Path]``
            turns a batch in the modality's tensor format into content files.
        write_preview: ``write_preview(samples, path, data_info) -> Path`` writes one preview
            file (a grid PNG for images, a text file for text, a strip PNG for video).
        log_preview: Optional ``log_preview(writer, tag, samples, step, data_info)`` for
            TensorBoard (``writer`` is a ``SummaryWriter``).
        default_dataset: Dataset name used when ``--dataset`` is not given.
        default_metrics: Metric names that ``cgan evaluate`` computes by default.
        default_eval_samples: How many samples ``cgan evaluate`` generates by default.
        content_formats: File formats the writer can produce, the first being the default.
        description: One line for ``cgan list modalities``.
        conformance: Settings for the conformance kit (:mod:`cgan_core.testing`): dotted
            ``data.*`` overrides, and ``roundtrip_atol`` (a float): when given, content written
            by ``write_samples`` is read back with ``open_source`` and must equal the samples
            within this tolerance.
    """

    name: str
    data_config: type
    open_source: Callable[[DataRequest], "LoadedData"]
    write_samples: Callable[..., list[Path]]
    write_preview: Callable[..., Path]
    log_preview: Optional[Callable[..., None]] = None
    default_dataset: Optional[str] = None
    default_metrics: Sequence[str] = ()
    default_eval_samples: int = 1000
    content_formats: Sequence[str] = ()
    description: str = ""
    conformance: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ModelSpec:
    """A GAN architecture for one modality.

    Attributes:
        name: Registry name, used as ``--plugin NAME``.
        modality: Name of the modality it generates.
        config: Dataclass type of the ``model`` config section.
        build: ``build(config, data_info) -> GANModel``; ``config`` is the whole resolved run
            config (a :class:`cgan_core.config.RunConfig`), ``data_info`` what the dataset said
            about itself (shape, vocabulary size, ...).
        train_defaults: Overrides of the core ``train`` section defaults (learning rates, loss,
            steps) applied before a YAML file and ``--set``.
        data_defaults: Overrides of the modality's ``data`` section defaults (e.g. resolution).
        extra_sections: Further config sections the model owns, name -> dataclass type
            (SeqGAN's ``phases``).
        description: One line for ``cgan list models``.
        conformance: Settings for the conformance kit (:mod:`cgan_core.testing`): dotted
            config overrides (``{"model.base_channels": 8}``) that make the model tiny, and the
            optional kit keys ``dataset`` (dataset to train on; default: the modality's default)
            and ``steps`` (training steps per phase; default 2).
    """

    name: str
    modality: str
    config: type
    build: Callable[[Any, Mapping[str, Any]], "GANModel"]
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    data_defaults: Mapping[str, Any] = field(default_factory=dict)
    extra_sections: Mapping[str, type] = field(default_factory=dict)
    description: str = ""
    conformance: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class DatasetSpec:
    """A named dataset (bundled, installed, generated or downloadable).

    Attributes:
        name: Registry name, used as ``--dataset NAME``.
        modality: Modality the dataset belongs to.
        load: ``load(request) -> LoadedData``.
        data_defaults: Overrides of the modality's ``data`` defaults this dataset needs.
        description: One line for ``cgan list datasets``.
        conformance: Dotted ``data.*`` overrides that select the dataset's tiny variant for the
            conformance kit (:mod:`cgan_core.testing`), e.g. ``{"data.max_items": 64}``.
    """

    name: str
    modality: str
    load: Callable[[DataRequest], "LoadedData"]
    data_defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    conformance: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LossSpec:
    """A generator/discriminator loss pair, with optional penalties on the discriminator.

    ``discriminator_loss(real_logits, fake_logits)`` and ``generator_loss(fake_logits)`` return
    scalar tensors. ``penalty`` (optional) is ``penalty(discriminator, real, fake) -> tensor``
    added to the discriminator loss, weighted by ``train.penalty_weight``. A relativistic loss,
    whose generator side compares with the critic's scores of real data, sets
    ``generator_needs_real=True`` and is then called as ``generator_loss(fake_logits,
    real_logits)`` (real logits computed without gradients into the discriminator).
    """

    name: str
    discriminator_loss: Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
    generator_loss: Callable[..., "torch.Tensor"]
    penalty: Optional[Callable[..., "torch.Tensor"]] = None
    default_penalty_weight: float = 0.0
    description: str = ""
    generator_needs_real: bool = False


@dataclass
class MetricSpec:
    """An evaluation metric for one modality.

    Attributes:
        name: Registry name including the feature extractor, e.g. ``"fid@effnet-lite0"``.
        modality: Modality the metric applies to.
        compute: ``compute(context) -> dict[str, float]`` where ``context`` is a
            :class:`cgan_core.metrics.EvalContext`; the returned keys are reported metric names.
        higher_is_better: Direction, for ``best`` checkpoints and comparisons.
        extractor: Name of the feature extractor (part of the provenance).
        description: One line for ``cgan list metrics``.
    """

    name: str
    modality: str
    compute: Callable[[Any], Mapping[str, float]]
    higher_is_better: bool = False
    extractor: Optional[str] = None
    description: str = ""
