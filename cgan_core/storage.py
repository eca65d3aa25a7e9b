"""Object storage through fsspec: dataset sources given as URLs, cached locally.

A dataset source may be a URL that fsspec understands (``s3://bucket/digits/``,
``gs://bucket/corpus.txt``, ``hdfs://...``, ``memory://...``, ``file:///...``). Loaders read local
files, so :func:`materialize_source` turns a URL into a local path: ``file://`` URLs are simply
unwrapped; anything else is downloaded once into a cache keyed by the URL and the remote's
identity (ETag or checksum when the store has one, else size and modification time, for every
file under a folder). A changed remote is downloaded again; an unchanged one is not. Downloads go
to a temporary folder that is renamed into place, so a killed download never looks complete.

Protocols other than ``file`` and ``memory`` need their fsspec package (``s3fs``, ``gcsfs``,
``pyarrow`` for HDFS): a missing one is a usage error naming the ``pip install`` to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Optional

from cgan_core.errors import CganRuntimeError, MissingDependencyError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from cgan_core.data import LoadedData
    from cgan_core.specs import DataRequest

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Protocol -> (package, cgan extra) for the optional filesystems.
PROTOCOL_PACKAGES = {
    "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "hdfs": ("pyarrow", None), "abfs": ("adlfs", None), "az": ("adlfs", None),
}
# Keys of ``fs.info()`` that identify a remote file's content, strongest first.
IDENTITY_KEYS = ("ETag", "etag", "md5Hash", "crc32c", "checksum", "content_md5")
TIME_KEYS = ("LastModified", "last_modified", "updated", "mtime", "modified", "created")


def is_url(source: str) -> bool:
    """Whether ``source`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_SCHEME.match(str(source)))


def protocol_of(url: str) -> str:
    """The URL's scheme (``s3``, ``memory``, ``file``, ...), lower-cased."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else "file"


def cache_root() -> Path:
    """Where remote sources are cached.

    ``$CGAN_CACHE_DIR/sources``, else ``$CGAN_HOME/cache/sources``, else
    ``$XDG_CACHE_HOME/cgan/sources`` (``~/.cache/cgan/sources``).
    """
    if os.environ.get("CGAN_CACHE_DIR"):
        return Path(os.environ["CGAN_CACHE_DIR"]) / "sources"
    if os.environ.get("CGAN_HOME"):
        return Path(os.environ["CGAN_HOME"]) / "cache" / "sources"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "cgan" / "sources"


def url_filesystem(url: str, purpose: str = "reading") -> tuple[Any, str]:
    """``(filesystem, path)`` for a URL, with cgan's errors for unknown or uninstalled protocols.

    Raises:
        MissingDependencyError: the protocol's package is not installed (names the pip command).
        UsageError: fsspec does not know the protocol or cannot parse the URL.
    """
    import fsspec

    protocol = protocol_of(url)
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        package, extra = PROTOCOL_PACKAGES.get(protocol, (f"the fsspec backend for {protocol}://", None))
        raise MissingDependencyError(package, f"{purpose} '{url}'", extra) from None
    except ValueError as exc:
        known = ", ".join(sorted(p for p in fsspec.available_protocols() if len(p) < 8)[:20])
        raise UsageError(f"cannot use '{url}': {exc} (fsspec protocols include {known})") from None


def _entry_identity(info: dict[str, Any]) -> dict[str, Any]:
    for key in IDENTITY_KEYS:
        if info.get(key):
            return {"size": info.get("size"), key: str(info[key]).strip('"')}
    stamp = next((str(info[key]) for key in TIME_KEYS if info.get(key) is not None), None)
    return {"size": info.get("size"), "time": stamp}


def remote_listing(fs: Any, path: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """What a remote source is: ``("file"|"directory", {relative name: identity})``.

    Raises:
        UsageError: nothing exists at ``path``.
    """
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise UsageError(f"'{fs.unstrip_protocol(path)}' does not exist") from None
    if info.get("type") != "directory":
        return "file", {"": _entry_identity(info)}
    root = path.rstrip("/")
    files = fs.find(root, detail=True)
    listing = {}
    for name, entry in sorted(files.items()):
        relative = name[len(root):].lstrip("/") if name.startswith(root) else name.rsplit("/", 1)[-1]
        if entry.get("type", "file") == "file" and relative:
            listing[relative] = _entry_identity(entry)
    if not listing:
        raise UsageError(f"'{fs.unstrip_protocol(path)}' is an empty folder")
    return "directory", listing


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _download(fs: Any, path: str, kind: str, listing: dict[str, Any], target: Path) -> None:
    if kind == "file":
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(target))
        return
    root = path.rstrip("/")
    for relative in listing:
        local = target / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{root}/{relative}", str(local))


def _local_name(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name or "data"


def materialize_source(source: str, cache_dir: Optional[Path] = None, refresh: bool = False) -> Path:
    """A local path holding the data of ``source`` (a path, or an fsspec URL cached locally).

    Args:
        source: A local path, a ``file://`` URL, or any fsspec URL (file or folder).
        cache_dir: Cache folder (default: ``cache_root()``).
        refresh: Download again even if the cached copy matches the remote.

    Returns:
        A local path: the path itself for local sources, else the cached copy, which keeps the
        remote's file name (so loaders that dispatch on suffixes such as ``.npz`` still work).

    Raises:
        UsageError: the URL is malformed, names nothing, or needs a package that is missing.
        CganRuntimeError: the download failed and no cached copy exists.
    """
    if not is_url(source):
        return Path(source).expanduser()
    if protocol_of(source) == "file":
        fs, path = url_filesystem(source)
        return Path(path)
    fs, path = url_filesystem(source)
    url_dir = Path(cache_dir or cache_root()) / _digest(source)
    try:
        kind, listing = remote_listing(fs, path)
    except UsageError:
        raise
    except Exception as exc:  # the store is unreachable: an earlier copy is better than nothing
        cached = _newest_copy(url_dir)
        if cached is None:
            raise CganRuntimeError(f"cannot reach '{source}' ({type(exc).__name__}: {exc}) and it was never "
                                   "cached") from None
        print(f"warning: cannot reach '{source}' ({exc}); using the cached copy {cached}", file=sys.stderr)
        return cached
    version = url_dir / _digest({"kind": kind, "files": listing})
    final = version / _local_name(path)
    if final.exists() and (version / "source.json").is_file() and not refresh:
        return final
    temporary = url_dir / f".partial-{uuid.uuid4().hex[:8]}"
    try:
        _download(fs, path, kind, listing, temporary / _local_name(path))
        (temporary / "source.json").write_text(json.dumps({"url": source, "kind": kind, "files": listing}))
        complete = (version / "source.json").is_file()
        if complete and not refresh:
            pass  # another process (another rank) put the same version in place meanwhile: keep theirs
        else:
            if version.exists():
                shutil.rmtree(version)
            temporary.rename(version)
    except (OSError, ValueError) as exc:
        raise CganRuntimeError(f"downloading '{source}' failed: {exc}") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    for older in url_dir.iterdir():  # the remote changed: earlier versions are stale
        if older != version and not older.name.startswith(".partial-"):
            shutil.rmtree(older, ignore_errors=True)
    return final


def _newest_copy(url_dir: Path) -> Optional[Path]:
    if not url_dir.is_dir():
        return None
    versions = [v for v in url_dir.iterdir() if (v / "source.json").is_file()]
    if not versions:
        return None
    newest = max(versions, key=lambda v: (v / "source.json").stat().st_mtime)
    entries = [p for p in newest.iterdir() if p.name != "source.json"]
    return entries[0] if entries else None


def open_local_or_url(opener: Callable[["DataRequest"], "LoadedData"], request: "DataRequest") -> "LoadedData":
    """Call a modality's ``open_source`` on ``request``, first fetching a URL source into the cache.

    Modalities read local files only; this is the one place where a URL source becomes a local
    path, so every modality accepts the same URLs. The loaded data records the URL as its source
    (where the data lives), not the cache path.
    """
    if not is_url(request.source):
        return opener(request)
    data = opener(replace(request, source=str(materialize_source(request.source))))
    data.source = request.source
    return data
