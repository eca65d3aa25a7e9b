"""What the server needs from the content repository: store generated files, find them again.

:class:`ContentBackend` is the small interface the routes use; :func:`open_backend` returns
the implementation on top of :mod:`cgan_core.content` (the repository ``cgan generate`` uses).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence


@dataclass
class StoredItem:
    """One file in the content repository, as the API shows it."""

    id: str
    path: Path
    media_type: str
    modality: str
    size: int
    sha256: str
    seed: Optional[int] = None
    sample_index: Optional[int] = None
    checkpoint: Optional[str] = None
    created_at: Optional[str] = None


class ContentBackend(Protocol):
    """The content repository seen from the server."""

    roots: list[Path]
    """Directories whose files the server may hand out; nothing outside them is ever served."""

    def store(self, model: Any, seed: int, n: int, fmt: Optional[str], files: Sequence[Any]) -> list[StoredItem]:
        """Register ``files`` (:class:`~cgan_core.serve.generation.ContentFile`) that ``model``
        (a :class:`~cgan_core.serve.pool.ServedModel`) generated for ``n`` samples with ``seed``;
        returns them in order."""

    def get(self, content_id: str) -> Optional[StoredItem]:
        """The item with this id, or ``None``."""

    def recent(self, model: Any, limit: int) -> list[StoredItem]:
        """The newest items generated from ``model``'s run, newest first."""


def within(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside one of ``roots``."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


class RepositoryBackend:
    """:class:`ContentBackend` on the content repository (:class:`cgan_core.content.ContentStore`).

    Stored files go to ``CONTENT_DIR/MODEL/CHECKPOINT/`` with ``--content-dir``, otherwise to
    ``RUN/generated/CHECKPOINT/`` (next to what ``cgan generate`` writes), registered with their
    run, checkpoint, seed and sample index like ``cgan generate``'s.

    Args:
        settings: :class:`~cgan_core.serve.settings.ServeSettings` (``content_dir``, ``db_url``, ``runs``).
    """

    def __init__(self, settings: Any) -> None:
        from cgan_core.content import ContentStore
        from cgan_core.db.database import Database

        self.settings = settings
        self.db = Database(settings.db_url)
        self.store_api = ContentStore(self.db)
        self.store_api.reconcile()  # finish what a killed server or generate left half written
        if settings.content_dir:
            self.roots = [Path(settings.content_dir).absolute()]
        else:
            self.roots = [Path(run.path).absolute() / "generated" for run in settings.runs]
        self._recorded: dict[str, tuple[str, Optional[int]]] = {}

    def out_dir(self, model: Any) -> Path:
        """Where ``model``'s stored content goes."""
        if self.settings.content_dir:
            base = Path(self.settings.content_dir).absolute() / model.name
        else:
            base = Path(model.run.path).absolute() / "generated"
        return base / model.loaded.checkpoint

    def _record_run(self, model: Any) -> tuple[str, Optional[int]]:
        key = f"{model.run.path}#{model.loaded.checkpoint}"
        if key not in self._recorded:
            from cgan_core.db.records import checkpoint_id, record_checkpoints, record_run

            loaded = model.loaded

            def record(session: Any) -> tuple[str, Optional[int]]:
                run_id = record_run(session, loaded.run)
                record_checkpoints(session, run_id, [loaded.run.checkpoints / loaded.checkpoint])
                return run_id, checkpoint_id(session, run_id, loaded.checkpoint)

            self._recorded[key] = self.db.write(record)
        return self._recorded[key]

    def store(self, model: Any, seed: int, n: int, fmt: Optional[str], files: Sequence[Any]) -> list[StoredItem]:
        from cgan_core.content import StagedFile

        run_id, ckpt_id = self._record_run(model)
        modality = model.loaded.resolved.config.modality
        out = self.out_dir(model)
        per_sample = len(files) == n  # otherwise a file holds several samples (e.g. lines of text)
        metadata = {"source": "cgan serve", "model": model.name, "checkpoint_step": model.loaded.checkpoint_step,
                    "ema": model.loaded.sample_generator is not model.loaded.model.generator,
                    "run_path": str(Path(model.run.path).resolve())}
        with self.store_api.batch(out) as batch:
            staged = []
            for index, file in enumerate(files):
                path = batch.staging / Path(file.name).name  # a writer's name, never a directory
                path.write_bytes(file.data)
                staged.append(StagedFile(path=path, modality=modality, format=fmt or path.suffix.lstrip("."),
                                         seed=seed, sample_index=index if per_sample else None, run_id=run_id,
                                         checkpoint=model.loaded.checkpoint, checkpoint_id=ckpt_id,
                                         metadata=metadata if per_sample else {**metadata, "samples_in_file": n}))
            items = batch.commit(staged)
        return [self._item(item) for item in items]

    @staticmethod
    def _item(item: Any) -> StoredItem:
        from cgan_core.serve.generation import media_type_for

        return StoredItem(id=str(item.id), path=Path(item.path), media_type=media_type_for(item.path),
                          modality=item.modality, size=item.size, sha256=item.sha256, seed=item.seed,
                          sample_index=item.sample_index, checkpoint=item.checkpoint, created_at=item.created_at)

    def get(self, content_id: str) -> Optional[StoredItem]:
        item = self.store_api.get(int(content_id))
        return self._item(item) if item is not None else None

    def recent(self, model: Any, limit: int) -> list[StoredItem]:
        from sqlalchemy import or_, select

        from cgan_core.content import ContentItem, resolve_run_ids
        from cgan_core.db.models import CONTENT_OK, Content, Run

        run_path = str(Path(model.run.path).resolve())

        def query(session: Any) -> list[Any]:
            run_ids = resolve_run_ids(session, run_path)
            if not run_ids:  # the run is not in the database yet: nothing stored
                return []
            inside = or_(*[Content.path.startswith(str(root).rstrip(os.sep) + os.sep) for root in self.roots])
            statement = (select(Content, Run.name).outerjoin(Run, Run.id == Content.run_id)
                         .where(Content.state == CONTENT_OK, Content.run_id.in_(run_ids), inside)
                         .order_by(Content.id.desc()).limit(limit))
            return [ContentItem.from_row(content, name) for content, name in session.execute(statement)]

        # the SQL prefix test narrows the rows; within() also resolves symlinks before trusting a path
        return [self._item(item) for item in self.db.read(query) if within(Path(item.path), self.roots)]

    def close(self) -> None:
        """Release the database connections."""
        self.db.close()


def open_backend(settings: Any) -> ContentBackend:
    """Open the content repository named by ``settings`` (``content_dir``, ``db_url``).

    Raises:
        CganError: the database cannot be opened or is switched off.
    """
    return RepositoryBackend(settings)
