"""The oracle LSTM of SeqGAN's synthetic-data experiment, as an :class:`LSTMGenerator`.

The paper's oracle (``shared/data/seqgan_oracle_lstm.npz``) stores the gates separately in the
row-vector convention ``sigmoid(x Wi + h Ui + bi)``. PyTorch's LSTM computes the same cell with
its gates stacked as (input, forget, cell, output) and weights transposed, so the oracle maps
onto an ``nn.LSTM`` exactly (the second bias is zero). Without a file, a seeded random oracle of
the same shape with N(0, 1) weights is used, as in the authors' code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from cgan_core import UsageError, sha256_file

from cgan_text.generator import LSTMGenerator

ORACLE_KEYS = ("embedding", "Wi", "Ui", "bi", "Wf", "Uf", "bf", "Wo_gate", "Uo_gate", "bo_gate",
               "Wc", "Uc", "bc", "W_out", "b_out")
ORACLE_START_TOKEN = 0


def read_oracle_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read and check an oracle ``.npz``.

    Raises:
        UsageError: the file is missing, not a NumPy archive, or lacks a key.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"oracle parameters '{path}' do not exist; set data.oracle_params to the .npz "
                         "of the paper's oracle (shared/data/seqgan_oracle_lstm.npz) or leave it empty "
                         "for a seeded random oracle")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: np.asarray(archive[key], dtype=np.float32) for key in archive.files}
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read oracle parameters '{path}' as a NumPy archive: {exc}") from None
    missing = [key for key in ORACLE_KEYS if key not in arrays]
    if missing:
        raise UsageError(f"oracle parameters '{path}' lack {', '.join(missing)}; expected the keys of "
                         "shared/data/README.md")
    return arrays


def oracle_from_arrays(arrays: Mapping[str, np.ndarray], seq_len: int) -> LSTMGenerator:
    """Build the oracle generator from the gate-wise arrays (see the module docstring)."""
    embedding = torch.from_numpy(arrays["embedding"])
    vocab, embed_dim = embedding.shape
    hidden = arrays["Ui"].shape[0]
    oracle = LSTMGenerator(vocab, embed_dim, hidden, seq_len, ORACLE_START_TOKEN, init_std=None)
    gates = (("Wi", "Ui", "bi"), ("Wf", "Uf", "bf"), ("Wc", "Uc", "bc"), ("Wo_gate", "Uo_gate", "bo_gate"))
    with torch.no_grad():
        oracle.embedding.weight.copy_(embedding)
        oracle.lstm.weight_ih_l0.copy_(torch.cat([torch.from_numpy(arrays[w]).T for w, _, _ in gates]))
        oracle.lstm.weight_hh_l0.copy_(torch.cat([torch.from_numpy(arrays[u]).T for _, u, _ in gates]))
        oracle.lstm.bias_ih_l0.copy_(torch.cat([torch.from_numpy(arrays[b]) for _, _, b in gates]))
        oracle.lstm.bias_hh_l0.zero_()
        oracle.output.weight.copy_(torch.from_numpy(arrays["W_out"]).T)
        oracle.output.bias.copy_(torch.from_numpy(arrays["b_out"]))
    oracle.requires_grad_(False)
    return oracle.eval()


def random_oracle(seed: int, vocab: int, embed_dim: int, hidden: int, seq_len: int) -> LSTMGenerator:
    """A random oracle: every weight N(0, 1) from ``seed`` (the same on every machine)."""
    generator = torch.Generator().manual_seed(seed)
    oracle = LSTMGenerator(vocab, embed_dim, hidden, seq_len, ORACLE_START_TOKEN, init_std=None)
    with torch.no_grad():
        for parameter in oracle.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    oracle.requires_grad_(False)
    return oracle.eval()


def oracle_from_config(data_config: Any) -> tuple[LSTMGenerator, dict[str, Any]]:
    """The oracle a run's ``data`` section names, and its provenance.

    Returns:
        ``(oracle, description)`` where the description (JSON-able) says which oracle it is:
        ``{"params": path, "sha256": ...}`` or ``{"random_seed": ...}`` plus its shape.
    """
    seq_len = int(data_config.max_len)
    if data_config.oracle_params:
        path = Path(str(data_config.oracle_params)).expanduser()
        oracle = oracle_from_arrays(read_oracle_arrays(path), seq_len)
        # The absolute path lets evaluation find the file from any working directory.
        description: dict[str, Any] = {"params": str(path.resolve()), "sha256": sha256_file(path)}
    else:
        oracle = random_oracle(int(data_config.oracle_seed), int(data_config.oracle_vocab),
                               int(data_config.oracle_embed), int(data_config.oracle_hidden), seq_len)
        description = {"random_seed": int(data_config.oracle_seed)}
    description.update(vocab_size=oracle.vocab_size, embed_dim=oracle.embedding.embedding_dim,
                       hidden_dim=oracle.hidden_dim, seq_len=seq_len, start_token=ORACLE_START_TOKEN)
    return oracle, description


def oracle_from_info(oracle_info: Mapping[str, Any], fallback_params: Optional[str] = None) -> LSTMGenerator:
    """Rebuild the oracle described by :func:`oracle_from_config` (for evaluation).

    Raises:
        UsageError: the parameter file moved or changed since training.
    """
    seq_len = int(oracle_info["seq_len"])
    if "random_seed" in oracle_info:
        return random_oracle(int(oracle_info["random_seed"]), int(oracle_info["vocab_size"]),
                             int(oracle_info["embed_dim"]), int(oracle_info["hidden_dim"]), seq_len)
    candidates = [Path(str(oracle_info["params"])).expanduser()]
    if fallback_params:
        candidates.insert(0, Path(fallback_params).expanduser())
    for path in candidates:
        if path.is_file():
            if oracle_info.get("sha256") and sha256_file(path) != oracle_info["sha256"]:
                raise UsageError(f"oracle parameters '{path}' differ from those the run was trained with "
                                 f"(sha256 {oracle_info['sha256'][:12]}...)")
            return oracle_from_arrays(read_oracle_arrays(path), seq_len)
    raise UsageError(f"oracle parameters '{candidates[-1]}' used in training are not found; put the file "
                     f"(sha256 {str(oracle_info.get('sha256', ''))[:12]}...) back there to compute nll-oracle")


def sample_oracle(oracle: LSTMGenerator, n: int, seed: int, batch_size: int = 2048) -> torch.Tensor:
    """``n`` sequences from the oracle, drawn with a CPU generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    chunks = [oracle.sample(min(batch_size, n - start), generator=generator) for start in range(0, n, batch_size)]
    return torch.cat(chunks).cpu() if chunks else torch.empty(0, oracle.seq_len, dtype=torch.long)
