"""SeqGAN (Yu, Zhang, Wang and Yu, AAAI 2017): an LSTM generator trained by policy gradient with
Monte-Carlo rollout rewards from a CNN discriminator.

Phases (each step is one unit of the paper's schedule, so a checkpoint can fall between any
two of them):

- ``embed`` (1 step, only with ``embed.kind`` set): word vectors into both embedding tables.
- ``mle``: one epoch of maximum-likelihood training of the generator per step.
- ``pretrain_d``: one round per step: fresh negatives from the generator, then
  ``model.d_epochs`` epochs of the discriminator on real + negative sequences.
- ``adversarial``: one iteration per step: ``model.g_steps`` policy-gradient steps with
  ``model.rollouts`` rollouts from the delayed copy (updated ``rate * old + (1 - rate) * new``
  after each), then ``model.d_rounds`` discriminator rounds.

Every random draw either comes from a ``torch.Generator`` seeded by (train.seed, step, purpose,
and the rank under torchrun) or from the global RNG that checkpoints restore, so a resumed run
continues bit for bit.

Under torchrun each rank reads its share of the data (an MLE epoch is ``items / world_size`` per
rank) and draws its own negatives and policy-gradient samples; the trainer averages every
optimiser step's gradients over ranks (before clipping), so all ranks keep the same weights.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Mapping, Optional

import torch
from torch import nn

from cgan_core import GANModel, Phase, StepContext, UsageError, stack_samples

from cgan_text.discriminator import CNNDiscriminator
from cgan_text.embeddings import KINDS, embedding_matrix, load_vectors, train_vectors
from cgan_text.generator import LSTMGenerator
from cgan_text.rollout import rollout_rewards, rollout_uniforms
from cgan_text.vocab import Vocabulary

# Purposes of the per-step random generators (any distinct numbers).
_NEGATIVES, _POLICY = 1, 2


def batches_per_epoch(items: int, batch_size: int) -> int:
    """Batches in one pass over ``items`` (the trainer drops the last partial batch)."""
    return max(1, items // max(1, batch_size))


def corpus_tokens(sequences: torch.Tensor, data_info: Mapping[str, Any]) -> list[list[str]]:
    """The training sequences as token strings (ids as strings for oracle data), without padding."""
    if data_info.get("kind") == "text":
        vocab = Vocabulary.from_info(data_info["vocab"])
        return [vocab.decode_tokens(row) for row in sequences.tolist()]
    return [[str(token) for token in row] for row in sequences.tolist()]


def vocabulary_tokens(data_info: Mapping[str, Any]) -> list[str]:
    """Token string of every id."""
    if data_info.get("kind") == "text":
        return list(data_info["vocab"]["tokens"])
    return [str(i) for i in range(int(data_info["vocab_size"]))]


class SeqGAN(GANModel):
    """Generator, delayed rollout copy and discriminator, with SeqGAN's four phases."""

    def __init__(self, config: Any, data_info: Mapping[str, Any]) -> None:
        super().__init__(config, data_info)
        for key in ("vocab_size", "seq_len", "start_token", "items"):
            if key not in data_info:
                raise UsageError(f"seqgan needs text data; the dataset did not say its '{key}' "
                                 "(use --modality text)")
        model, embed = config.model, config.section("embed")
        if embed.kind not in KINDS:
            raise UsageError(f"unknown embed.kind '{embed.kind}'; valid: {', '.join(KINDS)}")
        if embed.kind == "pretrained" and not embed.path:
            raise UsageError("embed.kind=pretrained needs embed.path=FILE (.kv, .bin, .txt or .vec)")
        self.vocab_size = int(data_info["vocab_size"])
        self.seq_len = int(data_info["seq_len"])
        self.items = int(data_info["items"])
        with_vectors = embed.kind != "none"
        g_embed = int(embed.dim) if with_vectors else int(model.g_embed_dim)
        d_embed = int(embed.dim) if with_vectors else int(model.d_embed_dim)
        self.generator = LSTMGenerator(self.vocab_size, g_embed, int(model.g_hidden_dim), self.seq_len,
                                       int(data_info["start_token"]), float(model.g_init_std))
        self.rollout = copy.deepcopy(self.generator).requires_grad_(False)
        self.discriminator = CNNDiscriminator(self.vocab_size, d_embed, self.seq_len, tuple(model.d_filter_sizes),
                                              tuple(model.d_num_filters), float(model.d_dropout))
        if with_vectors:
            self.register_buffer("word_vectors", torch.zeros(self.vocab_size, int(embed.dim)))
            if embed.freeze:
                self.generator.embedding.weight.requires_grad_(False)
                self.discriminator.embedding.weight.requires_grad_(False)

    # --- sampling: the latent of a sequence is its T uniforms ----------------------------------
    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Uniform numbers (n, T) that drive the inverse-CDF sampling of each position."""
        if generator is not None:
            return torch.rand(n, self.seq_len, generator=generator).to(self.device)
        return torch.rand(n, self.seq_len, device=self.device)

    def generate(self, latent: torch.Tensor, generator_module: Optional[nn.Module] = None) -> torch.Tensor:
        """Token ids (n, T) sampled with the uniforms ``latent``."""
        module = generator_module if generator_module is not None else self.generator
        return module.sample_with_uniforms(latent)

    def discriminate(self, samples: torch.Tensor) -> torch.Tensor:
        """A real-vs-fake logit per sequence."""
        logits = self.discriminator(samples)
        return logits[:, 1] - logits[:, 0]

    # --- optimisers and phases -------------------------------------------------------------------
    def configure_optimizers(self, train_config: Any) -> dict[str, torch.optim.Optimizer]:
        """Adam for MLE, a separate Adam for policy gradient (as the authors' code), Adam for D."""
        model = self.config.model
        g_params = [p for p in self.generator.parameters() if p.requires_grad]
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        return {
            "generator": torch.optim.Adam(g_params, lr=float(model.g_lr_adv)),
            "generator_mle": torch.optim.Adam(g_params, lr=float(model.g_lr_mle)),
            "discriminator": torch.optim.Adam(d_params, lr=float(model.d_lr)),
        }

    def phases(self, train_config: Any) -> list[Phase]:
        """``embed``, ``mle`` (epochs), ``pretrain_d`` (rounds), ``adversarial`` (iterations)."""
        phases = self.config.section("phases")
        embed = self.config.section("embed")
        return [
            Phase("embed", 1 if embed.kind != "none" else 0, self.embed_step, "corpus"),
            Phase("mle", int(phases.mle.epochs), self.mle_step, "epoch"),
            Phase("pretrain_d", int(phases.pretrain_d.rounds), self.pretrain_d_step, "round"),
            Phase("adversarial", int(phases.adversarial.iterations), self.adversarial_step, "iteration"),
        ]

    def _rng(self, ctx: StepContext, purpose: int) -> torch.Generator:
        # Under torchrun each rank draws its own negatives and policy samples (the job's batch
        # is world_size x batch_size, as for the real data); one process keeps the old key.
        key = f"{int(ctx.train.seed)}:{ctx.step}:{purpose}"
        if ctx.world_size > 1:
            key += f":rank{ctx.rank}"
        return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key.encode()).digest()[:7], "little"))

    def _epoch_batches(self, ctx: StepContext) -> int:
        """Batches in this rank's share of one epoch (each rank reads items // world_size)."""
        return batches_per_epoch(max(1, self.items // ctx.world_size), ctx.train.batch_size)

    # --- step functions --------------------------------------------------------------------------
    def embed_step(self, ctx: StepContext) -> dict[str, float]:
        """Train (or read) word vectors and copy them into both embedding tables."""
        embed = self.config.section("embed")
        if embed.kind == "pretrained":
            vectors = load_vectors(embed.path)
            if int(vectors.vector_size) != int(embed.dim):
                raise UsageError(f"the vectors in '{embed.path}' have {vectors.vector_size} dimensions but "
                                 f"embed.dim={embed.dim}; set --set embed.dim={vectors.vector_size}")
        else:
            # Every rank trains the same vectors: one gensim worker, a fixed seed, a stable hash.
            sequences = stack_samples(ctx.data.dataset)
            vectors = train_vectors(embed.kind, corpus_tokens(sequences, self.data_info), int(embed.dim),
                                    int(embed.window), int(embed.epochs), int(embed.min_count), int(embed.seed))
        matrix, counts = embedding_matrix(vectors, vocabulary_tokens(self.data_info), int(embed.seed))
        with torch.no_grad():
            matrix = matrix.to(self.device)
            self.word_vectors.copy_(matrix)
            self.generator.embedding.weight.copy_(matrix)
            self.rollout.embedding.weight.copy_(matrix)
            self.discriminator.embedding.weight.copy_(matrix)
        return {f"vectors_{key}": float(value) for key, value in counts.items()}

    def mle_step(self, ctx: StepContext) -> dict[str, float]:
        """One epoch of teacher-forced maximum likelihood."""
        clip = float(self.config.model.g_grad_clip)
        total = 0.0
        batches = self._epoch_batches(ctx)
        for _ in range(batches):
            real = ctx.next_batch()
            loss = -self.generator.token_log_probs(real).mean()
            ctx.optimize("generator_mle", loss, clip=clip)
            total += float(loss.detach())
        return {"loss_mle": total / batches}

    def discriminator_round(self, ctx: StepContext, purpose: int) -> dict[str, float]:
        """Fresh negatives, then ``model.d_epochs`` epochs on real + negative batches."""
        model = self.config.model
        batch = int(ctx.train.batch_size)
        full_epoch = self._epoch_batches(ctx)
        batches = int(model.d_batches_per_epoch) or full_epoch
        rng = self._rng(ctx, purpose)
        negatives = torch.cat([self.generator.sample_with_uniforms(torch.rand(min(1024, batches * batch - i),
                                                                              self.seq_len, generator=rng))
                               for i in range(0, batches * batch, 1024)])
        self.discriminator.train()
        sums: dict[str, float] = {}
        for _ in range(int(model.d_epochs)):
            order = torch.randperm(negatives.shape[0], generator=rng).to(negatives.device)
            for i in range(batches):
                real = ctx.next_batch()
                fake = negatives[order[i * batch:(i + 1) * batch]]
                loss, logs = self.discriminator.loss(real, fake, float(model.d_l2))
                ctx.optimize("discriminator", loss, clip=0.0)
                for key, value in logs.items():
                    sums[key] = sums.get(key, 0.0) + value
        count = max(1, int(model.d_epochs) * batches)
        return {key: value / count for key, value in sums.items()}

    def pretrain_d_step(self, ctx: StepContext) -> dict[str, float]:
        """One discriminator pre-training round."""
        return self.discriminator_round(ctx, _NEGATIVES)

    def policy_gradient_step(self, ctx: StepContext, purpose: int) -> dict[str, float]:
        """Sample a batch, score every token by rollouts, and take one REINFORCE step."""
        model = self.config.model
        rng = self._rng(ctx, purpose)
        batch = int(ctx.train.batch_size)
        sequences = self.generator.sample(batch, generator=rng)
        uniforms = rollout_uniforms(batch, self.seq_len, int(model.rollouts), rng)
        rewards = rollout_rewards(self.rollout, self.discriminator, sequences, uniforms, int(model.reward_batch))
        log_probs = self.generator.token_log_probs(sequences)
        # The authors sum (not average) reward-weighted log-probabilities over batch and time.
        loss = -(log_probs * rewards).sum()
        ctx.optimize("generator", loss, clip=float(model.g_grad_clip))
        self.update_rollout()
        return {"loss_g": float(loss.detach()) / sequences.numel(), "reward": float(rewards.mean())}

    @torch.no_grad()
    def update_rollout(self) -> None:
        """Delayed copy: ``rate * rollout + (1 - rate) * generator``, parameter by parameter."""
        rate = float(self.config.model.rollout_update_rate)
        for delayed, live in zip(self.rollout.parameters(), self.generator.parameters()):
            delayed.mul_(rate).add_(live, alpha=1.0 - rate)

    def adversarial_step(self, ctx: StepContext) -> dict[str, float]:
        """One adversarial iteration: generator steps, then discriminator rounds."""
        model = self.config.model
        if ctx.phase_step == 0:  # the rollout network starts as a copy of the pre-trained generator
            self.rollout.load_state_dict(self.generator.state_dict())
        logs: dict[str, float] = {}
        for g_step in range(int(model.g_steps)):
            logs = self.policy_gradient_step(ctx, _POLICY + 10 * g_step)
        for d_round in range(int(model.d_rounds)):
            logs.update(self.discriminator_round(ctx, 1000 + d_round))
        return logs


def build_seqgan(config: Any, data_info: Mapping[str, Any]) -> SeqGAN:
    """``ModelSpec.build`` of SeqGAN."""
    return SeqGAN(config, data_info)
