"""SeqGAN's discriminator: the CNN of Kim (2014) / Zhang and LeCun (2015) with a highway layer.

Token embeddings -> convolutions of several widths with ReLU -> max over time -> concatenation
-> one highway layer -> dropout -> two-class output. The L2 penalty on the output layer is the
authors' ``l2_reg_lambda * (l2_loss(W) + l2_loss(b))``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class Highway(nn.Module):
    """``t * relu(W x) + (1 - t) * x`` with gate ``t = sigmoid(W_t x + b - 2)`` (Srivastava et al. 2015)."""

    def __init__(self, size: int, gate_bias: float = -2.0) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        self.gate_bias = gate_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x) + self.gate_bias)
        return gate * F.relu(self.transform(x)) + (1.0 - gate) * x


class CNNDiscriminator(nn.Module):
    """Scores token sequences (N, T) as real or generated.

    Args:
        vocab_size: Number of tokens.
        embed_dim: Embedding size.
        seq_len: Sequence length; filters wider than it are left out.
        filter_sizes: Convolution widths.
        num_filters: Filters per width.
        dropout: Dropout probability before the output layer.
    """

    def __init__(self, vocab_size: int, embed_dim: int, seq_len: int, filter_sizes: Sequence[int],
                 num_filters: Sequence[int], dropout: float) -> None:
        super().__init__()
        if len(filter_sizes) != len(num_filters):
            raise ValueError("d_filter_sizes and d_num_filters must have the same length")
        kept = [(k, n) for k, n in zip(filter_sizes, num_filters) if k <= seq_len]
        if not kept:
            raise ValueError(f"every filter is wider than the sequence length {seq_len}")
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, n, k) for k, n in kept)
        features = sum(n for _, n in kept)
        self.highway = Highway(features)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(features, 2)
        self._init_weights()

    def _init_weights(self) -> None:
        # The authors' initialisation: uniform(-1, 1) embeddings, truncated N(0, 0.1) filters and
        # output weights with 0.1 biases.
        nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
        for layer in [*self.convs, self.output]:
            nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2)
            nn.init.constant_(layer.bias, 0.1)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Highway features (N, F) before dropout."""
        embedded = self.embedding(tokens).transpose(1, 2)  # (N, E, T): channels first for Conv1d
        pooled = [F.relu(conv(embedded)).amax(dim=2) for conv in self.convs]
        return self.highway(torch.cat(pooled, dim=1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Two-class logits (N, 2): column 1 is "real"."""
        return self.output(self.dropout(self.features(tokens)))

    def real_probability(self, tokens: torch.Tensor) -> torch.Tensor:
        """P(real) for each sequence, shape (N,)."""
        return torch.softmax(self(tokens).float(), dim=1)[:, 1]

    def l2_penalty(self) -> torch.Tensor:
        """``(|W|^2 + |b|^2) / 2`` of the output layer."""
        return 0.5 * (self.output.weight.pow(2).sum() + self.output.bias.pow(2).sum())

    def loss(self, real: torch.Tensor, fake: torch.Tensor, l2: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy on a batch of real (label 1) and fake (label 0) sequences, plus L2.

        Returns:
            The loss and logs (``loss_d``, ``d_real`` and ``d_fake``: mean P(real)).
        """
        tokens = torch.cat([real, fake])
        labels = torch.cat([torch.ones(real.shape[0]), torch.zeros(fake.shape[0])]).long().to(tokens.device)
        logits = self(tokens).float()
        loss = F.cross_entropy(logits, labels) + l2 * self.l2_penalty()
        with torch.no_grad():
            probs = torch.softmax(logits, dim=1)[:, 1]
        return loss, {"loss_d": float(loss.detach()), "d_real": float(probs[: real.shape[0]].mean()),
                      "d_fake": float(probs[real.shape[0]:].mean())}
