"""Turning generate requests into content bytes: seeded noise per request, one generator call
per batch, the modality's writer for files.

Why batching keeps seeds reproducible: every request draws its latent noise from its own
``torch.Generator`` seeded with the request's seed, exactly as ``model.sample`` would; only the
deterministic ``generate`` step runs on the concatenated batch. In eval mode a DCGAN/TGAN-style
generator treats samples independently (batch norm uses running statistics), and on the CPU the
server runs the generator with oneDNN turned off, whose batch-size-dependent kernel choice is
the one thing that made rows differ in the last bit between batch sizes. So a request's samples
are bit-identical whether it is computed alone or inside a batch.

Models whose sampling is not "latent noise, then a per-sample deterministic map" (SeqGAN draws
tokens one at a time with ``multinomial``) override ``GANModel.sample``; they are served one
request per call (see :func:`supports_latent_batching`).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    extra: dict[str, Any] = field(default_factory=dict)


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


_kernel_lock = threading.Lock()
_kernel_users = 0
_kernel_saved: Optional[bool] = None


@contextmanager
def batch_invariant_kernels() -> Iterator[None]:
    """Run CPU convolutions without oneDNN while inside (reference-counted across threads).

    oneDNN picks kernels by batch size, so a sample's last bits depend on what it was batched
    with; PyTorch's native kernels compute each sample the same way whatever the batch.
    """
    global _kernel_users, _kernel_saved
    with _kernel_lock:
        if _kernel_users == 0:
            _kernel_saved = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _kernel_users += 1
    try:
        yield
    finally:
        with _kernel_lock:
            _kernel_users -= 1
            if _kernel_users == 0 and _kernel_saved is not None:
                torch.backends.mkldnn.enabled = _kernel_saved


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
        scratch_dir: Where writers put files before they are read back (default: the system's).
    """

    def __init__(self, loaded: Any, batching: bool = True, scratch_dir: Optional[str] = None) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.module = loaded.sample_generator
        self.modality = loaded.resolved.modality
        self.scratch_dir = scratch_dir or default_scratch_dir()
        # latent_path: requests are computed as seeded sample_latent + one generate call, the
        # recipe that may be batched; otherwise each request is a plain model.sample call.
        self.latent_path = False
        if not supports_latent_batching(self.model):
            note = "the model samples step by step (it overrides GANModel.sample); one call per request"
        else:
            self.latent_path, note = self._probe_independence()
        self.batching = batching and self.latent_path
        if self.latent_path and not batching:
            note = "turned off (--no-batching): one generate call per request, same computation"
        self.batching_reason = note

    # --- sampling ---------------------------------------------------------------------------
    def _latent(self, job: GenerationJob) -> Any:
        return self.model.sample_latent(job.n, generator=seeded(job.seed))

    @torch.inference_mode()
    def _generate(self, latent: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        with batch_invariant_kernels():
            return self.model.generate(latent, generator_module=self.module).cpu()

    def _probe_independence(self) -> tuple[bool, str]:
        """Check on 17 seeds that a sample's bits do not depend on its batch companions.

        Each seed's sample is computed alone, in batches of 2, 3, 5 and 7, and in one batch of 17;
        the latent recipe is used only if every row is bit-identical. A model whose kernels change
        their last bits with the batch size (TGAN's and WaveGAN's dense first layers) fails this
        and is served by ``model.sample``, one request per call.
        """
        jobs = [GenerationJob(1, seed) for seed in range(11, 28)]
        try:
            latents = [self._latent(job) for job in jobs]
            if not all(isinstance(latent, torch.Tensor) for latent in latents):
                return False, "the model's latent is not a tensor; one call per request"
            alone = torch.cat([self._generate(latent) for latent in latents])
            chunks, start = [], 0
            for size in (2, 3, 5, 7):
                chunks.append(self._generate(torch.cat(latents[start:start + size])))
                start += size
            together = torch.cat(chunks)
            everything = self._generate(torch.cat(latents))
        except Exception as exc:  # a model that cannot batch is served request by request
            return False, f"batched generation failed in the probe ({type(exc).__name__}: {exc}); one call per request"
        if not (together.shape == alone.shape == everything.shape and torch.equal(together, alone)
                and torch.equal(everything, alone)):
            return False, "samples depend on their batch companions in the last bits (probe); one call per request"
        return True, "latents are concatenated; outputs are bit-identical to single requests"

    def samples(self, jobs: list[GenerationJob]) -> list[torch.Tensor]:
        """Samples (modality tensor format, CPU) for each job, in one generator call."""
        if self.latent_path:
            latents = [self._latent(job) for job in jobs]
            output = self._generate(torch.cat(latents))
            return list(output.split([job.n for job in jobs]))
        results = []
        for job in jobs:
            with torch.inference_mode():
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
