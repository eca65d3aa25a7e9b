"""Pieces of ``cgan serve`` without a server: batcher, API keys, listen policy, batch invariance."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cgan_core.errors import UsageError
from cgan_core.serve.auth import ApiKeys, check_listen_policy, hash_key, is_loopback, read_digest_file
from cgan_core.serve.batcher import RequestBatcher


def _run_batcher(jobs, **options):
    """Submit ``jobs`` (sizes) concurrently; returns (results, calls) where calls are the batches seen."""
    calls: list[list[int]] = []
    gate = threading.Event()

    def process(batch):
        gate.wait(5)  # hold the first call so that the rest queue up behind it
        calls.append(list(batch))
        return [ValueError(f"bad {j}") if j == 13 else j * 10 for j in batch]

    async def main():
        with ThreadPoolExecutor(1) as executor:
            batcher = RequestBatcher(process, executor, size_of=lambda j: j, **options)
            tasks = [asyncio.ensure_future(batcher.submit(j)) for j in jobs]
            await asyncio.sleep(0.05)
            gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await batcher.close()
            return results

    return asyncio.run(main()), calls


def test_batcher_gathers_up_to_the_batch_size_and_keeps_order():
    results, calls = _run_batcher([1, 2, 3, 4, 5, 6], max_batch_size=6, max_wait_s=0.01)
    assert results == [10, 20, 30, 40, 50, 60]
    assert all(sum(call) <= 6 or len(call) == 1 for call in calls)
    assert [j for call in calls for j in call] == [1, 2, 3, 4, 5, 6]
    assert len(calls) < 6  # some requests shared a call


def test_batcher_one_job_per_call_when_batching_is_off():
    results, calls = _run_batcher([1, 1, 1, 1], max_batch_size=64, max_jobs=1)
    assert results == [10, 10, 10, 10] and calls == [[1], [1], [1], [1]]


def test_batcher_oversized_job_runs_alone_and_errors_stay_with_their_job():
    results, calls = _run_batcher([13, 1, 2], max_batch_size=4, max_wait_s=0.01)
    assert isinstance(results[0], ValueError) and results[1:] == [10, 20]
    assert [13] in calls


def test_batcher_withdraws_a_job_whose_caller_gave_up():
    seen: list[list[int]] = []
    gate = threading.Event()

    def process(batch):
        gate.wait(5)
        seen.append(list(batch))
        return batch

    async def main():
        with ThreadPoolExecutor(1) as executor:
            batcher = RequestBatcher(process, executor, max_batch_size=1)
            first = asyncio.ensure_future(batcher.submit(1))
            await asyncio.sleep(0.02)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(batcher.submit(2), 0.01)  # queued behind the held call
            gate.set()
            assert await first == 1
            assert await batcher.submit(3) == 3
            await batcher.close()

    asyncio.run(main())
    assert seen == [[1], [3]]


def test_api_keys_from_environment_and_digest_file(tmp_path):
    keys_file = tmp_path / "keys.sha256"
    keys_file.write_text(f"# team keys\n{hash_key('from-file')}\n\nsha256:{hash_key('prefixed').upper()}  # ci\n")
    keys = ApiKeys.load(str(keys_file), environ={"CGAN_API_KEYS": " a1 , b2,"})
    assert len(keys) == 4 and keys.enabled
    for good in ("a1", "b2", "from-file", "prefixed"):
        assert keys.verify(good)
    for bad in ("", None, "a", "a1 ", hash_key("from-file")):
        assert not keys.verify(bad)
    assert not ApiKeys.load(environ={}).enabled


def test_digest_file_rejects_plain_keys_with_the_line_number(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{hash_key('x')}\nmy-plain-secret\n")
    with pytest.raises(UsageError, match=r"keys:2: expected a SHA-256 hex digest"):
        read_digest_file(keys_file)
    with pytest.raises(UsageError, match="cannot read API keys file"):
        read_digest_file(tmp_path / "missing")


def test_listen_policy_needs_keys_beyond_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.org")
    check_listen_policy("127.0.0.1", ApiKeys(), insecure_no_auth=False)
    check_listen_policy("0.0.0.0", ApiKeys([hash_key("k")]), insecure_no_auth=False)
    check_listen_policy("0.0.0.0", ApiKeys(), insecure_no_auth=True)
    with pytest.raises(UsageError, match="refusing to serve on '0.0.0.0' without API keys"):
        check_listen_policy("0.0.0.0", ApiKeys(), insecure_no_auth=False)


def _runner(generate, max_batch_size=8):
    """A SampleRunner around a toy model whose generator is ``generate(latent)``."""
    from types import SimpleNamespace

    import torch

    from cgan_core.model import GANModel
    from cgan_core.serve.generation import SampleRunner

    class Toy(GANModel):
        def __init__(self):
            super().__init__()
            self.generator = torch.nn.Identity()
            self.discriminator = torch.nn.Linear(1, 1)
            self.calls = []

        def sample_latent(self, n, generator=None):
            return self.randn(n, 3, generator=generator)

        def generate(self, latent, generator_module=None):
            self.calls.append(latent.shape[0])
            return generate(latent)

    model = Toy()
    loaded = SimpleNamespace(model=model, sample_generator=model.generator, resolved=SimpleNamespace(modality=None),
                             run=SimpleNamespace(path="run"), checkpoint="step-1", data_info={})
    return SampleRunner(loaded, max_batch_size=max_batch_size), model


def test_probe_accepts_row_independent_generators_and_buckets_their_batches():
    import torch

    from cgan_core.serve.generation import GenerationJob, seeded

    runner, model = _runner(lambda latent: torch.tanh(2 * latent))
    assert runner.batching and runner.kernels == "onednn" and runner.buckets == [1, 2, 4, 8]
    assert "1,2,4,8 rows" in runner.batching_reason
    model.calls.clear()
    jobs = [GenerationJob(2, 1), GenerationJob(3, 2)]
    first, second = runner.samples(jobs)
    assert model.calls == [8]  # 5 rows padded to the next bucket, in one call
    assert torch.equal(second, torch.tanh(2 * torch.randn(3, 3, generator=seeded(2))))
    model.calls.clear()
    (big,) = runner.samples([GenerationJob(19, 5)])  # more rows than the largest bucket
    assert model.calls == [8, 8, 4] and big.shape == (19, 3)
    assert torch.equal(big, torch.tanh(2 * torch.randn(19, 3, generator=seeded(5))))


def test_probe_refuses_generators_whose_rows_see_each_other():
    runner, _ = _runner(lambda latent: latent - latent.mean(0, keepdim=True))
    assert not runner.batching and not runner.latent_path and runner.kernels is None
    assert "batch companions" in runner.batching_reason and "model.sample" in runner.batching_reason


def test_dcgan_generator_passes_the_probe_on_this_machine():
    """What batching relies on, for the reference model: a DCGAN generator with trained-looking
    batch-norm statistics gives every row the same bits in batches of 1 to 64."""
    from types import SimpleNamespace

    import torch

    from cgan_core.serve.generation import SampleRunner
    from cgan_image.dcgan import DCGAN

    config = SimpleNamespace(model=SimpleNamespace(latent_dim=16, base_channels=16, spectral_norm=False),
                             data=SimpleNamespace(channels=1, resolution=32))
    torch.manual_seed(0)
    model = DCGAN(config, {}).eval()
    for module in model.generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    loaded = SimpleNamespace(model=model, sample_generator=model.generator, resolved=SimpleNamespace(modality=None),
                             run=SimpleNamespace(path="run"), checkpoint="step-1", data_info={})
    runner = SampleRunner(loaded, max_batch_size=64)
    assert runner.batching, runner.batching_reason
    assert torch.backends.mkldnn.enabled  # the probe leaves the process's kernel switch as it was


def test_models_that_override_sample_are_not_batched():
    import torch

    from cgan_core.model import GANModel
    from cgan_core.serve.generation import supports_latent_batching

    class TokenModel(GANModel):
        def sample(self, n, generator=None, generator_module=None, batch_size=256):
            return torch.zeros(n, 3)

    class Declared(TokenModel):
        batchable_sampling = True

    class Coupled(GANModel):
        batchable_sampling = False

    assert supports_latent_batching(GANModel())
    assert not supports_latent_batching(TokenModel())
    assert supports_latent_batching(Declared())
    assert not supports_latent_batching(Coupled())


def test_batcher_serves_a_lone_request_without_waiting_for_company():
    import time

    calls: list[list[int]] = []

    def process(batch):
        calls.append(list(batch))
        return batch

    async def main():
        with ThreadPoolExecutor(1) as executor:
            batcher = RequestBatcher(process, executor, max_batch_size=8, max_wait_s=1.0)
            started = time.perf_counter()
            assert await batcher.submit(1) == 1
            lone = time.perf_counter() - started
            assert await batcher.submit(2) == 2
            together = await asyncio.gather(batcher.submit(3), batcher.submit(4))  # arrive together
            await batcher.close()
            return lone, together

    lone, together = asyncio.run(main())
    assert lone < 0.5 and together == [3, 4]
    assert calls == [[1], [2], [3, 4]]
