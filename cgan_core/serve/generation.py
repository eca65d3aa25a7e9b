"""Turning generate requests into content bytes: seeded noise per request, one generator call
per batch, the modality's writer for files.

Why batching keeps seeds reproducible: every request draws its latent noise from its own
``torch.Generator`` seeded with the request's seed, exactly as ``model.sample`` would; only the
deterministic ``generate`` step runs on the concatenated batch, in eval mode (batch norm uses
running statistics, so samples do not see each other). What can still differ is the last bit:
CPU kernels (oneDNN, matrix products) pick algorithms and thread splits by batch size. So the
server runs the generator only on batches of 1, 2, 4, ... rows (padding with copies of the last
row), and before serving it checks, for each of those sizes, that every row is bit-identical
to the same latent computed alone (:meth:`SampleRunner._probe`), first with oneDNN kernels,
then with PyTorch's native ones. A request's samples are then the same bytes whether it is
computed alone or inside any batch; a model that fails both probes is served one
``model.sample`` call per request.

Models whose sampling is not "latent noise, then a per-sample deterministic map" override
``GANModel.sample``; they are served one request per call (see :func:`supports_latent_batching`).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import torch

from cgan_core.specs import SampleInfo

MEDIA_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".mp4": "video/mp4", ".webm": "video/webm", ".wav": "audio/wav",
    ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
    ".txt": "text/plain; charset=utf-8", ".json": "application/json", ".jsonl": "application/x-ndjson",
    ".csv": "text/csv; charset=utf-8",
}
TEXT_MEDIA_TYPES = ("application/json", "application/x-ndjson")


def media_type_for(path: Union[str, Path]) -> str:
    """The HTTP media type of a content file, from its suffix."""
    suffix = Path(path).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


def is_text_media(media_type: str) -> bool:
    """Whether content of this media type is returned as a string rather than base64."""
    return media_type.startswith("text/") or media_type.split(";")[0] in TEXT_MEDIA_TYPES


@dataclass
class GenerationJob:
    """One generate request as the model worker sees it."""

    n: int
    seed: int
    fmt: Optional[str] = None


@dataclass
class ContentFile:
    """One content file produced by the modality's writer."""

    name: str
    media_type: str
    data: bytes
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()


@dataclass
class GenerationResult:
    """What one job produced, and how it was computed."""

    files: list[ContentFile]
    batch_requests: int = 1
    batch_samples: int = 0
    generate_ms: float = 0.0


@dataclass
class GeneratedSamples:
    """One job's samples as they came out of a (possibly shared) generator call."""

    samples: Any
    batch_requests: int
    batch_samples: int
    generate_ms: float

    def result(self, files: list[ContentFile]) -> GenerationResult:
        """The job's result once its samples are encoded as ``files``."""
        return GenerationResult(files, self.batch_requests, self.batch_samples, self.generate_ms)


def supports_latent_batching(model: Any) -> bool:
    """Whether requests for ``model`` may share one ``generate`` call.

    A model says so with ``batchable_sampling = True/False``; when it says nothing (``None``),
    batching is used only if it keeps ``GANModel.sample``'s "latent noise, then ``generate``"
    recipe, i.e. does not override ``sample``.
    """
    flag = getattr(model, "batchable_sampling", None)
    if flag is not None:
        return bool(flag)
    from cgan_core.model import GANModel

    return type(model).sample is GANModel.sample


KERNEL_MODES: dict[str, Optional[bool]] = {"onednn": True, "native": False}
"""CPU kernel choices tried by the batching probe, as values of ``torch.backends.mkldnn.enabled``."""

_generation_lock = threading.Lock()


@contextmanager
def kernel_mode(onednn: Optional[bool]) -> Iterator[None]:
    """Run generator calls one at a time in the process, with oneDNN on, off or as it is (``None``).

    The oneDNN switch is process-wide, so calls of models that need different settings must not
    overlap; one lock for every generator call keeps each call's kernels the ones it was probed with.
    """
    with _generation_lock:
        saved = torch.backends.mkldnn.enabled
        if onednn is not None:
            torch.backends.mkldnn.enabled = onednn
        try:
            yield
        finally:
            torch.backends.mkldnn.enabled = saved


def bucket_sizes(max_batch_size: int, step: int = 8) -> list[int]:
    """Batch sizes the generator runs on: 1, 2, 4, ... up to ``step``, then multiples of ``step``
    up to the first at least ``max_batch_size`` (``step=0``: powers of two all the way).

    A batch is padded up to the next size, so finer steps waste fewer rows.
    """
    largest = max(1, int(max_batch_size))
    sizes = [1]
    while sizes[-1] < largest:
        sizes.append(sizes[-1] + step if step and sizes[-1] >= step else sizes[-1] * 2)
    return sizes


def default_scratch_dir() -> Optional[str]:
    """``/dev/shm`` when usable (writers' files never touch a disk), else the system temp dir."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def seeded(seed: int) -> torch.Generator:
    """A CPU generator seeded like ``cgan generate --seed``."""
    return torch.Generator().manual_seed(int(seed))


class SampleRunner:
    """Generates and encodes content for lists of jobs with one loaded run.

    Args:
        loaded: A :class:`cgan_core.session.LoadedRun`.
        batching: Allow several jobs in one ``generate`` call (when the model supports it).
        max_batch_size: Most samples one batched call holds (sets the largest bucket size).
        scratch_dir: Where writers put files before they are read back (default: ``/dev/shm``).
    """

    def __init__(self, loaded: Any, batching: bool = True, max_batch_size: int = 64,
                 scratch_dir: Optional[str] = None) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.module = loaded.sample_generator
        self.modality = loaded.resolved.modality
        self.scratch_dir = scratch_dir or default_scratch_dir()
        self.buckets = bucket_sizes(max_batch_size)
        # latent_path: requests are computed as seeded sample_latent + generate on bucket-sized
        # batches, the recipe that may be batched; otherwise each request is a model.sample call.
        self.latent_path = False
        self.kernels: Optional[str] = None
        if not supports_latent_batching(self.model):
            note = "the model samples step by step (it overrides GANModel.sample); one call per request"
        else:
            self.latent_path, note = self._choose_kernels()
        self.batching = batching and self.latent_path
        if self.latent_path and not batching:
            note = f"turned off (--no-batching): one generate call per request, same computation ({self.kernels})"
        self.batching_reason = note

    # --- sampling ---------------------------------------------------------------------------
    def _latent(self, job: GenerationJob) -> Any:
        return self.model.sample_latent(job.n, generator=seeded(job.seed))

    @torch.inference_mode()
    def _generate_exact(self, latent: torch.Tensor) -> torch.Tensor:
        """One generator call on exactly these rows, with the chosen kernels."""
        self.module.eval()
        with kernel_mode(KERNEL_MODES.get(self.kernels or "")):
            return self.model.generate(latent, generator_module=self.module).cpu()

    def _generate(self, latent: torch.Tensor) -> torch.Tensor:
        """Generator output for ``latent``, computed only on probed bucket sizes.

        Rows are cut into chunks of the largest bucket; a chunk is padded up to the next bucket
        with copies of its last row, whose outputs are dropped.
        """
        outputs = []
        largest = self.buckets[-1]
        for start in range(0, latent.shape[0], largest):
            chunk = latent[start:start + largest]
            rows = chunk.shape[0]
            size = next(b for b in self.buckets if b >= rows)
            if size > rows:
                chunk = torch.cat([chunk, chunk[-1:].expand(size - rows, *chunk.shape[1:])])
            outputs.append(self._generate_exact(chunk)[:rows])
        return torch.cat(outputs)

    def _choose_kernels(self) -> tuple[bool, str]:
        """The first (kernels, smallest batch) whose probe passes, and what to say about it.

        Single rows are tried first; then batches of at least 2 rows, because some kernels (a
        dense layer's matrix-vector path) treat one row differently from several: a lone
        one-sample request is then padded to two rows.
        """
        if self.model.device.type != "cpu":
            modes = ["default"]  # CUDA and others: the device's kernels as they are
        elif torch.backends.mkldnn.is_available():
            modes = ["onednn", "native"]  # oneDNN is faster; PyTorch's own kernels vary less
        else:
            modes = ["native"]
        largest = self.buckets[-1]
        problem = ""
        for smallest in (1, 2):
            for mode in modes:
                for step in (8, 0):  # multiples of 8 waste fewer rows; powers of two vary less
                    self.kernels = mode
                    self.buckets = [size for size in bucket_sizes(largest, step) if size >= smallest]
                    passed, problem = self._probe()
                    if passed:
                        sizes = ",".join(map(str, self.buckets))
                        return True, (f"latents concatenated, generator run on batches of {sizes} rows "
                                      f"({mode} kernels); outputs are bit-identical to single requests")
        self.kernels = None
        self.buckets = bucket_sizes(largest)
        return False, f"{problem}; one model.sample call per request"

    def _probe(self) -> tuple[bool, str]:
        """Check that every bucket size gives each row the bits it gets alone.

        Latents of as many seeds as the largest bucket are generated one by one (padded to the
        smallest bucket), then the first 2, 4, ... of them together. A model whose kernels change
        their last bits with the batch size in every mode tried fails, and is then served by
        ``model.sample``, one request per call.
        """
        try:
            latents = [self._latent(GenerationJob(1, seed)) for seed in range(11, 11 + self.buckets[-1])]
            if not all(isinstance(latent, torch.Tensor) for latent in latents):
                return False, "the model's latent is not a tensor"
            alone = torch.cat([self._generate(latent) for latent in latents])
            for size in self.buckets:
                if size == 1:
                    continue
                together = self._generate_exact(torch.cat(latents[:size]))
                if together.shape != alone[:size].shape or not torch.equal(together, alone[:size]):
                    return False, f"samples depend on their batch companions in the last bits (probe, {size} rows)"
        except Exception as exc:  # a model that cannot batch is served request by request
            return False, f"batched generation failed in the probe ({type(exc).__name__}: {exc})"
        return True, ""

    def samples(self, jobs: list[GenerationJob]) -> list[torch.Tensor]:
        """Samples (modality tensor format, CPU) for each job, in one generator call."""
        if self.latent_path:
            latents = [self._latent(job) for job in jobs]
            output = self._generate(torch.cat(latents))
            return list(output.split([job.n for job in jobs]))
        results = []
        for job in jobs:
            with torch.inference_mode(), kernel_mode(None):
                results.append(self.model.sample(job.n, generator=seeded(job.seed), generator_module=self.module))
        return results

    # --- encoding ---------------------------------------------------------------------------
    def encode(self, samples: Any, job: GenerationJob) -> list[ContentFile]:
        """Content files for one job's samples, through the modality's ``write_samples``."""
        info = SampleInfo(seed=job.seed, start_index=0, run=str(self.loaded.run.path),
                          checkpoint=self.loaded.checkpoint)
        kwargs = {"fmt": job.fmt} if job.fmt else {}
        with tempfile.TemporaryDirectory(prefix="cgan-serve-", dir=self.scratch_dir) as scratch:
            paths = self.modality.write_samples(samples, Path(scratch), info, self.loaded.data_info, **kwargs)
            return [ContentFile(Path(p).name, media_type_for(p), Path(p).read_bytes()) for p in paths]

    def generate(self, jobs: list[GenerationJob]) -> list[GeneratedSamples]:
        """The samples of every job, from one generator call (the batcher's ``process``)."""
        started = time.perf_counter()
        samples = self.samples(jobs)
        generate_ms = (time.perf_counter() - started) * 1000.0
        total = sum(job.n for job in jobs)
        shared = self.latent_path  # model.sample runs each job on its own
        return [GeneratedSamples(job_samples, batch_requests=len(jobs) if shared else 1,
                                 batch_samples=total if shared else job.n, generate_ms=generate_ms)
                for job, job_samples in zip(jobs, samples)]
