"""The SeqGAN generator: a token-level LSTM language model that samples fixed-length sequences.

Sampling is inverse-CDF sampling driven by uniform numbers, one per position: the uniforms are
the generator's "latent" input. The same uniforms give the same tokens whatever the batch
layout or device, which makes sampling reproducible from a seed and lets the batched rollout be
checked token for token against a plain per-step loop.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

LSTMState = tuple[torch.Tensor, torch.Tensor]


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw one token per row from ``softmax(logits)`` by inverting its CDF at ``uniforms``.

    Args:
        logits: (N, V) unnormalised log-probabilities.
        uniforms: (N,) numbers in [0, 1).

    Returns:
        (N,) token ids.
    """
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)
    # Scaling by the last CDF value keeps float rounding from pushing a draw past the end.
    targets = (uniforms.to(cdf.dtype) * cdf[:, -1]).unsqueeze(1)
    tokens = torch.searchsorted(cdf, targets, right=True).squeeze(1)
    return tokens.clamp_(max=logits.shape[-1] - 1)


class LSTMGenerator(nn.Module):
    """Embedding -> one-layer LSTM -> linear output over the vocabulary.

    Args:
        vocab_size: Number of tokens.
        embed_dim: Embedding size.
        hidden_dim: LSTM hidden size.
        seq_len: Length of generated sequences.
        start_token: Token fed as the first input (SeqGAN's start token; ``<bos>`` for text).
        init_std: Standard deviation of the N(0, s) initial weights (``None``: PyTorch's default).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, seq_len: int, start_token: int,
                 init_std: Optional[float] = 0.1) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.start_token = start_token
        self.hidden_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.output = nn.Linear(hidden_dim, vocab_size)
        if init_std is not None:
            for parameter in self.parameters():
                nn.init.normal_(parameter, 0.0, init_std)

    # --- teacher forcing -----------------------------------------------------------------------
    def inputs_for(self, tokens: torch.Tensor) -> torch.Tensor:
        """The input sequence for ``tokens``: the start token, then all tokens but the last."""
        start = torch.full_like(tokens[:, :1], self.start_token)
        return torch.cat([start, tokens[:, :-1]], dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (N, T, V): position t predicts ``tokens[:, t]``."""
        hidden, _ = self.lstm(self.embedding(self.inputs_for(tokens)))
        return self.output(hidden)

    def token_log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """log p(token_t | tokens_<t) for every position, shape (N, T)."""
        logits = self(tokens).float()
        # (N*T, V) rows keep log-softmax on contiguous memory (the (N, V, T) layout is ~3x slower).
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1), reduction="none")
        return -nll.view(tokens.shape)

    @torch.no_grad()
    def nll(self, tokens: torch.Tensor, mask: Optional[torch.Tensor] = None, batch_size: int = 1024) -> float:
        """Mean negative log-likelihood per token (over ``mask`` when given), in nats."""
        total, count = 0.0, 0.0
        for start in range(0, tokens.shape[0], batch_size):
            chunk = tokens[start:start + batch_size].to(self.output.weight.device)
            nll = -self.token_log_probs(chunk)
            if mask is not None:
                weights = mask[start:start + batch_size].to(nll.device, nll.dtype)
                total += float((nll * weights).sum())
                count += float(weights.sum())
            else:
                total += float(nll.sum())
                count += nll.numel()
        return total / max(count, 1.0)

    # --- step by step ----------------------------------------------------------------------------
    def step(self, tokens: torch.Tensor, state: Optional[LSTMState]) -> tuple[torch.Tensor, LSTMState]:
        """Feed one token per row; returns the next-token logits (N, V) and the new state."""
        hidden, (h, c) = self.lstm(self.embedding(tokens).unsqueeze(1), state)
        return self.output(hidden.squeeze(1)), (h, c)

    def start_state(self, n: int) -> tuple[torch.Tensor, LSTMState]:
        """Logits and state after the start token for ``n`` rows (zero initial state)."""
        start = torch.full((n,), self.start_token, dtype=torch.long, device=self.output.weight.device)
        return self.step(start, None)

    @torch.no_grad()
    def prefix_states(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """States after each prefix of ``tokens`` (N, T).

        Returns:
            ``(h, c, logits)`` where index ``t`` (0..T-1) is the state after reading the start
            token and ``tokens[:, :t]``; ``logits[t]`` predicts ``tokens[:, t]``. Shapes
            (T, N, H), (T, N, H), (T, N, V).
        """
        logits, (h, c) = self.start_state(tokens.shape[0])
        hs, cs, outs = [h[0]], [c[0]], [logits]
        for t in range(tokens.shape[1] - 1):
            logits, (h, c) = self.step(tokens[:, t], (h, c))
            hs.append(h[0])
            cs.append(c[0])
            outs.append(logits)
        return torch.stack(hs), torch.stack(cs), torch.stack(outs)

    @torch.no_grad()
    def sample_with_uniforms(self, uniforms: torch.Tensor) -> torch.Tensor:
        """Sample sequences, position t of row i drawn with ``uniforms[i, t]``; returns (N, T)."""
        uniforms = uniforms.to(self.output.weight.device)
        n, length = uniforms.shape
        tokens = torch.empty(n, length, dtype=torch.long, device=uniforms.device)
        logits, state = self.start_state(n)
        for t in range(length):
            tokens[:, t] = sample_tokens(logits, uniforms[:, t])
            if t + 1 < length:
                logits, state = self.step(tokens[:, t], state)
        return tokens

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Sample ``n`` sequences of ``seq_len`` tokens; the same generator seed gives the same ones."""
        return self.sample_with_uniforms(torch.rand(n, self.seq_len, generator=generator))
