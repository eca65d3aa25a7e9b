"""The content repository: generated files on disk, indexed by the metadata database.

A row in ``contents`` always has its file and a file written by cgan always has its row, even when
a process is killed at any instant. The write order guarantees it:

1. the writer is recorded in ``content_writers`` (host, pid, process start time, staging dir);
2. the modality's writer writes into a hidden staging directory inside the content directory;
   each file is hashed and the batch flushed to disk;
3. one transaction upserts the files' rows as ``pending`` (naming the writer);
4. each file is renamed into place (atomic, same file system) and the directory fsynced;
5. one transaction marks the rows ``ok``; the staging directory and the writer row go last.

Listing content (``cgan content list``, :meth:`ContentStore.reconcile`) first finishes the work
of writers that no longer run: a ``pending`` row's file is moved into place from staging (or kept
when it is already there with the right sha256), otherwise the row is dropped; ``deleting`` rows
(an interrupted ``cgan content rm``) lose their file and row. ``cgan content fsck`` also checks
every file against its row. Liveness is judged per host, so several machines can share one
PostgreSQL database.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

from sqlalchemy import delete, select, update

from cgan_core.db.models import (
    CONTENT_DELETING, CONTENT_OK, CONTENT_PENDING, Content, ContentWriter, Run, iso_utc, utcnow,
)
from cgan_core.db.records import upsert
from cgan_core.errors import CganRuntimeError, UsageError
from cgan_core.fileio import fsync_dir, fsync_file, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.db.database import Database
    from cgan_core.specs import ModalitySpec, SampleInfo

STAGING_PREFIX = ".cgan-staging-"
_IN_CHUNK = 500  # paths per IN (...) query, well under every database's parameter limit


# --- processes ---------------------------------------------------------------------------------
def _proc_stat(pid: int) -> Optional[list[str]]:
    """Fields of ``/proc/PID/stat`` after the command name (state first), ``None`` if absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def process_start_time(pid: int) -> Optional[int]:
    """A process's start time in clock ticks since boot (Linux ``/proc``), ``None`` if unknown."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def process_alive(pid: int, start: Optional[int]) -> bool:
    """Whether the process ``pid`` that started at ``start`` still runs (a zombie does not)."""
    if Path("/proc").is_dir():
        fields = _proc_stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        # The start time tells a reused pid from the writer itself.
        return start is None or int(fields[19]) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- rows --------------------------------------------------------------------------------------
@dataclass
class ContentItem:
    """One registered content file."""

    id: int
    path: str
    sha256: str
    size: int
    modality: str
    format: str
    seed: Optional[int]
    sample_index: Optional[int]
    run_id: Optional[str]
    run: Optional[str]
    checkpoint: Optional[str]
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, content: Content, run_name: Optional[str]) -> "ContentItem":
        """Build from a ``contents`` row and its run's name."""
        return cls(content.id, content.path, content.sha256, int(content.size or 0), content.modality,
                   content.format, content.seed, content.sample_index, content.run_id, run_name,
                   content.checkpoint, iso_utc(content.created_at) or "",
                   dict(content.meta or {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


@dataclass
class StagedFile:
    """A file the modality writer put in the staging directory, and the fields of its row."""

    path: Path
    modality: str
    format: str = ""
    seed: Optional[int] = None
    sample_index: Optional[int] = None
    run_id: Optional[str] = None
    checkpoint: Optional[str] = None
    checkpoint_id: Optional[int] = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class FsckReport:
    """What :meth:`ContentStore.reconcile` / :meth:`ContentStore.fsck` found and did."""

    recovered_writers: int = 0
    completed: int = 0
    dropped: int = 0
    deleted: int = 0
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    stale_staging: list[str] = field(default_factory=list)
    other_hosts: int = 0
    repaired: bool = False

    @property
    def clean(self) -> bool:
        """No missing, corrupt or untracked file and no stale staging directory."""
        return not (self.missing or self.corrupt or self.untracked or self.stale_staging)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dict(asdict(self), clean=self.clean)


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


@functools.lru_cache(maxsize=1)
def _syncfs() -> Any:
    """libc's ``syncfs`` on Linux (``None`` elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def make_durable(paths: Sequence[Path], directory: Path) -> None:
    """Flush ``paths`` (all inside ``directory``) to stable storage.

    One ``syncfs`` of the file system costs about what one ``fsync`` does, so on Linux a batch
    of files is flushed with a single call instead of one journal commit per file; elsewhere each
    file is fsynced.
    """
    syncfs = _syncfs()
    if syncfs is not None and paths:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            if syncfs(descriptor) == 0:
                return
        finally:
            os.close(descriptor)
    for path in paths:
        fsync_file(path)


def _sha_or_none(path: Path) -> Optional[str]:
    try:
        return sha256_file(path)
    except OSError:
        return None


# --- the store ---------------------------------------------------------------------------------
class ContentBatch:
    """A writer's session: a registered writer and a staging directory in ``out_dir``.

    Use as a context manager; write files under :attr:`staging` and register them with
    :meth:`commit` (any number of times). Leaving the block removes the staging directory and the
    writer row; an exception first finishes or undoes whatever was half done.
    """

    def __init__(self, store: "ContentStore", out_dir: Path) -> None:
        self.store = store
        self.out_dir = Path(out_dir).absolute()
        self.token = uuid.uuid4().hex
        self.staging = self.out_dir / f"{STAGING_PREFIX}{self.token}"

    def __enter__(self) -> "ContentBatch":
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the content directory '{self.out_dir}': {exc}") from None
        self.store.begin_writer(self.token, self.staging)
        self.staging.mkdir()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.store.recover_writer(self.token, self.staging)
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        self.store.end_writer(self.token)

    def commit(self, files: Sequence[StagedFile]) -> list[ContentItem]:
        """Move staged files into place and register them (the numbered steps of the module doc).

        A file whose path already holds identical bytes with an ``ok`` row is left alone, so
        generating the same content twice neither rewrites it nor duplicates its row.
        """
        db = self.store.db
        prepared = []
        for staged in files:
            source = Path(staged.path).absolute()
            try:
                relative = source.relative_to(self.staging)
            except ValueError:
                raise CganRuntimeError(f"the content writer wrote '{source}' outside its directory "
                                       f"'{self.staging}'") from None
            final = self.out_dir / relative
            prepared.append((staged, source, final, sha256_file(source), source.stat().st_size))
        make_durable([source for _, source, _, _, _ in prepared], self.staging)
        paths = [str(final) for _, _, final, _, _ in prepared]
        on_disk = {str(final): _sha_or_none(final) for _, _, final, _, _ in prepared if final.is_file()}

        def register_pending(session: Any) -> set[str]:
            existing: dict[str, tuple[str, str]] = {}
            for chunk in _chunks(paths):
                for path, sha, state in session.execute(
                        select(Content.path, Content.sha256, Content.state).where(Content.path.in_(chunk))):
                    existing[path] = (sha, state)
            now = utcnow()
            rows, unchanged = [], set()
            for staged, _, final, sha, size in prepared:
                key = str(final)
                if existing.get(key) == (sha, CONTENT_OK) and on_disk.get(key) == sha:
                    unchanged.add(key)
                    continue
                rows.append({
                    "path": key, "sha256": sha, "size": size, "modality": staged.modality,
                    "format": staged.format or final.suffix.lstrip("."), "seed": staged.seed,
                    "sample_index": staged.sample_index, "run_id": staged.run_id,
                    "checkpoint": staged.checkpoint, "checkpoint_id": staged.checkpoint_id, "created_at": now,
                    "metadata": staged.metadata or None, "state": CONTENT_PENDING, "txn": self.token,
                })
            upsert(session, Content.__table__, rows, keys=("path",))  # keys are column names
            return unchanged

        unchanged = db.write(register_pending)
        directories = set()
        for _, source, final, _, _ in prepared:
            if str(final) in unchanged:
                source.unlink(missing_ok=True)
                continue
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, final)
            directories.add(final.parent)
        for directory in directories:
            fsync_dir(directory)

        def mark_ok(session: Any) -> list[ContentItem]:
            session.execute(update(Content).where(Content.txn == self.token)
                            .values(state=CONTENT_OK, txn=None))
            return self.store.items_at(session, paths)

        return db.write(mark_ok)


class ContentStore:
    """Register, list, export and remove content files; repair after crashes.

    Args:
        db: The metadata database.
    """

    def __init__(self, db: "Database") -> None:
        self.db = db
        self.host = socket.gethostname()

    # writers ----------------------------------------------------------------------------------
    def batch(self, out_dir: Path) -> ContentBatch:
        """A :class:`ContentBatch` writing into ``out_dir``."""
        return ContentBatch(self, out_dir)

    def begin_writer(self, token: str, staging: Optional[Path]) -> None:
        """Record this process as writer ``token`` before it touches any file."""
        pid = os.getpid()
        row = ContentWriter(token=token, host=self.host, pid=pid, pid_start=process_start_time(pid),
                            staging=str(staging) if staging else None, created_at=utcnow())
        self.db.write(lambda session: session.merge(row))

    def end_writer(self, token: str) -> None:
        """Forget writer ``token`` (its work is complete)."""
        self.db.write(lambda session: session.execute(delete(ContentWriter).where(ContentWriter.token == token)))

    def recover_writer(self, token: str, staging: Optional[Path]) -> tuple[int, int, int]:
        """Finish or undo what writer ``token`` left half done; returns (completed, dropped, deleted)."""
        rows = self.db.read(lambda session: session.execute(
            select(Content.id, Content.path, Content.sha256, Content.state).where(Content.txn == token)).all())
        staging = Path(staging) if staging else None
        completed, dropped, deleted = [], [], []
        for content_id, path, sha, state in rows:
            final = Path(path)
            if state == CONTENT_DELETING:
                final.unlink(missing_ok=True)
                deleted.append(content_id)
                continue
            staged = None
            if staging is not None and final.is_relative_to(staging.parent):
                staged = staging / final.relative_to(staging.parent)
            if staged is not None and staged.is_file() and _sha_or_none(staged) == sha:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
                fsync_dir(final.parent)
                completed.append(content_id)
            elif final.is_file() and _sha_or_none(final) == sha:
                completed.append(content_id)
            else:  # neither the staged nor the final file holds the registered bytes
                final.unlink(missing_ok=True)
                dropped.append(content_id)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

        def settle(session: Any) -> None:
            if completed:
                session.execute(update(Content).where(Content.id.in_(completed), Content.txn == token)
                                .values(state=CONTENT_OK, txn=None))
            if dropped or deleted:
                session.execute(delete(Content).where(Content.id.in_(dropped + deleted), Content.txn == token))
            session.execute(delete(ContentWriter).where(ContentWriter.token == token))

        self.db.write(settle)
        return len(completed), len(dropped), len(deleted)

    def reconcile(self) -> FsckReport:
        """Finish the work of writers that were killed on this host (cheap when there are none)."""
        report = FsckReport()

        def survey(session: Any) -> tuple[list[Any], list[str]]:
            writers = session.execute(select(ContentWriter)).scalars().all()
            tokens = session.execute(select(Content.txn).where(Content.state != CONTENT_OK).distinct()).scalars().all()
            return list(writers), [t for t in tokens if t]

        writers, tokens = self.db.read(survey)
        known = {w.token for w in writers}
        for writer in writers:
            if writer.host != self.host:
                report.other_hosts += 1
                continue
            if process_alive(writer.pid, writer.pid_start):
                continue
            self._count(report, self.recover_writer(writer.token, Path(writer.staging) if writer.staging else None))
        for token in tokens:  # rows whose writer row vanished: nothing can still be working on them
            if token not in known:
                self._count(report, self.recover_writer(token, None))
        return report

    @staticmethod
    def _count(report: FsckReport, outcome: tuple[int, int, int]) -> None:
        report.recovered_writers += 1
        report.completed += outcome[0]
        report.dropped += outcome[1]
        report.deleted += outcome[2]

    # adding -----------------------------------------------------------------------------------
    def add_samples(self, samples: Any, modality: "ModalitySpec", out_dir: Path, info: "SampleInfo",
                    data_info: Mapping[str, Any], fmt: Optional[str] = None, run_id: Optional[str] = None,
                    checkpoint_id: Optional[int] = None, metadata: Optional[Mapping[str, Any]] = None,
                    batch: Optional[ContentBatch] = None) -> list[ContentItem]:
        """Write ``samples`` with the modality's writer into ``out_dir`` and register each file.

        Args:
            samples: A batch in the modality's tensor format.
            modality: The modality spec whose ``write_samples`` makes the files.
            out_dir: Content directory.
            info: Seed, index of the first sample, run and checkpoint (given to the writer).
            data_info: The run's dataset facts (given to the writer).
            fmt: Content format, or ``None`` for the writer's default.
            run_id: Run the content came from.
            checkpoint_id: Its ``checkpoints`` row, if recorded.
            metadata: Extra JSON stored with each row.
            batch: An open batch to write in (one is opened for this call otherwise).
        """
        if batch is None:
            with self.batch(out_dir) as own:
                return self.add_samples(samples, modality, out_dir, info, data_info, fmt, run_id, checkpoint_id,
                                        metadata, own)
        kwargs = {"fmt": fmt} if fmt else {}
        paths = [Path(p) for p in modality.write_samples(samples, batch.staging, info, data_info, **kwargs)]
        count = int(len(samples)) if hasattr(samples, "__len__") else len(paths)
        per_sample = len(paths) == count
        extra = dict(metadata or {})
        if not per_sample:
            extra["samples_in_file"] = count
        staged = [StagedFile(path=p, modality=modality.name, format=fmt or p.suffix.lstrip("."), seed=info.seed,
                             sample_index=info.start_index + i if per_sample else None, run_id=run_id,
                             checkpoint=info.checkpoint, checkpoint_id=checkpoint_id, metadata=extra)
                  for i, p in enumerate(paths)]
        return batch.commit(staged)

    # reading ----------------------------------------------------------------------------------
    def items_at(self, session: Any, paths: Sequence[str]) -> list[ContentItem]:
        """Registered items at ``paths``, in that order (inside an open session)."""
        found: dict[str, ContentItem] = {}
        for chunk in _chunks(list(paths)):
            query = select(Content, Run.name).outerjoin(Run, Run.id == Content.run_id).where(Content.path.in_(chunk))
            for content, run_name in session.execute(query):
                found[content.path] = ContentItem.from_row(content, run_name)
        return [found[p] for p in paths if p in found]

    def list(self, run: Optional[str] = None, modality: Optional[str] = None, checkpoint: Optional[str] = None,
             seed: Optional[int] = None, ids: Sequence[int] = (), limit: Optional[int] = None) -> list[ContentItem]:
        """Content in place (``ok`` rows), oldest first, filtered by run (id, name or path), modality,
        checkpoint, seed or ids."""

        def query(session: Any) -> list[ContentItem]:
            statement = select(Content, Run.name).outerjoin(Run, Run.id == Content.run_id) \
                .where(Content.state == CONTENT_OK)
            if run:
                run_ids = resolve_run_ids(session, run)
                if not run_ids:
                    raise UsageError(f"no run '{run}' in the database {self.db.display_url}; "
                                     "see 'cgan runs list'")
                statement = statement.where(Content.run_id.in_(run_ids))
            if modality:
                statement = statement.where(Content.modality == modality)
            if checkpoint:
                statement = statement.where(Content.checkpoint == checkpoint)
            if seed is not None:
                statement = statement.where(Content.seed == seed)
            if ids:
                statement = statement.where(Content.id.in_(list(ids)))
            statement = statement.order_by(Content.id)
            if limit:
                statement = statement.limit(limit)
            return [ContentItem.from_row(c, name) for c, name in session.execute(statement)]

        return self.db.read(query)

    def get(self, content_id: int) -> Optional[ContentItem]:
        """One item by id (``None`` if unknown or not in place)."""
        found = self.list(ids=[content_id])
        return found[0] if found else None

    # removing ---------------------------------------------------------------------------------
    def remove(self, items: Sequence[ContentItem]) -> int:
        """Delete the files and rows of ``items`` together; returns how many were removed."""
        if not items:
            return 0
        token = uuid.uuid4().hex
        ids = [item.id for item in items]
        self.begin_writer(token, None)

        def mark(session: Any) -> list[str]:
            paths = []
            for chunk in _chunks(ids):
                session.execute(update(Content).where(Content.id.in_(chunk), Content.state == CONTENT_OK)
                                .values(state=CONTENT_DELETING, txn=token))
                paths += session.execute(select(Content.path).where(Content.id.in_(chunk),
                                                                   Content.txn == token)).scalars().all()
            return paths

        paths = self.db.write(mark)
        for path in paths:
            Path(path).unlink(missing_ok=True)
        for directory in {Path(p).parent for p in paths}:
            fsync_dir(directory)

        def forget(session: Any) -> None:
            session.execute(delete(Content).where(Content.txn == token, Content.state == CONTENT_DELETING))
            session.execute(delete(ContentWriter).where(ContentWriter.token == token))

        self.db.write(forget)
        return len(paths)

    # checking ---------------------------------------------------------------------------------
    def fsck(self, verify: bool = False, repair: bool = False, remove_untracked: bool = False) -> FsckReport:
        """Reconcile, then check every registered file (and the directories holding them).

        Args:
            verify: Also compare each file's sha256 with its row (reads every file).
            repair: Drop rows whose file is missing, remove corrupt files with their rows and stale
                staging directories.
            remove_untracked: Also delete files in content directories that have no row.
        """
        report = self.reconcile()
        rows = self.db.read(lambda session: session.execute(
            select(Content.id, Content.path, Content.sha256, Content.size).where(Content.state == CONTENT_OK)).all())
        writers = self.db.read(lambda session: set(session.execute(select(ContentWriter.token)).scalars().all()))
        report.checked = len(rows)
        registered = {path for _, path, _, _ in rows}
        bad_ids = []
        for content_id, path, sha, size in rows:
            target = Path(path)
            if not target.is_file():
                report.missing.append(path)
                bad_ids.append(content_id)
            elif target.stat().st_size != size or (verify and _sha_or_none(target) != sha):
                report.corrupt.append(path)
                bad_ids.append(content_id)
        for directory in sorted({Path(p).parent for p in registered}):
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.name.startswith(STAGING_PREFIX):
                    if entry.name[len(STAGING_PREFIX):] not in writers:
                        report.stale_staging.append(str(entry))
                elif entry.is_file() and not entry.name.startswith(".") and str(entry) not in registered:
                    report.untracked.append(str(entry))
        if repair:
            for path in report.corrupt:
                Path(path).unlink(missing_ok=True)
            for path in report.stale_staging:
                shutil.rmtree(path, ignore_errors=True)
            if remove_untracked:
                for path in report.untracked:
                    Path(path).unlink(missing_ok=True)
            if bad_ids:
                def forget(session: Any) -> None:
                    for chunk in _chunks(bad_ids):
                        session.execute(delete(Content).where(Content.id.in_(chunk)))

                self.db.write(forget)
            report.repaired = True
        return report

    # exporting --------------------------------------------------------------------------------
    def export(self, items: Sequence[ContentItem], dest: str) -> dict[str, Any]:
        """Copy ``items`` to ``dest`` (a folder or an fsspec URL such as ``s3://bucket/x``,
        ``memory://x``, ``file:///x``) as ``RUN/CHECKPOINT/FILE`` plus a ``manifest.jsonl`` of the
        rows; each file's bytes are checked against its sha256 on the way.

        Raises:
            CganRuntimeError: a file is missing or does not match its row (run ``cgan content fsck``).
            MissingDependencyError: the URL's protocol needs a package that is not installed.
        """
        import fsspec

        from cgan_core.errors import MissingDependencyError

        missing = [item for item in items if not Path(item.path).is_file()]
        if missing:
            raise CganRuntimeError(f"{len(missing)} content file(s) are missing, e.g. '{missing[0].path}' "
                                   "(id {missing[0].id}); run 'cgan content fsck --repair' first")
        try:
            fs, root = fsspec.core.url_to_fs(dest)
        except ImportError as exc:
            raise MissingDependencyError(getattr(exc, "name", None) or "fsspec backend",
                                         f"exporting to '{dest}'") from None
        except ValueError as exc:
            raise UsageError(f"cannot export to '{dest}': {exc}") from None
        root = root.rstrip("/") or "/"
        fs.makedirs(root, exist_ok=True)
        used: set[str] = set()
        manifest = []
        total = 0
        for item in items:
            name = Path(item.path).name
            relative = f"{item.run or 'no-run'}/{item.checkpoint or 'no-checkpoint'}/{name}"
            if relative in used:
                relative = f"{item.run or 'no-run'}/{item.checkpoint or 'no-checkpoint'}/{item.id}-{name}"
            used.add(relative)
            data = Path(item.path).read_bytes()
            if hashlib.sha256(data).hexdigest() != item.sha256:
                raise CganRuntimeError(f"content {item.id} '{item.path}' does not match its sha256; "
                                       "run 'cgan content fsck --verify'")
            target = f"{root}/{relative}"
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(target, "wb") as handle:
                handle.write(data)
            total += len(data)
            manifest.append(dict(item.to_dict(), export_path=relative))
        with fs.open(f"{root}/manifest.jsonl", "w") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in manifest))
        return {"dest": dest, "files": len(manifest), "bytes": total, "manifest": f"{root}/manifest.jsonl"}


def resolve_run_ids(session: Any, run: str) -> list[str]:
    """Run ids matching ``run``: an id, a run directory path or a run (directory) name."""
    by_id = session.execute(select(Run.id).where(Run.id == run)).scalars().all()
    if by_id:
        return list(by_id)
    path = str(Path(run).expanduser().resolve())
    by_path = session.execute(select(Run.id).where(Run.path == path).order_by(Run.created_at.desc())).scalars().all()
    if by_path:
        return list(by_path)
    return list(session.execute(select(Run.id).where(Run.name == run)).scalars().all())
