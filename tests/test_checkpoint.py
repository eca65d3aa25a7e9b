"""Checkpoints: round trip without pickle, corruption detection, fallback, pruning, atomicity."""

from __future__ import annotations

import json

import pytest
import torch

from cgan_core import checkpoint as ckpt
from cgan_core.errors import CganRuntimeError


def _payload(scale: float = 1.0):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return {
        "model": {k: v * scale for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "python": (3, tuple(range(5)), None)},
        "meta": {"step": 3, "nan": float("nan"), "list": [1, "a", None]},
    }


def _assert_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b) and a.dtype == b.dtype
    elif isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _assert_equal(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


def test_round_trip_restores_every_value_and_type(tmp_path):
    payload = _payload()
    path = ckpt.write_checkpoint(tmp_path, "step-00000003", payload, {"step": 3})
    loaded = ckpt.read_checkpoint(path)
    assert loaded.step == 3
    _assert_equal(payload, loaded.restore())
    # optimiser state keeps its integer keys and loads into a fresh optimiser
    model = torch.nn.Linear(3, 2)
    torch.optim.Adam(model.parameters()).load_state_dict(loaded.restore()["optimizer"])


def test_checkpoint_files_are_safetensors_and_json_only(tmp_path):
    path = ckpt.write_checkpoint(tmp_path, "step-00000001", _payload(), {"step": 1})
    assert sorted(p.name for p in path.iterdir()) == ["state.json", "tensors.safetensors"]
    json.loads((path / "state.json").read_text())  # plain JSON, nothing to unpickle


def test_corrupt_latest_falls_back_to_previous_good_one(tmp_path, capsys):
    for step in (10, 20):
        ckpt.write_checkpoint(tmp_path, ckpt.step_dir_name(step), _payload(step), {"step": step})
        ckpt.set_latest(tmp_path, ckpt.step_dir_name(step))
    tensor_file = tmp_path / "step-00000020" / "tensors.safetensors"
    data = tensor_file.read_bytes()
    tensor_file.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    loaded = ckpt.load_latest_good(tmp_path)
    assert loaded is not None and loaded.step == 10
    assert "step-00000020" in capsys.readouterr().err
    with pytest.raises(CganRuntimeError, match="corrupt"):
        ckpt.read_checkpoint(tmp_path / "step-00000020")


def test_bit_flip_is_detected_by_the_recorded_hash(tmp_path):
    path = ckpt.write_checkpoint(tmp_path, "step-00000001", _payload(), {"step": 1})
    tensor_file = path / "tensors.safetensors"
    data = bytearray(tensor_file.read_bytes())
    data[-1] ^= 0xFF
    tensor_file.write_bytes(bytes(data))
    with pytest.raises(CganRuntimeError, match="does not match its sha256"):
        ckpt.read_checkpoint(path)


def test_no_good_checkpoint_is_a_clear_error(tmp_path):
    path = ckpt.write_checkpoint(tmp_path, "step-00000001", _payload(), {"step": 1})
    (path / "state.json").write_text("{not json")
    with pytest.raises(CganRuntimeError, match="no loadable checkpoint"):
        ckpt.load_latest_good(tmp_path, warn=False)
    assert ckpt.load_latest_good(tmp_path / "empty", warn=False) is None


def test_prune_keeps_the_last_k_and_the_latest(tmp_path):
    for step in (1, 2, 3, 4):
        ckpt.write_checkpoint(tmp_path, ckpt.step_dir_name(step), {"x": torch.zeros(1)}, {"step": step})
    ckpt.set_latest(tmp_path, ckpt.step_dir_name(4))
    ckpt.prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in ckpt.list_step_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]


def test_rewriting_a_named_checkpoint_replaces_it_and_leaves_no_temporaries(tmp_path):
    ckpt.write_checkpoint(tmp_path, "best", {"x": torch.zeros(1)}, {"step": 1})
    ckpt.write_checkpoint(tmp_path, "best", {"x": torch.ones(1)}, {"step": 2})
    assert ckpt.read_checkpoint(tmp_path / "best").restore()["x"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_half_written_temporaries_are_cleaned(tmp_path):
    (tmp_path / ".tmp-step-00000005-123").mkdir()
    (tmp_path / ".tmp-step-00000005-123" / "tensors.safetensors").write_bytes(b"partial")
    ckpt.clean_temporaries(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_resolve_checkpoint_by_number_and_unknown_name(tmp_path):
    ckpt.write_checkpoint(tmp_path, ckpt.step_dir_name(7), {"x": torch.zeros(1)}, {"step": 7})
    assert ckpt.resolve_checkpoint(tmp_path, "7").step == 7
    with pytest.raises(CganRuntimeError, match="available: step-00000007"):
        ckpt.resolve_checkpoint(tmp_path, "best")
