"""Load benchmark of ``cgan serve``: requests/s and p50/p99 latency with request batching on and off.

Starts ``cgan serve`` twice on a loopback port (``--batching`` and ``--no-batching``) for the same
DCGAN run, drives each with 1, 8 and 32 concurrent keep-alive clients for a bounded time, and
prints JSON with the throughput ratio. The reference run is plain PyTorch in this process: the
same generator called once per sample versus once per 32-sample batch, with no HTTP at all.

    .venv/bin/python benchmarks/serve_load.py                 # trains a 2-step default DCGAN first
    .venv/bin/python benchmarks/serve_load.py --run runs/digits --duration 5

The load generator shares the machine with the server; it uses raw asyncio streams (not an HTTP
library) so that its own cost per request stays small next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
CGAN = [sys.executable, "-m", "cgan_core.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_run(out: Path, steps: int, base_channels: int) -> Path:
    """A DCGAN (32x32 grey digits; base_channels 64 is the default size) trained for a few steps."""
    subprocess.run([*CGAN, "run", "-m", "image", "-p", "dcgan", "--max-steps", str(steps), "--out", str(out),
                    "--device", "cpu", "--no-progress", "--set", "train.batch_size=16",
                    "--set", f"model.base_channels={base_channels}", "--set", "train.tensorboard=false"],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for this benchmark."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                          + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(port: int, model: str, clients: int, duration: float, n: int) -> dict[str, Any]:
    """``clients`` closed-loop clients posting generate requests for ``duration`` seconds."""
    latencies: list[float] = []
    batch_sizes: list[int] = []
    errors = 0
    stop_at = time.perf_counter() + duration
    path = f"/v1/models/{model}/generate"

    async def client(index: int) -> None:
        nonlocal errors
        connection = Connection(port)
        seed = index * 1_000_000
        try:
            while time.perf_counter() < stop_at:
                seed += 1
                started = time.perf_counter()
                status, body = await connection.post(path, json.dumps({"n": n, "seed": seed}).encode())
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
                else:
                    batch_sizes.append(json.loads(body)["batch"]["requests"])
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000.0  # noqa: E731
    return {"requests": len(latencies), "errors": errors, "seconds": round(elapsed, 3),
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(quantile(0.50), 2), "p99_ms": round(quantile(0.99), 2),
            "mean_requests_per_generator_call": round(statistics.fmean(batch_sizes), 2) if batch_sizes else None}


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds of a process (Linux ``/proc``), ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(run: Path, port: int, batching: bool, max_batch: int, max_wait_ms: float,
                 torch_threads: Optional[int]) -> subprocess.Popen:
    command = [*CGAN, "serve", f"bench={run}", "--port", str(port), "--log-level", "warning",
               "--max-batch-size", str(max_batch), "--max-wait-ms", str(max_wait_ms),
               "--batching" if batching else "--no-batching"]
    if torch_threads:
        command += ["--torch-threads", str(torch_threads)]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 180.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cgan serve exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("cgan serve did not become ready")


def bench_server(run: Path, batching: bool, levels: list[int], duration: float, n: int, max_batch: int,
                 max_wait_ms: float, torch_threads: Optional[int]) -> dict[str, Any]:
    port = free_port()
    process = start_server(run, port, batching, max_batch, max_wait_ms, torch_threads)
    try:
        wait_ready(port, process)
        asyncio.run(drive(port, "bench", 4, 1.0, n))  # warm-up: first calls allocate and pick kernels
        results = {}
        for level in levels:
            cpu_before = cpu_seconds(process.pid)
            result = asyncio.run(drive(port, "bench", level, duration, n))
            cpu_after = cpu_seconds(process.pid)
            if cpu_before is not None and cpu_after is not None and result["requests"]:
                # CPU the server spent per request: unlike requests/s, barely moved by other load.
                result["server_cpu_ms_per_request"] = round((cpu_after - cpu_before) * 1000 / result["requests"], 3)
            results[str(level)] = result
        return results
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def reference_direct(run: Path, torch_threads: Optional[int], repeats: int = 64, batch: int = 32) -> dict[str, Any]:
    """Plain PyTorch: the served generator called per sample vs per batch (no HTTP, no PNG); the
    ratio is the most that batching can gain on compute alone."""
    import torch

    from cgan_core.session import load_run

    if torch_threads:
        torch.set_num_threads(torch_threads)
    loaded = load_run(run, None, "cpu")
    model, module = loaded.model, loaded.sample_generator
    latents = torch.randn(repeats, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        model.generate(latents[:batch], generator_module=module)
        started = time.perf_counter()
        for row in latents:
            model.generate(row[None], generator_module=module)
        single = repeats / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, repeats, batch):
            model.generate(latents[start:start + batch], generator_module=module)
        batched = repeats / (time.perf_counter() - started)
    return {"samples_per_s_one_per_call": round(single, 1), f"samples_per_s_{batch}_per_call": round(batched, 1),
            "ratio": round(batched / single, 2), "torch_threads": torch.get_num_threads()}


def bench_model(run: Path, args: argparse.Namespace, levels: list[int]) -> dict[str, Any]:
    """Batching on and off for one run, the ratio, the goals and the plain-PyTorch reference."""
    options = (levels, args.duration, args.n, args.max_batch_size, args.max_wait_ms, args.torch_threads)
    on = bench_server(run, True, *options)
    off = bench_server(run, False, *options)
    ratio = {level: round(on[level]["requests_per_s"] / max(off[level]["requests_per_s"], 1e-9), 2) for level in on}
    top = str(max(levels))
    return {
        "batching_on": on, "batching_off": off, "throughput_ratio_on_over_off": ratio,
        "goal": {f"ratio_at_{top}_clients_ge_5": ratio[top] >= 5,
                 f"p99_below_250ms_at_{top}_clients_with_batching": on[top]["p99_ms"] < 250},
        "reference_plain_pytorch": reference_direct(run, args.torch_threads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="A DCGAN run directory (default: train them for --base-channels).")
    parser.add_argument("--base-channels", default="64,16",
                        help="DCGAN sizes to train and serve when --run is not given (64 = the default DCGAN).")
    parser.add_argument("--train-steps", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="Seconds per concurrency level.")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--n", type=int, default=1, help="Samples per request.")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--torch-threads", type=int, default=None, help="cgan serve --torch-threads.")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cgan-serve-bench-") as tmp:
        os.environ.setdefault("CGAN_HOME", str(Path(tmp) / "home"))
        if args.run:
            results[str(args.run)] = bench_model(args.run, args, levels)
        else:
            for base in (int(b) for b in args.base_channels.split(",")):
                run = train_run(Path(tmp) / f"dcgan-{base}", args.train_steps, base)
                results[f"dcgan_base_channels_{base}"] = bench_model(run, args, levels)
    print(json.dumps({
        "benchmark": "serve_load", "n_per_request": args.n, "duration_s_per_level": args.duration,
        "cpu_count": os.cpu_count(), "torch_threads": args.torch_threads or "default",
        "max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms, "models": results,
        "note": f"loopback; server and load generator share {os.cpu_count()} cores; DCGAN 32x32x1",
    }, indent=2))


if __name__ == "__main__":
    main()
