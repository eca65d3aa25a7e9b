"""Monte-Carlo rollout rewards of SeqGAN, batched, and the plain loop they are checked against.

The reward of token t of a generated sequence is the discriminator's mean P(real) over K
completions of its prefix ``y_1..y_t`` sampled by the rollout (delayed) generator; the last
token's reward is the discriminator's score of the sequence itself.

:func:`rollout_rewards` runs all T-1 prefixes and all K rollouts of a batch as one batch: the
LSTM is time-invariant, so continuations that start after different prefixes advance in
lockstep from the per-prefix states, the rows that are already complete dropping out. A
position's random draw is ``uniforms[t - 1, k, b, position]`` in both implementations, so they
produce the same completions.
"""

from __future__ import annotations

from typing import Optional

import torch

from cgan_text.discriminator import CNNDiscriminator
from cgan_text.generator import LSTMGenerator, sample_tokens


def rollout_uniforms(batch: int, seq_len: int, rollouts: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """The random numbers of one rollout pass, shape (T-1, K, B, T)."""
    return torch.rand(seq_len - 1, rollouts, batch, seq_len, generator=generator)


@torch.no_grad()
def discriminator_scores(discriminator: CNNDiscriminator, sequences: torch.Tensor, batch_size: int) -> torch.Tensor:
    """P(real) of each sequence, in chunks of ``batch_size`` (eval mode: no dropout)."""
    was_training = discriminator.training
    discriminator.eval()
    try:
        return torch.cat([discriminator.real_probability(sequences[i:i + batch_size])
                          for i in range(0, sequences.shape[0], batch_size)])
    finally:
        discriminator.train(was_training)


@torch.no_grad()
def complete_prefixes(rollout: LSTMGenerator, sequences: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Every prefix of every sequence completed K times, in one batch.

    Args:
        rollout: The rollout generator.
        sequences: (B, T) generated sequences.
        uniforms: (T-1, K, B, T) from :func:`rollout_uniforms`.

    Returns:
        (T-1, K, B, T): entry ``[t - 1, k, b]`` keeps ``sequences[b, :t]`` and continues it with the
        k-th rollout.
    """
    batch, length = sequences.shape
    prefixes, rollouts = length - 1, uniforms.shape[1]
    device = sequences.device
    h, c, logits = rollout.prefix_states(sequences)  # index t: after the start token and t tokens
    rows_per_prefix = rollouts * batch

    def per_row(tensor: torch.Tensor) -> torch.Tensor:
        # (T-1, B, ...) -> (T-1 * K * B, ...), rows ordered by prefix length, then rollout, then batch.
        expanded = tensor.unsqueeze(1).expand(tensor.shape[0], rollouts, *tensor.shape[1:])
        return expanded.reshape(prefixes * rows_per_prefix, *tensor.shape[2:])

    state_h, state_c, next_logits = per_row(h[1:]), per_row(c[1:]), per_row(logits[1:])
    prefix_len = torch.arange(1, length, device=device).repeat_interleave(rows_per_prefix)  # t of each row
    row_uniforms = uniforms.to(device).reshape(prefixes * rows_per_prefix, length)
    continuation = torch.zeros(prefixes * rows_per_prefix, prefixes, dtype=torch.long, device=device)
    state = (state_h.unsqueeze(0).contiguous(), state_c.unsqueeze(0).contiguous())
    for j in range(prefixes):
        # Rows whose prefix has t tokens still need positions t..T-1: active while t + j < T.
        active = (prefixes - j) * rows_per_prefix
        positions = (prefix_len[:active] + j).unsqueeze(1)
        tokens = sample_tokens(next_logits[:active], row_uniforms[:active].gather(1, positions).squeeze(1))
        continuation[:active, j] = tokens
        if j + 1 < prefixes:
            next_active = (prefixes - j - 1) * rows_per_prefix
            state = (state[0][:, :next_active], state[1][:, :next_active])
            next_logits, state = rollout.step(tokens[:next_active], state)
    offsets = torch.arange(length, device=device).unsqueeze(0) - prefix_len.unsqueeze(1)  # position - t
    from_continuation = continuation.gather(1, offsets.clamp(min=0, max=prefixes - 1))
    original = sequences.unsqueeze(0).expand(prefixes * rollouts, batch, length).reshape(-1, length)
    full = torch.where(offsets < 0, original, from_continuation)
    return full.view(prefixes, rollouts, batch, length)


@torch.no_grad()
def rollout_rewards(rollout: LSTMGenerator, discriminator: CNNDiscriminator, sequences: torch.Tensor,
                    uniforms: torch.Tensor, reward_batch: int = 4096) -> torch.Tensor:
    """Per-token rewards (B, T) of ``sequences``, all prefixes and rollouts batched.

    Args:
        rollout: The delayed copy of the generator that completes prefixes.
        discriminator: Scores complete sequences.
        sequences: (B, T) generated sequences.
        uniforms: (T-1, K, B, T) random numbers (:func:`rollout_uniforms`).
        reward_batch: Sequences per discriminator call.
    """
    prefixes, rollouts, batch, length = uniforms.shape
    completed = complete_prefixes(rollout, sequences, uniforms)
    scores = discriminator_scores(discriminator, completed.reshape(-1, length), reward_batch)
    per_prefix = scores.view(prefixes, rollouts, batch).mean(dim=1).transpose(0, 1)  # (B, T-1)
    last = discriminator_scores(discriminator, sequences, reward_batch).unsqueeze(1)
    return torch.cat([per_prefix, last], dim=1)


@torch.no_grad()
def rollout_rewards_loop(rollout: LSTMGenerator, discriminator: CNNDiscriminator, sequences: torch.Tensor,
                         uniforms: torch.Tensor) -> torch.Tensor:
    """The same rewards computed the plain way: a loop over rollouts, prefixes and time steps.

    This mirrors the authors' implementation (one rollout of batch B per rollout index and
    prefix length, one time step at a time) and exists as the reference for tests and for the
    benchmark's speed comparison.
    """
    batch, length = sequences.shape
    rollouts = uniforms.shape[1]
    rewards = torch.zeros(batch, length, device=sequences.device)
    uniforms = uniforms.to(sequences.device)
    for k in range(rollouts):
        for given in range(1, length):
            logits, state = rollout.start_state(batch)
            for t in range(given):  # read the prefix
                logits, state = rollout.step(sequences[:, t], state)
            completed = sequences.clone()
            for t in range(given, length):  # sample the rest
                completed[:, t] = sample_tokens(logits, uniforms[given - 1, k, :, t])
                if t + 1 < length:
                    logits, state = rollout.step(completed[:, t], state)
            rewards[:, given - 1] += discriminator_scores(discriminator, completed, batch)
    rewards[:, : length - 1] /= rollouts
    rewards[:, length - 1] = discriminator_scores(discriminator, sequences, batch)
    return rewards
