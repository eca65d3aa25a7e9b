"""``cgan serve`` on the command line: argument checks, and a real server process on a port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
from serve_helpers import environ_without_keys, tiny_dcgan_run

from cgan_core.serve.auth import hash_key


def test_refuses_non_loopback_without_keys(cli, monkeypatch):
    monkeypatch.delenv("CGAN_API_KEYS", raising=False)
    result = cli("serve", str(tiny_dcgan_run()), "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "refusing to serve on '0.0.0.0' without API keys" in result.output


def test_rejects_bad_runs_names_and_limits(cli, tmp_path):
    assert "needs at least one RUN_DIR" in cli("serve").output
    not_a_run = cli("serve", str(tmp_path))
    assert not_a_run.exit_code == 2 and "is not a cgan run directory" in not_a_run.output
    run = str(tiny_dcgan_run())
    twice = cli("serve", run, run)
    assert twice.exit_code == 2 and "NAME=RUN_DIR" in twice.output
    assert "model name 'bad name'" in cli("serve", f"bad name={run}").output
    assert "--max-n must be positive" in cli("serve", run, "--max-n", "0").output
    bad_keys = tmp_path / "keys"
    bad_keys.write_text("plain-key\n")
    assert "expected a SHA-256 hex digest" in cli("serve", run, "--api-keys-file", str(bad_keys)).output


def test_hash_key_prints_the_digest_for_a_keys_file(cli):
    result = cli("serve", "--hash-key", "s3cret")
    assert result.exit_code == 0 and result.output.strip() == hash_key("s3cret")


def test_cgan_serve_process_answers_on_its_port(tmp_path):
    """``cgan serve D --port P`` as a user starts it: API keys from CGAN_API_KEYS, one worker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**environ_without_keys(), "CGAN_API_KEYS": "k1,k2"}
    process = subprocess.Popen([sys.executable, "-m", "cgan_core.cli", "serve", f"digits={tiny_dcgan_run()}",
                                "--port", str(port), "--log-level", "warning"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "cgan serve did not become ready"
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"{base}/v1/models").status_code == 401
        generated = httpx.post(f"{base}/v1/models/digits/generate", json={"n": 2, "seed": 1},
                               headers={"Authorization": "Bearer k2"}, timeout=30)
        assert generated.status_code == 200 and len(generated.json()["items"]) == 2
        schema = httpx.get(f"{base}/openapi.json").json()
        assert {"/healthz", "/readyz", "/v1/models", "/v1/models/{name}/generate", "/v1/content/{content_id}",
                "/gallery"} <= set(schema["paths"])
    finally:
        process.terminate()
        process.wait(20)
