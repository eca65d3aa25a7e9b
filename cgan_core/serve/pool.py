"""The served models: loaded in the background, each with its own worker thread and batcher."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from cgan_core.serve.batcher import RequestBatcher
from cgan_core.serve.generation import GeneratedSamples, GenerationJob, GenerationResult, SampleRunner
from cgan_core.serve.settings import ServedRun, ServeSettings

log = logging.getLogger("cgan.serve")

LOADING, READY, FAILED = "loading", "ready", "failed"


def _plugin_package(model_name: str) -> Optional[str]:
    """``plugin-name (package version)`` of the plugin that registered a model."""
    from cgan_core.plugins import get_registry

    registry = get_registry()
    owner = registry.owner("models", model_name)
    record = registry.record(owner)
    return f"{owner} ({record.package} {record.version})" if record is not None else owner


class ServedModel:
    """One run served under a name: its status, loaded model, worker thread and batcher."""

    def __init__(self, run: ServedRun, settings: ServeSettings, encoder: Optional[ThreadPoolExecutor] = None) -> None:
        self.run = run
        self.settings = settings
        self.encoder = encoder
        self.status = LOADING
        self.error: Optional[str] = None
        self.loaded: Any = None
        self.runner: Optional[SampleRunner] = None
        self.batcher: Optional[RequestBatcher[GenerationJob, GeneratedSamples]] = None
        self.load_seconds: Optional[float] = None
        self.plugin_package: Optional[str] = None
        # One thread per model: generator calls for a model never overlap, batches do the sharing.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"cgan-serve-{run.name}")

    @property
    def name(self) -> str:
        """The name clients use."""
        return self.run.name

    def load(self) -> None:
        """Load the run's checkpoint and prepare the batcher (sets ``status``; never raises)."""
        from cgan_core.session import load_run

        started = time.perf_counter()
        try:
            loaded = load_run(self.run.path, self.run.checkpoint, device=self.settings.device,
                              use_ema=self.settings.use_ema)
            runner = SampleRunner(loaded, batching=self.settings.batching, max_batch_size=self.settings.max_batch_size)
        except Exception as exc:  # a run that cannot load is reported, the others are still served
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = FAILED
            log.error("model '%s' (%s) failed to load: %s", self.name, self.run.path, self.error)
            return
        self.loaded, self.runner = loaded, runner
        self.plugin_package = _plugin_package(loaded.resolved.config.plugin)
        self.batcher = RequestBatcher(
            runner.generate, self.executor,
            max_batch_size=self.settings.max_batch_size if runner.batching else 1,
            max_wait_s=self.settings.max_wait_ms / 1000.0 if runner.batching else 0.0,
            max_jobs=None if runner.batching else 1,
            size_of=lambda job: job.n,
        )
        self.load_seconds = time.perf_counter() - started
        self.status = READY
        log.info("model '%s' ready from %s (checkpoint %s, batching: %s)", self.name, self.run.path,
                 loaded.checkpoint, runner.batching_reason)

    async def generate(self, job: GenerationJob) -> GenerationResult:
        """Generate (in a batch with whatever else is waiting) and encode one job.

        Encoding runs in the shared encoder threads, so the model's worker goes on to the next
        batch while this one's files are written.
        """
        assert self.batcher is not None and self.runner is not None
        generated = await self.batcher.submit(job)
        loop = asyncio.get_running_loop()
        files = await loop.run_in_executor(self.encoder, self.runner.encode, generated.samples, job)
        return generated.result(files)

    @property
    def formats(self) -> list[str]:
        """Content formats the modality writes (first = default); empty until loaded."""
        if self.loaded is None:
            return []
        return [str(f) for f in self.loaded.resolved.modality.content_formats]

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` says about this model."""
        info: dict[str, Any] = {"name": self.name, "status": self.status, "run": str(self.run.path),
                                "error": self.error}
        if self.loaded is None:
            return info
        from cgan_core.config import to_plain

        config = self.loaded.resolved.config
        info.update(
            modality=config.modality,
            plugin=config.plugin,
            plugin_package=self.plugin_package,
            dataset=config.dataset,
            checkpoint=self.loaded.checkpoint,
            checkpoint_step=self.loaded.checkpoint_step,
            ema=self.loaded.sample_generator is not self.loaded.model.generator,
            formats=self.formats,
            batching=bool(self.runner and self.runner.batching),
            batching_note=self.runner.batching_reason if self.runner else "",
            config={"model": to_plain(config.model), "data": to_plain(config.data),
                    "train": {"max_steps": config.train.max_steps, "loss": config.train.loss,
                              "seed": config.train.seed}},
        )
        return info

class ModelPool:
    """All served models, by name; loads them in a background thread."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        # Writers (PNG/MP4/WAV encoding, file I/O) mostly release the GIL: a few threads suffice.
        self.encoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cgan-serve-encode")
        self.models = {run.name: ServedModel(run, settings, self.encoder) for run in settings.runs}
        self._thread: Optional[threading.Thread] = None

    def start_loading(self) -> None:
        """Load every model in a background thread (requests get 503 until theirs is ready)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.load_all, name="cgan-serve-loader", daemon=True)
            self._thread.start()

    def load_all(self) -> None:
        """Load every model still loading, one after the other."""
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(int(self.settings.torch_threads))
        for model in self.models.values():
            if model.status == LOADING:
                model.load()

    def wait_loaded(self, timeout: Optional[float] = None) -> bool:
        """Block until loading finished (for tests and benchmarks); whether it did in time."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def ready(self) -> bool:
        """Whether loading is over and at least one model is ready."""
        statuses = [m.status for m in self.models.values()]
        return LOADING not in statuses and READY in statuses

    def get(self, name: str) -> Optional[ServedModel]:
        """The model served under ``name``, or ``None``."""
        return self.models.get(name)

    async def close(self) -> None:
        """Stop batchers and worker threads."""
        for model in self.models.values():
            if model.batcher is not None:
                await model.batcher.close()
            model.executor.shutdown(wait=False, cancel_futures=True)
        self.encoder.shutdown(wait=False, cancel_futures=True)
