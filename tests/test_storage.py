"""fsspec dataset sources: memory:// and file:// URLs, the local cache keyed by URL and identity."""

from __future__ import annotations

import io
import json

import fsspec
import numpy as np
import pytest
from PIL import Image

from cgan_core import MissingDependencyError, UsageError
from cgan_core.storage import is_url, materialize_source, remote_listing, url_filesystem


@pytest.fixture
def memory():
    """A clean in-memory filesystem (fsspec's memory:// store is process-wide)."""
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    yield fs
    fs.store.clear()


def _png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _npz_bytes(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, images=images)
    return buffer.getvalue()


def test_urls_and_paths_are_told_apart():
    assert is_url("s3://bucket/x") and is_url("memory://x") and is_url("file:///tmp/x")
    assert not is_url("/tmp/x") and not is_url("data/x.npz") and not is_url("digits")


def test_a_remote_file_is_downloaded_once_and_again_when_it_changes(memory, tmp_path):
    memory.pipe("/sets/one.npz", b"first version")
    cached = materialize_source("memory://sets/one.npz", cache_dir=tmp_path)
    assert cached.name == "one.npz" and cached.read_bytes() == b"first version"
    assert tmp_path in cached.parents
    stamp = cached.stat().st_mtime_ns
    assert materialize_source("memory://sets/one.npz", cache_dir=tmp_path) == cached  # unchanged: a cache hit
    assert cached.stat().st_mtime_ns == stamp
    memory.pipe("/sets/one.npz", b"second, longer version")  # new size and time: a new identity
    updated = materialize_source("memory://sets/one.npz", cache_dir=tmp_path)
    assert updated != cached and updated.read_bytes() == b"second, longer version"
    assert not cached.exists()  # the stale version was removed
    record = json.loads((updated.parent / "source.json").read_text())
    assert record["url"] == "memory://sets/one.npz" and record["kind"] == "file"


def test_identity_prefers_the_etag_over_size_and_time():
    class FakeStore:
        def info(self, path):
            return {"type": "file", "size": 10, "ETag": '"abc123"', "LastModified": "2026-01-01"}

    kind, listing = remote_listing(FakeStore(), "bucket/key")
    assert kind == "file" and listing == {"": {"size": 10, "ETag": "abc123"}}


def test_a_remote_folder_keeps_its_layout_and_is_keyed_by_every_file(memory, tmp_path):
    memory.pipe("/imgs/cats/a.png", _png_bytes(10))
    memory.pipe("/imgs/dogs/b.png", _png_bytes(200))
    folder = materialize_source("memory://imgs", cache_dir=tmp_path)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == ["cats/a.png", "dogs/b.png"]
    memory.pipe("/imgs/dogs/c.png", _png_bytes(90))  # one more file: a new version
    again = materialize_source("memory://imgs/", cache_dir=tmp_path)
    assert len(list(again.rglob("*.png"))) == 3


def test_file_urls_are_used_in_place(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"local")
    assert materialize_source(f"file://{tmp_path}/x.npz") == tmp_path / "x.npz"
    assert materialize_source(str(tmp_path / "x.npz")) == tmp_path / "x.npz"


def test_errors_name_the_problem(memory, tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="does not exist"):
        materialize_source("memory://nothing/here.npz", cache_dir=tmp_path)
    with pytest.raises(UsageError, match="Protocol not known|cannot use"):
        url_filesystem("nosuchproto://x")
    import fsspec.core

    def missing_package(url, **kwargs):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing_package)
    with pytest.raises(MissingDependencyError, match=r"s3fs.*pip install 'cgan\[s3\]'"):
        materialize_source("s3://bucket/data.npz", cache_dir=tmp_path)


def test_an_unreachable_store_falls_back_to_the_cached_copy(memory, tmp_path, monkeypatch, capsys):
    memory.pipe("/sets/two.npz", b"payload")
    cached = materialize_source("memory://sets/two.npz", cache_dir=tmp_path)
    import cgan_core.storage as storage

    def offline(fs, path):
        raise ConnectionError("network is unreachable")

    monkeypatch.setattr(storage, "remote_listing", offline)
    assert materialize_source("memory://sets/two.npz", cache_dir=tmp_path) == cached
    assert "using the cached copy" in capsys.readouterr().err
    from cgan_core import CganRuntimeError

    with pytest.raises(CganRuntimeError, match="never cached"):
        materialize_source("memory://sets/other.npz", cache_dir=tmp_path)


def test_image_datasets_load_from_memory_and_file_urls(memory, tmp_path, monkeypatch):
    from cgan_core.session import load_data, resolve_run

    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path / "cache"))
    images = (np.arange(4 * 8 * 8) % 256).astype(np.uint8).reshape(4, 8, 8)
    memory.pipe("/arrays/digits.npz", _npz_bytes(images))
    resolved = resolve_run("image", "dcgan", "memory://arrays/digits.npz")
    data = load_data(resolved)
    assert len(data) == 4 and tuple(data.info["shape"]) == (1, 32, 32)
    assert data.source == "memory://arrays/digits.npz"
    assert list((tmp_path / "cache" / "sources").rglob("digits.npz"))
    local = tmp_path / "arrays.npz"
    local.write_bytes(_npz_bytes(images))
    from_file = load_data(resolve_run("image", "dcgan", f"file://{local}"))
    assert from_file.fingerprint == data.fingerprint  # the same pixels either way
    memory.pipe("/pngs/a/1.png", _png_bytes(0))
    memory.pipe("/pngs/b/2.png", _png_bytes(255))
    folder = load_data(resolve_run("image", "dcgan", "memory://pngs/"))
    assert len(folder) == 2 and folder.info["class_names"] == ["a", "b"]


def test_text_video_and_audio_sources_load_from_urls(memory, tmp_path, monkeypatch):
    """Every modality takes URL sources: the core fetches them before the modality's opener runs."""
    import soundfile

    from cgan_core.session import load_data, resolve_run

    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path / "cache"))
    words = [f"w{i}" for i in range(40)]
    lines = [" ".join(words[(i * 7 + j) % 40] for j in range(6)) for i in range(50)]
    memory.pipe("/corpus/news.txt", ("\n".join(lines) + "\n").encode())
    text = load_data(resolve_run("text", "seqgan", "memory://corpus/news.txt", set_options=["data.min_vocab=10"]))
    assert len(text) == 45 and text.source == "memory://corpus/news.txt"  # 10% held out for nll-test

    clips = np.random.default_rng(0).integers(0, 256, size=(3, 8, 32, 32), dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, clips)
    memory.pipe("/clips/moving.npy", buffer.getvalue())
    video = load_data(resolve_run("video", "tgan", "memory://clips/moving.npy",
                                  set_options=["data.resolution=32", "data.frames=8"]))
    assert len(video) == 3 and video.source == "memory://clips/moving.npy"

    for name, pitch in (("low/a.wav", 300), ("high/b.wav", 2000)):
        wave = np.sin(2 * np.pi * pitch * np.arange(16000) / 16000).astype(np.float32) * 0.5
        sound = io.BytesIO()
        soundfile.write(sound, wave, 16000, format="WAV", subtype="PCM_16")
        memory.pipe(f"/sounds/{name}", sound.getvalue())
    audio = load_data(resolve_run("audio", "wavegan", "memory://sounds/"))
    assert len(audio) >= 2 and audio.source == "memory://sounds/"
    assert audio.info.get("class_names") == ["high", "low"]

    with pytest.raises(UsageError, match="nowhere/x.txt.* does not exist"):
        load_data(resolve_run("text", "seqgan", "memory://nowhere/x.txt"))
