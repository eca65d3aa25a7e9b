"""``cgan serve`` over real HTTP: a uvicorn server on a loopback port, driven with httpx."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil

import httpx
import numpy as np
import pytest
from serve_helpers import API_KEY, AUTH, start_server, tiny_dcgan_run

MAX_N = 8


@pytest.fixture(scope="module")
def content_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("served-content")


@pytest.fixture(scope="module")
def server(content_dir):
    """DCGAN served with API keys, batching (a long wait so concurrent requests surely meet) and
    small limits; a second name points at a run without checkpoints (fails to load)."""
    broken = tiny_dcgan_run().parent / "broken"
    if not broken.exists():
        shutil.copytree(tiny_dcgan_run(), broken, ignore=shutil.ignore_patterns("checkpoints"))
    srv, app = start_server({"digits": tiny_dcgan_run(), "broken": broken}, keys=[API_KEY], max_n=MAX_N,
                            max_wait_ms=150, max_batch_size=32, max_body_bytes=2048, content_dir=str(content_dir))
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        yield c


def _png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def test_health_and_readiness_are_open(server):
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == {"digits": "ready", "broken": "failed"}


def test_models_describe_run_checkpoint_and_config(client):
    listing = client.get("/v1/models").json()
    assert listing["max_n"] == MAX_N
    models = {m["name"]: m for m in listing["models"]}
    digits = models["digits"]
    assert (digits["modality"], digits["plugin"], digits["status"]) == ("image", "dcgan", "ready")
    assert digits["checkpoint"] == "step-00000002" and digits["checkpoint_step"] == 2
    assert digits["ema"] is True and digits["batching"] is True and digits["formats"] == ["png"]
    assert digits["config"]["model"]["base_channels"] == 4
    assert digits["plugin_package"].startswith("image (cgan ")
    assert models["broken"]["status"] == "failed" and "checkpoint" in models["broken"]["error"]
    assert client.get("/v1/models/digits").json()["name"] == "digits"


def test_generate_returns_the_seeded_samples_as_png(client):
    import torch

    from cgan_core.session import load_run

    response = client.post("/v1/models/digits/generate", json={"n": 3, "seed": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n"], body["seed"], body["format"], body["stored"]) == (3, 5, "png", False)
    assert [item["media_type"] for item in body["items"]] == ["image/png"] * 3
    pixels = np.stack([_png_pixels(base64.b64decode(item["data_base64"])) for item in body["items"]])
    assert pixels.shape == (3, 32, 32) and pixels.dtype == np.uint8
    # The same samples as sampling the run directly with that seed (EMA weights); the server's
    # batch-invariant kernels may differ from the default ones in the last float bit only.
    loaded = load_run(tiny_dcgan_run(), None, "cpu")
    direct = loaded.model.sample(3, generator=torch.Generator().manual_seed(5), generator_module=loaded.sample_generator)
    expected = ((direct.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].numpy()
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1
    again = client.post("/v1/models/digits/generate", json={"n": 3, "seed": 5}).json()
    assert [i["sha256"] for i in again["items"]] == [i["sha256"] for i in body["items"]]
    other = client.post("/v1/models/digits/generate", json={"n": 1, "seed": 6}).json()
    assert other["items"][0]["sha256"] != body["items"][0]["sha256"]
    chosen = client.post("/v1/models/digits/generate", json={}).json()  # seed chosen and reported
    replay = client.post("/v1/models/digits/generate", json={"seed": chosen["seed"]}).json()
    assert replay["items"][0]["sha256"] == chosen["items"][0]["sha256"]


def test_concurrent_requests_share_a_generator_call_and_keep_their_bytes(server, client):
    requests = [{"n": 1 + i % 3, "seed": 100 + i} for i in range(10)]

    async def concurrently():
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60) as ac:
            return await asyncio.gather(*(ac.post("/v1/models/digits/generate", json=r) for r in requests))

    batched = [r.json() for r in asyncio.run(concurrently())]
    assert max(b["batch"]["requests"] for b in batched) > 1, [b["batch"] for b in batched]
    for request, together in zip(requests, batched):
        alone = client.post("/v1/models/digits/generate", json=request).json()
        assert alone["batch"]["requests"] == 1
        assert [i["sha256"] for i in alone["items"]] == [i["sha256"] for i in together["items"]]
        assert [i["data_base64"] for i in alone["items"]] == [i["data_base64"] for i in together["items"]]


def test_no_batching_serves_the_same_bytes_one_call_per_request(client):
    srv, _ = start_server({"digits": tiny_dcgan_run()}, batching=False, open_store=False)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as plain:
            model = plain.get("/v1/models/digits").json()
            assert model["batching"] is False and "--no-batching" in model["batching_note"]
            unbatched = plain.post("/v1/models/digits/generate", json={"n": 2, "seed": 77}).json()
    finally:
        srv.stop()
    batched = client.post("/v1/models/digits/generate", json={"n": 2, "seed": 77}).json()
    assert [i["sha256"] for i in unbatched["items"]] == [i["sha256"] for i in batched["items"]]


def test_api_key_required_and_accepted(server):
    url = f"{server.url}/v1/models"
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Basic {API_KEY}"}).status_code == 401
    assert httpx.post(f"{server.url}/v1/models/digits/generate", json={"n": 1}).status_code == 401
    assert httpx.get(url, headers=AUTH).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"n": 0}, "n"), ({"n": MAX_N + 1}, "n"), ({"n": "many"}, "n"), ({"n": 1.5}, "n"),
    ({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"), ({"format": "gif"}, "format"),
    ({"format": "../x"}, "format"), ({"store": "maybe"}, "store"), ({"colour": "red"}, "colour"),
])
def test_invalid_input_is_a_422_naming_the_field(client, body, field):
    response = client.post("/v1/models/digits/generate", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["detail"][0]["loc"] == ["body", field]
    assert payload["message"].startswith(f"body.{field}: ")


def test_malformed_bodies_unknown_models_and_oversize(client):
    not_json = client.post("/v1/models/digits/generate", content=b"{n: 1", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and "JSON" in not_json.json()["message"]
    assert client.post("/v1/models/digits/generate").status_code == 422  # no body at all
    unknown = client.post("/v1/models/digitz/generate", json={"n": 1})
    assert unknown.status_code == 404 and "served: broken, digits" in unknown.json()["detail"]
    assert client.get("/v1/models/nope").status_code == 404
    broken = client.post("/v1/models/broken/generate", json={"n": 1})
    assert broken.status_code == 503 and "failed to load" in broken.json()["detail"]
    large = client.post("/v1/models/digits/generate", content=b" " * 4096, headers={"content-type": "application/json"})
    assert large.status_code == 413 and "2048 bytes" in large.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(8):
            yield b" " * 512

    chunked = client.post("/v1/models/digits/generate", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_stored_content_is_registered_and_served_with_its_media_type(client, content_dir):
    stored = client.post("/v1/models/digits/generate", json={"n": 2, "seed": 21, "store": True})
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["stored"] is True
    inline = client.post("/v1/models/digits/generate", json={"n": 2, "seed": 21}).json()
    for item, same in zip(body["items"], inline["items"]):
        assert item["data_base64"] is None and item["url"] == f"/v1/content/{item['id']}"
        served = client.get(item["url"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert served.content == base64.b64decode(same["data_base64"])
        assert item["sha256"] == same["sha256"]
    files = sorted(p.name for p in (content_dir / "digits" / "step-00000002").iterdir())
    assert files == ["seed21-sample-000000.png", "seed21-sample-000001.png"]

    from cgan_core.content import ContentStore
    from cgan_core.db.database import Database

    with Database() as db:  # the rows say where the content came from
        rows = {str(i.id): i for i in ContentStore(db).list(seed=21)}
    row = rows[body["items"][1]["id"]]
    assert (row.modality, row.checkpoint, row.sample_index, row.run) == ("image", "step-00000002", 1, "digits")


def test_content_requests_never_leave_the_content_directory(client, tmp_path):
    from cgan_core.content import ContentStore, StagedFile
    from cgan_core.db.database import Database

    with Database() as db:  # content registered elsewhere (e.g. by 'cgan generate --out /tmp/x')
        with ContentStore(db).batch(tmp_path / "elsewhere") as batch:
            secret = batch.staging / "secret.txt"
            secret.write_text("not for the API")
            [item] = batch.commit([StagedFile(path=secret, modality="image")])
    assert client.get(f"/v1/content/{item.id}").status_code == 404
    assert client.get("/v1/content/987654321").status_code == 404
    for path in ("/v1/content/..%2F..%2Fetc%2Fpasswd", "/v1/content/1%2F..%2F..", "/v1/content/-1",
                 "/v1/content/%2Fetc%2Fpasswd"):
        assert client.get(path).status_code in (404, 422), path
    assert client.get("/v1/content/../../etc/passwd").status_code == 404


def test_loading_models_answer_503_and_slow_requests_504():
    from cgan_core.serve import BackgroundServer, ServedRun, ServeSettings, create_app
    from cgan_core.serve.pool import ModelPool

    class HeldPool(ModelPool):  # loads only when the test says so
        def start_loading(self) -> None:
            pass

    settings = ServeSettings(runs=[ServedRun("digits", str(tiny_dcgan_run()))], request_timeout_s=0.0001,
                             db_url="none")  # the metadata database switched off: no content repository
    pool = HeldPool(settings)
    with BackgroundServer(create_app(settings, pool=pool)) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        loading = httpx.post(f"{server.url}/v1/models/digits/generate", json={"n": 1})
        assert loading.status_code == 503 and loading.headers["retry-after"] == "2"
        pool.load_all()
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        slow = httpx.post(f"{server.url}/v1/models/digits/generate", json={"n": 8})
        assert slow.status_code == 504 and "timeout" in slow.json()["detail"]
        store = httpx.post(f"{server.url}/v1/models/digits/generate", json={"n": 1, "store": True})
        assert store.status_code == 503 and "content repository is unavailable" in store.json()["detail"]
        assert "switched off" in store.json()["detail"]
