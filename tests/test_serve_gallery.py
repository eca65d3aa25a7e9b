"""The gallery in a real browser: headless Chromium loads /gallery and shows the stored images."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from serve_helpers import API_KEY, AUTH, start_server, tiny_dcgan_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-component-update", "--disable-sync", "--window-size=1280,1600"]


class Browser:
    """Headless Chromium driven over the DevTools protocol (loopback only)."""

    def __init__(self, url: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="cgan-chromium-")
        self.process = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert self.process.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        from websockets.sync.client import connect

        self._connection = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.socket = self._connection.__enter__()
        self.next_id = 0

    def evaluate(self, expression: str):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                                     "params": {"expression": expression, "returnByValue": True}}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.next_id:
                return message["result"]["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def close(self) -> None:
        self._connection.__exit__(None, None, None)
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv, _ = start_server({"digits": tiny_dcgan_run()}, keys=[API_KEY], public_gallery=True,
                          content_dir=str(tmp_path_factory.mktemp("gallery-content")))
    yield srv
    srv.stop()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (Debian package 'chromium')")
def test_gallery_shows_the_stored_images_in_chromium(server):
    stored = httpx.post(f"{server.url}/v1/models/digits/generate", json={"n": 5, "seed": 3, "store": True},
                        headers=AUTH, timeout=60).json()
    ids = [item["id"] for item in stored["items"]]
    # Keys are required for the API, but --public-gallery lets a browser (no bearer token) in.
    assert httpx.post(f"{server.url}/v1/models/digits/generate", json={"n": 1}).status_code == 401
    browser = Browser(f"{server.url}/gallery")
    try:
        browser.wait_for("location.pathname === '/gallery' && document.readyState === 'complete' && "
                         "document.images.length > 0 && Array.from(document.images).every(i => i.complete)")
        images = browser.evaluate("Array.from(document.querySelectorAll('section#model-digits img'))"
                                  ".map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight, i.width])")
        heading = browser.evaluate("document.querySelector('section#model-digits h2').textContent")
    finally:
        browser.close()
    assert heading == "digits"
    shown = {src: (w, h, width) for src, w, h, width in images}
    for content_id in ids:  # decoded by the browser at the model's 32x32, displayed at 96 px
        assert shown[f"/v1/content/{content_id}"] == (32, 32, 96)
