"""Config sections of the text modality (``data``) and the SeqGAN model (``model``, ``phases``,
``embed``).

The SeqGAN defaults are the paper's settings for its synthetic-data (oracle) experiment
(Yu et al., AAAI 2017, and the authors' public code), so ``--dataset oracle`` reproduces the
paper's protocol unless a key is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TextDataConfig:
    """The ``data`` section for text.

    Attributes:
        field: Column of a ``.csv`` / key of a ``.jsonl`` source holding the text.
        lowercase: Lower-case text before tokenising.
        min_freq: Words seen fewer times than this in the training split become ``<unk>``.
        max_vocab: Keep at most this many words (most frequent first; 0 = no limit), plus the
            four special tokens.
        max_len: Tokens per sequence, the end-of-sentence token included; longer lines are
            truncated and counted.
        min_vocab: Fewer distinct words than this is an error (a corpus too small to train on).
        tokenizer: ``word`` (lower-cased word/punctuation split) or the path of a local Hugging Face
            tokenizer folder (sub-word tokens, read with ``transformers``, offline).
        test_fraction: Share of lines held out as the reference split (BLEU, ``nll-test``).
        split_seed: Seed of the train/reference split.
        max_items: Use at most this many lines (0 = all).
        max_line_chars: Lines longer than this many characters are truncated and counted (a
            guard against one-line binary or minified files).
        sentences: Split the bundled ``lee`` news corpus into sentences (else one document
            per line).
        oracle_params: ``.npz`` of an oracle LSTM (the paper's, see ``shared/data/README.md``);
            empty = a seeded random oracle.
        oracle_seed: Seed of the random oracle's N(0, 1) weights.
        oracle_vocab: Vocabulary of the random oracle.
        oracle_embed: Embedding size of the random oracle.
        oracle_hidden: Hidden size of the random oracle.
        oracle_samples: Training sequences sampled from the oracle (the paper: 9,984).
        oracle_data_seed: Seed of the sampling of the training sequences (the reference split
            uses another seed derived from it).
    """

    field: str = "text"
    lowercase: bool = True
    min_freq: int = 1
    max_vocab: int = 5000
    max_len: int = 20
    min_vocab: int = 5
    tokenizer: str = "word"
    test_fraction: float = 0.1
    split_seed: int = 0
    max_items: int = 0
    max_line_chars: int = 10000
    sentences: bool = True
    oracle_params: str = ""
    oracle_seed: int = 0
    oracle_vocab: int = 5000
    oracle_embed: int = 32
    oracle_hidden: int = 32
    oracle_samples: int = 9984
    oracle_data_seed: int = 88


@dataclass
class SeqGANConfig:
    """The ``model`` section of SeqGAN (Yu, Zhang, Wang and Yu, AAAI 2017).

    Attributes:
        g_embed_dim: Generator embedding size (the paper: 32).
        g_hidden_dim: Generator LSTM hidden size (32).
        g_init_std: Standard deviation of the generator's N(0, s) initial weights (0.1, as the
            authors' code).
        g_lr_mle: Adam learning rate of MLE pre-training (0.01).
        g_lr_adv: Adam learning rate of the policy-gradient steps (0.01).
        g_grad_clip: Gradient-norm clip of the generator (5.0).
        d_embed_dim: Discriminator embedding size (64).
        d_filter_sizes: Convolution widths (1..10, 15, 20); widths longer than the sequence
            are dropped.
        d_num_filters: Filters per width (100, 200, 200, 200, 200, 100 x 5, 160, 160).
        d_dropout: Dropout probability before the output layer (0.25, i.e. keep 0.75).
        d_l2: L2 weight of the output layer (0.2; ``l2 * (|W|^2 + |b|^2) / 2`` as the
            authors' code).
        d_lr: Discriminator Adam learning rate (1e-4).
        d_epochs: Epochs over real + fresh fake sequences per discriminator round (3).
        d_batches_per_epoch: Cap on the batches of one discriminator epoch (0 = a full pass over
            the training data, the paper). ``--schedule fast`` uses it to train on a part.
        rollouts: Monte-Carlo rollouts per prefix (16).
        rollout_update_rate: The delayed rollout copy becomes ``rate * old + (1 - rate) * new``
            after each generator step (0.8).
        g_steps: Policy-gradient generator steps per adversarial iteration (1).
        d_rounds: Discriminator rounds (fresh negatives + ``d_epochs`` epochs) per adversarial
            iteration (5).
        reward_batch: Sequences per discriminator call when scoring rollouts (bounds memory).
    """

    g_embed_dim: int = 32
    g_hidden_dim: int = 32
    g_init_std: float = 0.1
    g_lr_mle: float = 0.01
    g_lr_adv: float = 0.01
    g_grad_clip: float = 5.0
    d_embed_dim: int = 64
    d_filter_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
    d_num_filters: tuple[int, ...] = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)
    d_dropout: float = 0.25
    d_l2: float = 0.2
    d_lr: float = 1e-4
    d_epochs: int = 3
    d_batches_per_epoch: int = 0
    rollouts: int = 16
    rollout_update_rate: float = 0.8
    g_steps: int = 1
    d_rounds: int = 5
    reward_batch: int = 4096


@dataclass
class MLEPhase:
    """``phases.mle``: generator pre-training by maximum likelihood.

    Attributes:
        epochs: Passes over the training data (the paper: 120; 0 skips the phase).
    """

    epochs: int = 120


@dataclass
class PretrainDPhase:
    """``phases.pretrain_d``: discriminator pre-training on fresh negatives.

    Attributes:
        rounds: Rounds of (new negatives, ``model.d_epochs`` epochs) (the paper: 50).
    """

    rounds: int = 50


@dataclass
class AdversarialPhase:
    """``phases.adversarial``: policy-gradient training against the discriminator.

    Attributes:
        iterations: Iterations of (``model.g_steps`` generator steps, ``model.d_rounds``
            discriminator rounds) (the paper: 200).
    """

    iterations: int = 200


@dataclass
class PhasesConfig:
    """The ``phases`` section: the length of each SeqGAN training phase."""

    mle: MLEPhase = field(default_factory=MLEPhase)
    pretrain_d: PretrainDPhase = field(default_factory=PretrainDPhase)
    adversarial: AdversarialPhase = field(default_factory=AdversarialPhase)


@dataclass
class EmbedConfig:
    """The ``embed`` section: word vectors for the generator's and discriminator's embeddings.

    When ``kind`` is not ``none`` both embedding tables take ``dim`` columns (replacing
    ``model.g_embed_dim`` and ``model.d_embed_dim``) and start from the vectors.

    Attributes:
        kind: ``none``, ``word2vec`` or ``fasttext`` (trained with gensim on the training split
            before MLE), or ``pretrained`` (read from ``path``).
        path: Pre-trained vectors: gensim ``.kv``, word2vec ``.bin``/``.txt`` or fastText
            ``.vec``/``.bin``.
        dim: Vector size (must match a pre-trained file's).
        window: Context window of word2vec/fastText training.
        epochs: Training epochs of word2vec/fastText.
        min_count: Minimum count of a word for gensim to learn a vector.
        freeze: Keep the embeddings fixed during training (else they are fine-tuned).
        seed: Seed of gensim training and of the vectors drawn for out-of-vocabulary words.
    """

    kind: str = "none"
    path: str = ""
    dim: int = 64
    window: int = 5
    epochs: int = 10
    min_count: int = 1
    freeze: bool = False
    seed: int = 0
