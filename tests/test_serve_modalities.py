"""``cgan serve`` for the other built-in modalities: SeqGAN text, TGAN video, WaveGAN audio."""

from __future__ import annotations

import asyncio
import base64
import functools
import tempfile
from pathlib import Path

import httpx
import pytest
from serve_helpers import start_server

COMMON = ["--device", "cpu", "--no-progress", "--max-steps", "1", "--set", "train.tensorboard=false",
          "--set", "train.sample_every=0", "--set", "train.n_preview=2", "--set", "train.batch_size=4"]
TINY = {
    "text": ["-m", "text", "-p", "seqgan", "--set", "data.max_items=32", "--set", "model.g_embed_dim=8",
             "--set", "model.g_hidden_dim=8", "--set", "model.d_embed_dim=8", "--set", "model.d_filter_sizes=[2]",
             "--set", "model.d_num_filters=[4]", "--set", "phases.mle.epochs=1",
             "--set", "phases.pretrain_d.rounds=0", "--set", "phases.adversarial.iterations=0"],
    "video": ["-m", "video", "-p", "tgan", "--set", "model.base_channels=4", "--set", "model.latent_dim=8",
              "--set", "model.frame_latent_dim=8", "--set", "data.resolution=32", "--set", "data.frames=4",
              "--set", "data.size=16", "--set", "data.reference_size=8"],
    "audio": ["-m", "audio", "-p", "wavegan", "--dataset", "tones", "--set", "model.model_size=2",
              "--set", "model.latent_dim=8", "--set", "data.length=1024", "--set", "data.sample_rate=8000",
              "--set", "data.max_items=16", "--set", "train.n_critic=1"],
}


@functools.lru_cache(maxsize=None)
def tiny_run(modality: str) -> Path:
    """A one-step run of the modality's built-in model with tiny networks."""
    from typer.testing import CliRunner

    from cgan_core.cli import build_app

    out = Path(tempfile.mkdtemp(prefix=f"cgan-serve-{modality}-")) / modality
    result = CliRunner().invoke(build_app(), ["run", *TINY[modality], *COMMON, "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv, _ = start_server({m: tiny_run(m) for m in TINY}, max_wait_ms=100,
                          content_dir=str(tmp_path_factory.mktemp("modalities-content")))
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _generate(client, model, **body):
    response = client.post(f"/v1/models/{model}/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_models_say_how_they_are_served(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert {name: (m["modality"], m["plugin"], m["formats"]) for name, m in models.items()} == {
        "text": ("text", "seqgan", ["txt", "jsonl"]), "video": ("video", "tgan", ["mp4", "gif"]),
        "audio": ("audio", "wavegan", ["wav", "flac"])}
    # Whether a model's requests share generator calls is decided by the probe on this machine's
    # kernels (SeqGAN: inverse-CDF sampling from per-sequence uniforms; TGAN and WaveGAN: dense
    # first layers, which need at least two rows per call); the note says which way it went.
    for model in models.values():
        note = model["batching_note"]
        assert ("bit-identical" in note and "rows" in note) if model["batching"] else "one model.sample call" in note


def test_text_comes_back_as_strings_one_sample_per_line(client):
    body = _generate(client, "text", n=3, seed=4)
    [item] = body["items"]
    assert item["media_type"] == "text/plain; charset=utf-8" and item["data_base64"] is None
    assert len(item["texts"]) == 3 and all(line.strip() for line in item["texts"])
    assert item["text"] == "".join(line + "\n" for line in item["texts"])
    records = _generate(client, "text", n=2, seed=4, format="jsonl")["items"][0]
    assert records["media_type"] == "application/x-ndjson" and len(records["texts"]) == 2
    assert '"seed": 4' in records["texts"][0]


def test_video_and_audio_come_back_as_base64_files(client):
    videos = _generate(client, "video", n=2, seed=1)["items"]
    assert [v["media_type"] for v in videos] == ["video/mp4"] * 2
    assert base64.b64decode(videos[0]["data_base64"])[4:8] == b"ftyp"  # an MP4 container
    assert base64.b64decode(_generate(client, "video", n=1, seed=1, format="gif")["items"][0]["data_base64"])[:4] == b"GIF8"
    sounds = _generate(client, "audio", n=2, seed=1)["items"]
    assert [s["media_type"] for s in sounds] == ["audio/wav"] * 2
    wav = base64.b64decode(sounds[0]["data_base64"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert base64.b64decode(_generate(client, "audio", n=1, format="flac")["items"][0]["data_base64"])[:4] == b"fLaC"


@pytest.mark.parametrize("model", ["text", "video", "audio"])
def test_concurrent_requests_give_the_bytes_of_single_requests(server, client, model):
    requests = [{"n": 1 + i % 2, "seed": 40 + i} for i in range(5)]

    async def concurrently():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as ac:
            return await asyncio.gather(*(ac.post(f"/v1/models/{model}/generate", json=r) for r in requests))

    together = [r.json() for r in asyncio.run(concurrently())]
    shared = max(t["batch"]["requests"] for t in together) > 1
    assert shared == client.get(f"/v1/models/{model}").json()["batching"]
    for request, shared in zip(requests, together):
        alone = _generate(client, model, **request)
        assert [i["sha256"] for i in alone["items"]] == [i["sha256"] for i in shared["items"]]


def test_stored_text_video_and_audio_are_served_and_shown(client):
    expected = {"text": "text/plain; charset=utf-8", "video": "video/mp4", "audio": "audio/wav"}
    for model, media_type in expected.items():
        stored = _generate(client, model, n=2, seed=9, store=True)["items"]
        fetched = client.get(stored[0]["url"])
        assert fetched.status_code == 200 and fetched.headers["content-type"] == media_type
    page = client.get("/gallery").text
    assert page.count('<video controls') >= 2 and page.count('<audio controls') >= 2
    assert '<ol class="texts"><li' in page
