"""SeqGAN's parts: the oracle mapping, sampling, the discriminator and the batched rollouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cgan_text.discriminator import CNNDiscriminator
from cgan_text.generator import LSTMGenerator, sample_tokens
from cgan_text.oracle import oracle_from_arrays, random_oracle, read_oracle_arrays, sample_oracle
from cgan_text.rollout import complete_prefixes, rollout_rewards, rollout_rewards_loop, rollout_uniforms

PAPER_ORACLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "seqgan_oracle_lstm.npz"


def _numpy_oracle_nll(arrays: dict[str, np.ndarray], tokens: np.ndarray) -> float:
    """The README's equations, row-vector convention, written out plainly in NumPy."""
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    batch, length = tokens.shape
    hidden = arrays["Ui"].shape[0]
    h, c = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    previous = np.zeros(batch, dtype=np.int64)  # start token 0
    total = 0.0
    for t in range(length):
        x = arrays["embedding"][previous]
        i = sigmoid(x @ arrays["Wi"] + h @ arrays["Ui"] + arrays["bi"])
        f = sigmoid(x @ arrays["Wf"] + h @ arrays["Uf"] + arrays["bf"])
        o = sigmoid(x @ arrays["Wo_gate"] + h @ arrays["Uo_gate"] + arrays["bo_gate"])
        candidate = np.tanh(x @ arrays["Wc"] + h @ arrays["Uc"] + arrays["bc"])
        c = f * c + i * candidate
        h = o * np.tanh(c)
        logits = h @ arrays["W_out"] + arrays["b_out"]
        logits = logits - logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        total -= log_probs[np.arange(batch), tokens[:, t]].sum()
        previous = tokens[:, t]
    return total / tokens.size


def _small_arrays(seed: int = 0, vocab: int = 40, embed: int = 6, hidden: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"embedding": (vocab, embed), "W_out": (hidden, vocab), "b_out": (vocab,)}
    for gate in ("i", "f", "c"):
        shapes.update({f"W{gate}": (embed, hidden), f"U{gate}": (hidden, hidden), f"b{gate}": (hidden,)})
    shapes.update({"Wo_gate": (embed, hidden), "Uo_gate": (hidden, hidden), "bo_gate": (hidden,)})
    return {key: rng.normal(size=shape).astype(np.float32) for key, shape in shapes.items()}


def test_oracle_arrays_map_exactly_onto_the_torch_lstm():
    arrays = _small_arrays()
    oracle = oracle_from_arrays(arrays, seq_len=7)
    tokens = sample_oracle(oracle, 32, seed=3)
    assert tokens.shape == (32, 7) and tokens.dtype == torch.long
    assert oracle.nll(tokens) == pytest.approx(_numpy_oracle_nll(arrays, tokens.numpy()), rel=1e-5)


@pytest.mark.skipif(not PAPER_ORACLE.is_file(), reason="needs ../shared/data/seqgan_oracle_lstm.npz")
def test_the_papers_oracle_scores_its_own_samples_far_below_a_random_generator():
    oracle = oracle_from_arrays(read_oracle_arrays(PAPER_ORACLE), seq_len=20)
    assert oracle.vocab_size == 5000 and oracle.hidden_dim == 32
    own = sample_oracle(oracle, 256, seed=0)
    untrained = LSTMGenerator(5000, 32, 32, 20, 0).sample(256, torch.Generator().manual_seed(0))
    own_nll, random_nll = oracle.nll(own), oracle.nll(untrained)
    assert own_nll < 7.0 < 9.5 < random_nll  # the paper: 10.31 for a random generator
    subset = own[:8].numpy()
    assert oracle.nll(own[:8]) == pytest.approx(_numpy_oracle_nll(read_oracle_arrays(PAPER_ORACLE), subset), rel=1e-5)


def test_random_oracle_is_the_same_for_a_seed_and_differs_across_seeds():
    a, b, c = random_oracle(5, 30, 4, 4, 6), random_oracle(5, 30, 4, 4, 6), random_oracle(6, 30, 4, 4, 6)
    assert torch.equal(a.output.weight, b.output.weight) and not torch.equal(a.output.weight, c.output.weight)
    assert torch.equal(sample_oracle(a, 10, 1), sample_oracle(b, 10, 1))


def test_inverse_cdf_sampling_follows_the_softmax():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).expand(20000, 3)
    tokens = sample_tokens(logits, torch.rand(20000, generator=torch.Generator().manual_seed(0)))
    frequencies = torch.bincount(tokens, minlength=3).float() / 20000
    assert torch.allclose(frequencies, torch.tensor([0.1, 0.2, 0.7]), atol=0.015)
    edge = sample_tokens(logits[:2], torch.tensor([0.0, 0.999999]))
    assert edge.tolist() == [0, 2]


def test_sampling_is_deterministic_for_a_generator_seed():
    generator = LSTMGenerator(25, 6, 6, 9, 1)
    first = generator.sample(12, torch.Generator().manual_seed(4))
    assert torch.equal(first, generator.sample(12, torch.Generator().manual_seed(4)))
    assert not torch.equal(first, generator.sample(12, torch.Generator().manual_seed(5)))
    assert first.min() >= 0 and first.max() < 25


def test_discriminator_drops_filters_wider_than_the_sequence_and_scores_probabilities():
    disc = CNNDiscriminator(30, 8, 5, (1, 3, 5, 8), (4, 4, 4, 4), 0.25)
    assert [conv.kernel_size[0] for conv in disc.convs] == [1, 3, 5]
    probs = disc.real_probability(torch.randint(0, 30, (6, 5)))
    assert probs.shape == (6,) and bool(((probs > 0) & (probs < 1)).all())
    loss, logs = disc.loss(torch.randint(0, 30, (4, 5)), torch.randint(0, 30, (4, 5)), l2=0.2)
    assert loss.item() > 0 and set(logs) == {"loss_d", "d_real", "d_fake"}


def _tiny_rollout_parts(seed: int = 0):
    torch.manual_seed(seed)
    generator = LSTMGenerator(30, 6, 7, 8, 0)
    disc = CNNDiscriminator(30, 6, 8, (2, 3), (5, 5), 0.25)
    sequences = generator.sample(5, torch.Generator().manual_seed(1))
    uniforms = rollout_uniforms(5, 8, 3, torch.Generator().manual_seed(2))
    return generator, disc, sequences, uniforms


def test_completed_prefixes_keep_the_prefix_and_have_the_right_shape():
    generator, _, sequences, uniforms = _tiny_rollout_parts()
    completed = complete_prefixes(generator, sequences, uniforms)
    assert completed.shape == (7, 3, 5, 8)  # (T-1 prefixes, K rollouts, B, T)
    for t in range(1, 8):
        assert torch.equal(completed[t - 1, :, :, :t], sequences[:, :t].expand(3, 5, t))
    # Rollouts are random: some completion differs from the original sequence.
    assert not torch.equal(completed[0, 0], sequences)


def test_batched_rollout_rewards_equal_the_plain_per_step_loop():
    generator, disc, sequences, uniforms = _tiny_rollout_parts()
    batched = rollout_rewards(generator, disc, sequences, uniforms, reward_batch=16)
    looped = rollout_rewards_loop(generator, disc, sequences, uniforms)
    assert batched.shape == (5, 8)
    assert torch.allclose(batched, looped, atol=1e-6)
    assert torch.equal(batched[:, -1], disc.eval().real_probability(sequences))  # last token: D(sequence)
    assert bool(((batched > 0) & (batched < 1)).all())
