"""Style check: how much more a style's prior expects each token of a text than the base model does."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.prior import Prior

# The per-token score is log P_style(x_t | x_<t) - log P_base(x_t | x_<t), averaged per sentence, where P_style
# is the style's counts smoothed by interpolated Witten-Bell backoff (trigram -> bigram -> unigram -> the base
# model): P_n(x | ctx) = (C(ctx, x) + T(ctx) P_(n-1)(x | ctx')) / (N(ctx) + T(ctx)), T(ctx) the number of distinct
# tokens seen after ctx. A token the style never saw costs log(T / (N + T)) per order (the style's own rate of
# novelty), not the ~20 nats of the steering prior's add-k floor (k V = 49 pseudo-counts per context), which let
# one unseen name outweigh a whole sentence. "prior" scores with the steering prior's P_mix instead.
METHODS = ("backoff", "prior")
DEFAULT_METHOD = "backoff"
OVERLAP = 128  # tokens of context a window shares with the one before it, for texts longer than the window
MAX_WINDOW = 2048  # at most this many tokens per forward pass: attention's memory grows with the square

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TokenScore:
    """One token of the checked text: its characters, log-probabilities and score (None: not scored)."""

    start: int
    end: int
    token_id: int
    logp_style: float
    logp_base: float | None
    score: float | None

    def to_json(self, text: str) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": text[self.start:self.end], "token_id": self.token_id,
                "logp_style": _round(self.logp_style), "logp_base": _round(self.logp_base),
                "score": _round(self.score)}


@dataclass(frozen=True)
class SentenceScore:
    """One sentence: its characters and the mean score of its scored tokens (None when it has none)."""

    index: int
    start: int
    end: int
    score: float | None
    n_tokens: int

    def to_json(self, text: str) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "end": self.end, "text": text[self.start:self.end],
                "score": _round(self.score), "n_tokens": self.n_tokens}


@dataclass(frozen=True)
class CheckResult:
    """Scores of one text: per token and per sentence (in text order), with character spans into `text`."""

    text: str
    tokens: list[TokenScore]
    sentences: list[SentenceScore]
    method: str = DEFAULT_METHOD

    def least_in_style(self) -> list[SentenceScore]:
        """Scored sentences, the least in-style first (ties in text order)."""
        scored = [s for s in self.sentences if s.score is not None]
        return sorted(scored, key=lambda s: (s.score, s.index))

    def score(self) -> float | None:
        """The whole text's score: the mean over its scored tokens."""
        vals = [t.score for t in self.tokens if t.score is not None]
        return float(np.mean(vals)) if vals else None

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "score": _round(self.score()),
                "sentences": [s.to_json(self.text) for s in self.sentences],
                "tokens": [t.to_json(self.text) for t in self.tokens]}


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


# --- sentences ----------------------------------------------------------------------------------------
# A sentence ends after . ! ? (and any closing quotes or brackets) followed by white space and then anything but
# a lower-case letter ("“Yes!” he said." is one sentence), unless the dot ends a title ("Mr."), or at a blank line.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n[ \t]*\n")
_NEXT_WORD = re.compile(r"\s*(\S?)")
_LAST_WORD = re.compile(r"(\w+)$")
_TITLES = frozenset({"Mr", "Mrs", "Ms", "Dr", "St", "Mme", "Mlle", "Prof", "Rev", "Messrs", "Capt", "Col", "Gen",
                     "Lt", "Sgt", "Jr", "Sr", "vs", "etc", "No"})  # "Mr. Holmes" goes on


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences, white space trimmed, empty ones left out."""
    spans = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.group()[0] != "\n":
            after = _NEXT_WORD.match(text, m.end())
            if after is not None and after.group(1).islower():
                continue
            word = _LAST_WORD.search(text, 0, m.start())
            if m.group() == "." and word is not None and word.group(1) in _TITLES:
                continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


# --- log-probabilities --------------------------------------------------------------------------------
def encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (no special tokens, as the style library counts them) and their character spans."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def next_token_logprobs(model: Any, x: torch.Tensor, mask: torch.Tensor | None = None, *,
                        rows: int = 256) -> torch.Tensor:
    """[B, T] ids -> [B, T - 1] float64: log P(x[:, t + 1] | x[:, :t + 1]) under the model.

    The output layer runs on `rows` positions at a time, so a long window never holds a [T, V] float tensor
    whole (8192 x 49152 floats are 1.6 GB); log-softmax is taken as logit - logsumexp, without a copy.
    """
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    with torch.inference_mode():
        if decoder is None or head is None:
            logits = model(input_ids=x, attention_mask=mask).logits[:, :-1].float()
            picked = logits.gather(-1, x[:, 1:, None])[..., 0] - torch.logsumexp(logits, dim=-1)
            return picked.double()
        hidden = decoder(input_ids=x, attention_mask=mask).last_hidden_state[:, :-1]
        flat = hidden.reshape(-1, hidden.shape[-1])
        targets = x[:, 1:].reshape(-1)
        out = torch.empty(flat.shape[0], dtype=torch.float64, device=flat.device)
        for lo in range(0, flat.shape[0], rows):
            logits = head(flat[lo:lo + rows]).float()
            tgt = targets[lo:lo + rows, None]
            out[lo:lo + rows] = (logits.gather(-1, tgt)[:, 0] - torch.logsumexp(logits, dim=-1)).double()
        return out.reshape(x.shape[0], x.shape[1] - 1)


def base_logprobs(model: Any, ids: Sequence[int], *, window: int, bos: int | None = None,
                  overlap: int = OVERLAP, device: torch.device | str = "cpu",
                  cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """log P_base(x_t | x_<t) for every token (NaN for the first when there is no `bos` to condition on).

    One forward pass per window of `window` tokens; a text longer than that is cut into windows that
    share `overlap` tokens of context with the one before, each token scored once.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    overlap = max(0, min(overlap, window // 2))
    seq = ([bos] if bos is not None else []) + [int(t) for t in ids]
    shift = 1 if bos is not None else 0
    out = np.full(len(ids), np.nan, dtype=np.float64)
    done = 1  # positions of seq scored so far: seq[0] never is
    while done < len(seq):
        if cancel is not None and cancel():
            break
        lo = max(0, done - overlap) if done > 1 else 0
        hi = min(len(seq), lo + window)
        x = torch.tensor([seq[lo:hi]], dtype=torch.long, device=device)
        picked = next_token_logprobs(model, x)[0].cpu().numpy()  # picked[j] scores seq[lo + j + 1]
        first = max(done, lo + 1)
        for pos in range(first, hi):
            out[pos - shift] = picked[pos - lo - 1]
        done = hi
    return out


class BackoffModel:
    """A style's counts, read back from its prior's tables, smoothed by interpolated Witten-Bell backoff.

    The unigram counts are the prior's own (whole). The bigram and trigram tables hold each context's top-K
    tokens with P_n = (C + k) / (N + k V) and the floor k / (N + k V), so N and every kept count are recovered
    exactly (up to rounding); T(ctx) is the number of tokens kept, which undercounts only contexts with more
    than K followers, where N is large and T / (N + T) small anyway.
    A blend is the weighted mixture of its styles' models.
    """

    def __init__(self, prior: Any) -> None:
        parts = getattr(prior, "parts", None)
        self.parts: list[tuple[_Counts, float]] = (
            [(_Counts(p), float(w)) for p, w in parts] if parts is not None else [(_Counts(prior), 1.0)])
        self.vocab_size = int(prior.vocab_size)

    def prob(self, history: Sequence[int], token: int, p_base: float) -> float:
        """P_style(token | the last two ids of history), backing off to `p_base` below the unigram."""
        return sum(w * c.prob(history, token, p_base) for c, w in self.parts)


class _Counts:
    """One style's per-order counts: sorted context keys, row offsets, tokens, counts, N and T per context."""

    def __init__(self, prior: Any) -> None:
        V = int(prior.vocab_size)
        kV = float(prior.settings.k) * V
        k = float(prior.settings.k)
        self.vocab_size = V
        # The unigram counts are kept whole (the order-1 table holds only the top K).
        self.unigrams = np.asarray(prior.unigram_counts, np.float64)
        self.n_unigrams = float(self.unigrams.sum())
        self.unigram_types = float(np.count_nonzero(self.unigrams))
        self.orders: list[tuple[int, Any, np.ndarray, np.ndarray, np.ndarray]] = []
        for n in sorted(prior.tables):
            if n == 1:
                continue
            t = prior.tables[n]
            sizes = np.diff(t.offsets)
            denom = k / t.floor.astype(np.float64)  # N + k V per context
            totals = np.rint(denom - kV)
            counts = np.rint(t.p.astype(np.float64) * np.repeat(denom, sizes) - k)
            self.orders.append((n, t, counts, totals, sizes.astype(np.float64)))

    def prob(self, history: Sequence[int], token: int, p_base: float) -> float:
        p = p_base
        if self.n_unigrams > 0:
            c = float(self.unigrams[token]) if 0 <= token < len(self.unigrams) else 0.0
            p = (c + self.unigram_types * p) / (self.n_unigrams + self.unigram_types)
        V = self.vocab_size
        for n, table, counts, totals, types in self.orders:
            if len(history) < n - 1:
                break
            key = 0
            for t in history[len(history) - (n - 1):] if n > 1 else ():
                key = key * V + int(t)
            i = table.lookup(key)
            if i < 0 or totals[i] <= 0:
                continue
            a, b = int(table.offsets[i]), int(table.offsets[i + 1])
            hit = np.flatnonzero(table.tokens[a:b] == token)
            c = float(counts[a + hit[0]]) if len(hit) else 0.0
            p = (c + types[i] * p) / (totals[i] + types[i])
        return p


def style_logprobs(prior: Any, ids: Sequence[int], context: Sequence[int] = (), *,
                   logp_base: np.ndarray | None = None, method: str = DEFAULT_METHOD,
                   model: BackoffModel | None = None) -> np.ndarray:
    """log P_style(x_t | x_<t) for every token, the context being the two ids before each token.

    "backoff": the Witten-Bell model of the style's counts, whose bottom is the base model's probability of
    the token (`logp_base`; uniform 1/V where it is NaN or not given). "prior": the steering prior's P_mix.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    history = [int(t) for t in context][-2:]
    out = np.empty(len(ids), dtype=np.float64)
    if method == "backoff":
        model = model or BackoffModel(prior)
        uniform = 1.0 / model.vocab_size
    for i, t in enumerate(ids):
        if method == "prior":
            out[i] = prior.log_prob(history, int(t))
        else:
            lb = logp_base[i] if logp_base is not None else math.nan
            p0 = math.exp(lb) if math.isfinite(lb) else uniform
            out[i] = math.log(model.prob(history, int(t), p0))  # type: ignore[union-attr]
        history = [*history, int(t)][-2:]
    return out


def token_scores(logp_style: np.ndarray, logp_base: np.ndarray) -> np.ndarray:
    """log P_style - log P_base per token (NaN where the base log-probability is unknown); higher: more in style."""
    return np.asarray(logp_style, np.float64) - np.asarray(logp_base, np.float64)


def sentence_scores(spans: Sequence[tuple[int, int]], offsets: Sequence[tuple[int, int]],
                    scores: np.ndarray) -> list[SentenceScore]:
    """Each sentence's mean over the scored tokens that start inside it."""
    starts = np.asarray([a for a, _ in offsets], dtype=np.int64)
    out = []
    for i, (a, b) in enumerate(spans):
        lo, hi = int(np.searchsorted(starts, a)), int(np.searchsorted(starts, b))
        vals = scores[lo:hi]
        vals = vals[np.isfinite(vals)]
        out.append(SentenceScore(i, a, b, float(vals.mean()) if len(vals) else None, len(vals)))
    return out


def check_text(lm: Any, prior: Prior, text: str, *, method: str = DEFAULT_METHOD,
               cancel: Callable[[], bool] | None = None) -> CheckResult:
    """Score every token and sentence of `text` (a LoadedModel and a prior built with its tokenizer).

    The first token has no context for the base model and is left unscored.
    """
    ids, offsets = encode(lm.tokenizer, text)
    window = min(int(lm.context_length), MAX_WINDOW)
    base = base_logprobs(lm.model, ids, window=window, device=lm.device, cancel=cancel)
    style = style_logprobs(prior, ids, logp_base=base, method=method)
    scores = token_scores(style, base)
    tokens = [TokenScore(a, b, int(t), float(s), None if math.isnan(lb) else float(lb),
                         None if math.isnan(sc) else float(sc))
              for (a, b), t, s, lb, sc in zip(offsets, ids, style, base, scores, strict=True)]
    return CheckResult(text, tokens, sentence_scores(split_sentences(text), offsets, scores), method)


# --- evaluation ---------------------------------------------------------------------------------------
def roc_auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(score of a positive > score of a negative), ties counting one half (the Mann-Whitney AUC)."""
    pos = np.asarray(positive, np.float64)
    neg = np.asarray(negative, np.float64)
    if not len(pos) or not len(neg):
        raise ValueError("the AUC needs at least one positive and one negative score")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv), np.float64)
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[:len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@dataclass(frozen=True)
class Sample:
    """A sentence of a corpus with the text before it (what the model and the prior condition on)."""

    corpus: str
    context: str
    sentence: str


def sample_sentences(text: str, n: int, *, seed: int = 0, min_words: int = 5, context_chars: int = 200,
                     corpus: str = "") -> list[Sample]:
    """`n` sentences of at least `min_words` words, drawn at random (fixed seed), each with its context."""
    spans = [(a, b) for a, b in split_sentences(text) if len(text[a:b].split()) >= min_words]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(spans, min(n, len(spans))))
    return [Sample(corpus, text[max(0, a - context_chars):a], text[a:b]) for a, b in chosen]


def heldout_split(tokenizer: Any, text: str, fraction: float = 0.1) -> tuple[list[int], str]:
    """(token ids of the steering part, text of the held-out part) of a one-document corpus, cut at a
    line as engine.sweep.split_priors cuts a one-document style."""
    from engine.sweep import _newline_test, split_tokens

    ids, offsets = encode(tokenizer, text)
    cut = split_tokens(np.asarray(ids, np.int64), fraction, is_boundary=_newline_test(tokenizer))
    return ids[:cut], text[offsets[cut][0]:]


def score_samples(lm: Any, samples: Sequence[Sample], *, batch_tokens: int = 2048,
                  progress: Progress | None = None) -> list[tuple[list[int], list[int], np.ndarray]]:
    """For each sample: (context ids, sentence ids, base log-probs of the sentence ids).

    Samples run in right-padded batches of similar length (about `batch_tokens` tokens each); the context is
    a few hundred characters, far inside the model's window, so one forward covers a sample.
    """
    encoded = []
    for s in samples:
        ids, offsets = encode(lm.tokenizer, s.context + s.sentence)
        k = next((j for j, (a, _) in enumerate(offsets) if a >= len(s.context)), len(ids))
        encoded.append((ids, max(k, 1)))  # the first token has nothing to condition on
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out: list[tuple[list[int], list[int], np.ndarray] | None] = [None] * len(encoded)
    done = 0
    while done < len(order):
        width = len(encoded[order[done]][0])
        batch = [order[done]]
        while done + len(batch) < len(order):
            nxt = order[done + len(batch)]
            if (len(batch) + 1) * max(width, len(encoded[nxt][0])) > batch_tokens:
                break
            batch.append(nxt)
            width = max(width, len(encoded[nxt][0]))
        x = torch.full((len(batch), max(width, 2)), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for b, i in enumerate(batch):  # right padding: positions stay 0..n-1
            ids = encoded[i][0]
            x[b, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[b, :len(ids)] = 1
        picked = next_token_logprobs(lm.model, x.to(lm.device), mask.to(lm.device)).cpu().numpy()
        for b, i in enumerate(batch):
            ids, k = encoded[i]
            out[i] = (ids[:k], ids[k:], picked[b, k - 1:len(ids) - 1].copy())
        done += len(batch)
        if progress is not None:
            progress(done, len(encoded))
    return [o for o in out if o is not None]


def sentence_score(logp_style: np.ndarray, logp_base: np.ndarray) -> float | None:
    """A sentence's score: the mean of its tokens' scores (None when none could be scored)."""
    s = token_scores(logp_style, logp_base)
    s = s[np.isfinite(s)]
    return float(s.mean()) if len(s) else None


def evaluate_auc(lm: Any, corpora: dict[str, str], *, n_sentences: int = 300, seed: int = 0,
                 fraction: float = 0.1, method: str = DEFAULT_METHOD, settings: Any = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """How well the score tells a style's held-out sentences from other corpora's, per corpus.

    Each corpus (one document) is cut as engine.sweep cuts a one-document style: about 90% of its tokens
    build its prior, and `n_sentences` sentences (fixed seed) are drawn from the held-out rest. For each
    corpus, its held-out sentences are the positives and the other corpora's held-out sentences the
    negatives; the sentence-level ROC AUC is reported, for `method` under "corpora" and for every method
    under "by_method". The base model scores every sentence once.
    """
    from styles.ngrams import count_ngrams
    from styles.prior import StylePrior

    if len(corpora) < 2:
        raise ValueError("the evaluation needs two or more corpora")
    priors: dict[str, Any] = {}
    samples: list[Sample] = []
    for name, text in corpora.items():
        steer_ids, held = heldout_split(lm.tokenizer, text, fraction)
        priors[name] = StylePrior.from_counts(count_ngrams([steer_ids], lm.vocab_size), vocab_size=lm.vocab_size,
                                              tokenizer_fingerprint=lm.fingerprint, settings=settings, name=name)
        drawn = sample_sentences(held, n_sentences, seed=seed, corpus=name)
        if not drawn:
            raise ValueError(f"the held-out part of {name} has no sentence of five words or more")
        samples += drawn
    scored = score_samples(lm, samples, progress=progress)
    report: dict[str, Any] = {"method": method,
                              "sentences_per_corpus": n_sentences, "seed": seed, "heldout_fraction": fraction,
                              "corpora": {}, "by_method": {m: {} for m in METHODS}}
    for name, prior in priors.items():
        model = BackoffModel(prior)
        for m in METHODS:  # every method on the same sentences and base log-probabilities, side by side
            pos: list[float] = []
            neg: list[float] = []
            for s, (ctx, ids, base) in zip(samples, scored, strict=True):
                v = sentence_score(style_logprobs(prior, ids, ctx, logp_base=base, method=m, model=model), base)
                if v is not None:
                    (pos if s.corpus == name else neg).append(v)
            row = {"auc": round(roc_auc(pos, neg), 4), "positives": len(pos), "negatives": len(neg),
                   "mean_heldout": round(float(np.mean(pos)), 4), "mean_others": round(float(np.mean(neg)), 4)}
            report["by_method"][m][name] = row
            if m == method:
                report["corpora"][name] = row
    return report
