"""The paper's lambda sweep: decode prompts x modes x lambdas, score them, keep resumable results."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.types import DEFAULT_BUDGET_BITS, METRIC_NAMES, MODES, SamplingConfig, parse_mode
from styles.errors import check_tokenizer

# The paper's 14 lambda values (METHOD.md, Protocol).
PAPER_LAMS: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.0)
TUNE_LAMS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
PROMPT_MODE = "prompt"  # rows of the prompt-only baseline (instruction prepended, lambda 0)
METRICS: tuple[str, ...] = (*METRIC_NAMES, "heldout_style_ppl")
RESULT_COLUMNS: tuple[str, ...] = ("prompt", "mode", "lam", "text", *METRICS)
STATS: tuple[str, ...] = ("mean", "median", "cv")
SUMMARY_COLUMNS: tuple[str, ...] = ("mode", "lam", *tuple(f"{m}_{s}" for m in METRICS for s in STATS))
HELDOUT_FRACTION = 0.1

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
SUMMARY_CSV = "summary.csv"
META_JSON = "sweep.json"

Progress = Callable[[int, int], None]


class SweepConfigError(ValueError):
    """An output folder already holds results made with another configuration."""


# --- prompts ----------------------------------------------------------------------------------------
def read_prompts(text: str) -> list[str]:
    """One prompt per non-blank line; surrounding whitespace is dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_prompts() -> list[str]:
    """The paper's 20 prompts, shipped with the engine."""
    return read_prompts(resources.files("engine").joinpath("data/paper_prompts.txt").read_text("utf-8"))


def parse_lams(text: str) -> list[float]:
    """'0,0.05,0.1' -> [0.0, 0.05, 0.1]; each in [0, 1]; raises ValueError with a one-line message."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            lam = float(part)
        except ValueError:
            raise ValueError(f"not a number in the lambda list: {part!r}") from None
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda must be in [0, 1], got {lam:g}")
        out.append(lam)
    if not out:
        raise ValueError("the lambda list is empty")
    return sorted(set(out))


def _lam_key(lam: float) -> float:
    # Lambdas travel through CSV/JSON text; rounding makes "0.1" and 0.1000000001 the same row.
    return round(float(lam), 6)


def row_key(prompt: str, mode: str, lam: float) -> tuple[str, str, float]:
    return (prompt, mode, _lam_key(lam))


# --- held-out split ---------------------------------------------------------------------------------
def _sha_order(ids: Iterable[Any]) -> list[Any]:
    """A deterministic order that does not depend on how or when documents were imported."""
    return sorted(ids, key=lambda d: hashlib.sha256(str(d).encode("utf-8")).hexdigest())


def split_documents(doc_ids: Sequence[Any], fraction: float = HELDOUT_FRACTION) -> tuple[list[Any], list[Any]]:
    """(steering, held-out) document ids: the first ceil(fraction * n) in sha256 order are held out."""
    ordered = _sha_order(doc_ids)
    if len(ordered) < 2:
        raise ValueError("a document split needs at least two documents")
    n_held = min(len(ordered) - 1, max(1, math.ceil(fraction * len(ordered))))
    held = ordered[:n_held]
    return ordered[n_held:], held


def split_tokens(ids: np.ndarray, fraction: float = HELDOUT_FRACTION, *,
                 is_boundary: Callable[[int], bool] | None = None, window: int = 4000) -> int:
    """Cut index for a one-document style: about (1 - fraction) of the tokens go to steering.

    With `is_boundary(token_id)`, the cut moves forward to just after the first boundary token
    (a newline) within `window` tokens, so that the held-out part starts at a line.
    """
    n = len(ids)
    if n < 2:
        raise ValueError("a style needs at least two tokens to hold some out")
    cut = min(n - 1, max(1, round(n * (1.0 - fraction))))
    if is_boundary is not None:
        for i in range(cut, min(n - 1, cut + window)):
            if is_boundary(int(ids[i])):
                return i + 1
    return cut


def _newline_test(tokenizer: Any) -> Callable[[int], bool] | None:
    if tokenizer is None:
        return None
    cache: dict[int, bool] = {}

    def is_newline(tok: int) -> bool:
        if tok not in cache:
            cache[tok] = "\n" in tokenizer.decode([tok])
        return cache[tok]

    return is_newline


def split_priors(store: Any, name: str, lm_or_fingerprint: Any, device: Any = "cpu", *,
                 vocab_size: int | None = None, settings: Any = None,
                 fraction: float = HELDOUT_FRACTION) -> tuple[Any, Any]:
    """(steering prior, held-out prior) for a style: 90% / 10% of its documents, never overlapping.

    With one document the split is on its token ids, at a line boundary when the tokenizer is known.
    `lm_or_fingerprint` is a LoadedModel (fingerprint, vocab size and tokenizer taken from it) or a
    tokenizer fingerprint string (then `vocab_size` is required).
    """
    from styles.prior import StylePrior

    if isinstance(lm_or_fingerprint, str):
        fingerprint, tokenizer = lm_or_fingerprint, None
    else:
        fingerprint = lm_or_fingerprint.fingerprint
        tokenizer = getattr(lm_or_fingerprint, "tokenizer", None)
        vocab_size = vocab_size or lm_or_fingerprint.vocab_size
    info = store.get(name) if hasattr(store, "get") else None
    if info is not None:
        model = getattr(lm_or_fingerprint, "name", None)
        check_tokenizer(info.name, info.tokenizer_fingerprint, fingerprint, model=model)
        vocab_size = vocab_size or info.vocab_size
    if vocab_size is None:
        raise ValueError("vocab_size is required when a fingerprint string is given")
    docs = list(store.document_ids(name))
    if not docs:
        raise ValueError(f"style {name!r} has no documents")
    if len(docs) >= 2:
        steer_docs, held_docs = split_documents(docs, fraction)
        steer_counts = store.load_counts(name, documents=steer_docs)
        held_counts = store.load_counts(name, documents=held_docs)
    else:
        from styles.ngrams import count_ngrams

        ids = np.asarray(store.document_token_ids(name, docs[0]), dtype=np.int64)
        cut = split_tokens(ids, fraction, is_boundary=_newline_test(tokenizer))
        steer_counts = count_ngrams([ids[:cut]], vocab_size)
        held_counts = count_ngrams([ids[cut:]], vocab_size)

    def build(counts: Any) -> Any:
        return StylePrior.from_counts(counts, vocab_size=vocab_size, tokenizer_fingerprint=fingerprint,
                                      settings=settings, device=device)

    return build(steer_counts), build(held_counts)


# --- statistics -------------------------------------------------------------------------------------
def _finite(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


def stats(values: Iterable[Any]) -> dict[str, float | None]:
    """mean, median and coefficient of variation (population std / mean) of the finite values."""
    vals = _finite(values)
    if not vals:
        return {"mean": None, "median": None, "cv": None}
    mean = statistics.fmean(vals)
    std = statistics.pstdev(vals)
    return {"mean": mean, "median": statistics.median(vals), "cv": std / abs(mean) if mean != 0 else None}


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (mode, lambda) with <metric>_mean, _median and _cv; modes in MODES order, prompt last."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["mode"], _lam_key(r["lam"])), []).append(r)
    mode_rank = {m: i for i, m in enumerate((*MODES, PROMPT_MODE))}
    out = []
    for (mode, lam) in sorted(groups, key=lambda k: (mode_rank.get(k[0], len(mode_rank)), k[0], k[1])):
        summary: dict[str, Any] = {"mode": mode, "lam": lam}
        for m in METRICS:
            for s, v in stats(r.get(m) for r in groups[(mode, lam)]).items():
                summary[f"{m}_{s}"] = v
        out.append(summary)
    return out


@dataclass(frozen=True)
class ParetoPoint:
    """One lambda on the base PPL (fluency) vs held-out style PPL plane; lower is better on both."""

    mode: str
    lam: float
    base_ppl: float
    heldout_style_ppl: float


def pareto_front(points: Sequence[ParetoPoint]) -> list[ParetoPoint]:
    """The points no other point beats on both axes (ties kept), sorted by base PPL."""
    front = []
    for p in points:
        dominated = any(q.base_ppl <= p.base_ppl and q.heldout_style_ppl <= p.heldout_style_ppl
                        and (q.base_ppl < p.base_ppl or q.heldout_style_ppl < p.heldout_style_ppl) for q in points)
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p.base_ppl, p.heldout_style_ppl, p.lam))


def summary_points(summary: Iterable[dict[str, Any]], stat: str = "median") -> list[ParetoPoint]:
    """Pareto plane points from summary rows (those with both values)."""
    pts = []
    for r in summary:
        b, s = r.get(f"base_ppl_{stat}"), r.get(f"heldout_style_ppl_{stat}")
        if b is not None and s is not None and math.isfinite(b) and math.isfinite(s):
            pts.append(ParetoPoint(r["mode"], float(r["lam"]), float(b), float(s)))
    return pts


def propose_lam(summary: Sequence[dict[str, Any]], margin: float = 0.25, *, repetition_guard: bool = True) -> float:
    """The lambda with the lowest median held-out style PPL whose median base PPL stays within
    (1 + margin) x that of lambda = 0 (ties go to the smaller lambda). `summary` holds one mode.

    Base PPL alone misses the paper's collapse: a repetition loop is easy for the frozen model to
    predict, so its base PPL can even fall. With `repetition_guard` (and distinct-2 measured), a
    lambda must also keep its median distinct-2 at or above (1 - margin) x that of lambda = 0.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    zero = [r for r in summary if _lam_key(r["lam"]) == 0.0]
    if not zero or zero[0].get("base_ppl_median") is None:
        raise ValueError("proposing a lambda needs a measured lambda = 0 row")
    limit = (1.0 + margin) * float(zero[0]["base_ppl_median"])
    d2_zero = zero[0].get("distinct_2_median")
    d2_limit = (1.0 - margin) * float(d2_zero) if repetition_guard and d2_zero is not None else None
    best: tuple[float, float] | None = None
    for r in summary:
        b, s = r.get("base_ppl_median"), r.get("heldout_style_ppl_median")
        if b is None or s is None or not math.isfinite(b) or not math.isfinite(s) or b > limit + 1e-9:
            continue
        d2 = r.get("distinct_2_median")
        if d2_limit is not None and _lam_key(r["lam"]) != 0.0 and (d2 is None or d2 < d2_limit - 1e-9):
            continue
        cand = (float(s), _lam_key(r["lam"]))
        if best is None or cand < best:
            best = cand
    return best[1] if best is not None else 0.0


# --- files ------------------------------------------------------------------------------------------
def _clean(v: Any) -> Any:
    # JSON has no NaN/inf: a metric that could not be measured is null (an empty CSV cell).
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (np.floating, np.integer)):
        return _clean(v.item())
    return v


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.jsonl; a line cut short by an interruption is dropped."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and all(c in r for c in ("prompt", "mode", "lam")):
            rows.append(r)
    return rows


def _dedupe(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, float], dict[str, Any]] = {}
    for r in rows:
        seen.setdefault(row_key(r["prompt"], r["mode"], r["lam"]), r)
    return list(seen.values())


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if _clean(r.get(c)) is None else _clean(r.get(c))) for c in columns})
    tmp.replace(path)


def read_csv(path: Path) -> list[dict[str, Any]]:
    """A results/summary CSV back as dicts: numbers as floats, empty cells as None."""
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k in ("prompt", "mode", "text"):
                    row[k] = v
                else:
                    row[k] = float(v) if v not in ("", None) else None
            out.append(row)
    return out


def write_tables(out_dir: Path, rows: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """(Re)write results.csv and summary.csv from results.jsonl; returns the summary rows."""
    out_dir = Path(out_dir)
    rows = _dedupe(load_rows(out_dir / RESULTS_JSONL) if rows is None else rows)
    mode_rank = {m: i for i, m in enumerate((*MODES, PROMPT_MODE))}
    rows = sorted(rows, key=lambda r: (mode_rank.get(r["mode"], 99), r["mode"], _lam_key(r["lam"])))
    write_csv(out_dir / RESULTS_CSV, rows, RESULT_COLUMNS)
    summary = summarize(rows)
    write_csv(out_dir / SUMMARY_CSV, summary, SUMMARY_COLUMNS)
    return summary


def read_meta(out_dir: Path) -> dict[str, Any]:
    p = Path(out_dir) / META_JSON
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text("utf-8"))
    except json.JSONDecodeError:
        return {}


def _write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    p = Path(out_dir) / META_JSON
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True), "utf-8")
    tmp.replace(p)


# Settings that change what a row means: resuming with any of them different would mix results.
CONFIG_KEYS = ("style", "model", "max_new_tokens", "sample", "budget_bits", "prompt_baseline")


# --- decoding and scoring ---------------------------------------------------------------------------
class SweepBackend(Protocol):
    """Decodes and scores one batch of rows of one mode."""

    def run_batch(self, mode: str, prompts: Sequence[str], lams: Sequence[float], *, prefix: str = "",
                  cancel: threading.Event | None = None,
                  on_step: Callable[[int, int], None] | None = None) -> list[dict[str, Any]] | None:
        """One result row per (prompt, lam) (zipped); `prefix` is prepended to each prompt for decoding
        but the metrics score the continuation after the bare prompt. None when cancelled."""
        ...


def sampling_config(max_new_tokens: int, sample: bool | str = False, seed: int = 0) -> SamplingConfig:
    """The sweep's decoding: greedy (False), the paper's sampling check (True or "paper": top-p 0.9, temperature
    1.0, no repetition penalty), or "product": the app's own default sampling (SamplingConfig's defaults:
    temperature 0.8, top-k 50, top-p 0.95, repetition penalty 1.15), seeded."""
    if sample == "product":
        return SamplingConfig(max_new_tokens=max_new_tokens, greedy=False, seed=seed, n_alternatives=0,
                              diagnostics=False)
    if sample in (True, "paper"):
        return SamplingConfig(max_new_tokens=max_new_tokens, greedy=False, temperature=1.0, top_k=0, top_p=0.9,
                              repetition_penalty=1.0, seed=seed, n_alternatives=0, diagnostics=False)
    if sample not in (False, None, "", "greedy"):
        raise ValueError(f"sample must be greedy, paper or product, got {sample!r}")
    return SamplingConfig(max_new_tokens=max_new_tokens, greedy=True, repetition_penalty=1.0, n_alternatives=0,
                          diagnostics=False)


class EngineBackend:
    """The real backend: engine.decode.generate_batch, then engine.metrics under both priors."""

    def __init__(self, lm: Any, steer_prior: Any, heldout_prior: Any, sampling: SamplingConfig, *,
                 budget_bits: float = DEFAULT_BUDGET_BITS) -> None:
        self.lm = lm
        self.steer = steer_prior
        self.heldout = heldout_prior
        self.sampling = sampling
        self.budget_bits = budget_bits
        from styles.prior import TOP_UNIGRAMS

        self._top_ids = steer_prior.top_unigram_ids(TOP_UNIGRAMS)
        self._prompt_ids: dict[str, list[int]] = {}

    def _bare_prompt_ids(self, prompt: str) -> list[int]:
        # Tokenised as engine.decode tokenises a prompt, so that baseline rows are scored in the same context.
        if prompt not in self._prompt_ids:
            ids = self.lm.tokenizer(prompt, add_special_tokens=True)["input_ids"]
            self._prompt_ids[prompt] = [int(t) for t in ids]
        return self._prompt_ids[prompt]

    def run_batch(self, mode: str, prompts: Sequence[str], lams: Sequence[float], *, prefix: str = "",
                  cancel: threading.Event | None = None,
                  on_step: Callable[[int, int], None] | None = None) -> list[dict[str, Any]] | None:
        from engine import metrics
        from engine.decode import generate_batch

        decode_mode = parse_mode("paper" if mode == PROMPT_MODE else mode)  # lambda 0 leaves the model untouched
        results = generate_batch(self.lm, [prefix + p for p in prompts], list(lams), mode=decode_mode,
                                 prior=self.steer, sampling=self.sampling, budget_bits=self.budget_bits,
                                 cancel=cancel, progress=on_step)
        if cancel is not None and cancel.is_set():
            return None
        if len(results) != len(prompts):
            raise RuntimeError(f"generate_batch returned {len(results)} rows for {len(prompts)} requests")
        contexts = [list(r.prompt_ids) if not prefix else self._bare_prompt_ids(p)
                    for p, r in zip(prompts, results, strict=True)]
        tokens = [[int(t) for t in r.token_ids] for r in results]
        # The decode loop already has the frozen model's log-probabilities of every token it chose, given
        # the prompt: scoring them again would double the sweep's cost. The prompt-only baseline is scored
        # after the bare prompt, which needs its own forward pass.
        base: list[float | None] = [None] * len(results)
        again = []
        for i, (r, toks) in enumerate(zip(results, tokens, strict=True)):
            lps = getattr(r, "base_logprobs", None)
            if not prefix and lps is not None and len(lps) == len(toks):
                base[i] = metrics.perplexity(lps)
            elif toks:
                again.append(i)
        if again:
            for i, b in zip(again, metrics.base_ppl_batch(self.lm, [contexts[i] for i in again],
                                                          [tokens[i] for i in again]), strict=True):
                base[i] = b
        rows = []
        for p, lam, r, ctx, toks, b in zip(prompts, lams, results, contexts, tokens, base, strict=True):
            # The prompt-only baseline has no steered/base pair to compare: no JS for it.
            js = [] if prefix else _finite(r.js_bits)
            m = metrics.compute_metrics(self.lm, ctx, toks, js, self.steer, base=b, top_ids=self._top_ids) \
                if toks else dict.fromkeys(METRIC_NAMES)
            row: dict[str, Any] = {"prompt": p, "mode": mode, "lam": _lam_key(lam), "text": r.text, **m,
                                   "heldout_style_ppl": metrics.style_ppl(self.heldout, ctx, toks) if toks else None}
            rows.append({k: _clean(v) for k, v in row.items()})
        return rows


# --- the sweep --------------------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    """What a call to run_sweep did."""

    out_dir: Path
    done: int  # rows decoded by this call
    skipped: int  # rows already in results.jsonl
    total: int
    seconds: float
    cancelled: bool
    summary: list[dict[str, Any]] = field(default_factory=list)


def plan_rows(prompts: Sequence[str], lams: Sequence[float], modes: Sequence[str],
              prompt_baseline: str | None = None) -> list[tuple[str, str, float]]:
    """Every (prompt, mode, lam) the sweep should produce, baseline first, then mode by mode, lambda by lambda."""
    plan = [(p, PROMPT_MODE, 0.0) for p in prompts] if prompt_baseline else []
    for mode in modes:
        plan += [(p, mode, _lam_key(lam)) for lam in lams for p in prompts]
    return plan


def baseline_prefix(text: str) -> str:
    """The instruction as prepended: followed by a blank line unless it already ends in whitespace."""
    return text if text[-1:].isspace() else text + "\n\n"


RowKey = tuple[str, str, float]


def _merged_meta(out_dir: Path, config: dict[str, Any], prompt_baseline: str | None) -> dict[str, Any]:
    """The folder's sweep.json with this run's configuration merged in; SweepConfigError on a conflict."""
    config = {**config, "prompt_baseline": prompt_baseline}
    meta = read_meta(out_dir)
    old = meta.get("config")
    if old is not None:
        # A prompt-only baseline may be added to, or left out of, a later run; only another text conflicts.
        diff = [k for k in CONFIG_KEYS if k in old and k in config and old[k] != config[k]
                and not (k == "prompt_baseline" and (old[k] is None or config[k] is None))]
        if diff:
            raise SweepConfigError(
                f"{out_dir} holds a sweep with other settings ({', '.join(f'{k}={old[k]!r}' for k in diff)}); "
                "choose another output folder")
        if config.get("prompt_baseline") is None:
            config["prompt_baseline"] = old.get("prompt_baseline")
    meta["config"] = {**(old or {}), **config}
    meta.setdefault("timing", {})
    return meta


def _pending(jsonl: Path, plan: list[RowKey]) -> list[RowKey]:
    """The planned rows not yet in results.jsonl (whose cut-short last line, if any, is dropped)."""
    existing = load_rows(jsonl)
    if jsonl.exists() and jsonl.read_bytes()[-1:] not in (b"", b"\n"):
        # The last line was cut short by an interruption: rewrite only the whole rows.
        jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in existing), "utf-8")
    done_keys = {row_key(r["prompt"], r["mode"], r["lam"]) for r in existing}
    return [k for k in dict.fromkeys(plan) if k not in done_keys]


def _batches(pending: list[RowKey], batch_rows: int) -> list[tuple[str, list[RowKey]]]:
    """Pending rows cut into batches of one mode each, at most batch_rows long."""
    batches: list[tuple[str, list[RowKey]]] = []
    for mode in dict.fromkeys(k[1] for k in pending):
        keys = [k for k in pending if k[1] == mode]
        batches += [(mode, keys[i:i + batch_rows]) for i in range(0, len(keys), batch_rows)]
    return batches


def _save_batch(out_dir: Path, meta: dict[str, Any], mode: str, rows: list[dict[str, Any]],
                wall: float, cpu: float) -> None:
    """Append a batch's rows to results.jsonl and its time to sweep.json."""
    with (out_dir / RESULTS_JSONL).open("a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({c: _clean(r.get(c)) for c in RESULT_COLUMNS}, ensure_ascii=False) + "\n")
    # Wall time and this process's CPU time: on a shared machine the two differ a lot.
    t = meta["timing"].setdefault(mode, {"seconds": 0.0, "rows": 0})
    t["seconds"] += wall
    t["cpu_seconds"] = t.get("cpu_seconds", 0.0) + cpu
    t["rows"] += len(rows)
    _write_meta(out_dir, meta)


def run_sweep(backend: SweepBackend, out_dir: Path | str, *, prompts: Sequence[str], lams: Sequence[float],
              modes: Sequence[str], config: dict[str, Any], prompt_baseline: str | None = None,
              batch_rows: int = 40, max_new_tokens: int = 256, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> SweepOutcome:
    """Run (or continue) a sweep into `out_dir`.

    Finished rows are appended to results.jsonl batch by batch; rows already there are skipped, so an
    interrupted sweep continues where it stopped. results.csv and summary.csv are rewritten at the end.
    `progress(done, total)` counts generated token-rows (rows x max_new_tokens), so it moves within a batch.
    """
    for m in modes:
        parse_mode(m)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = _merged_meta(out_dir, config, prompt_baseline)
    plan = plan_rows(prompts, lams, modes, prompt_baseline)
    pending = _pending(out_dir / RESULTS_JSONL, plan)
    total, skipped = len(pending), len(plan) - len(pending)
    steps_total = total * max_new_tokens
    _write_meta(out_dir, meta)

    start = time.perf_counter()
    done = 0
    cancelled = False
    if progress:
        progress(0, steps_total)
    for mode, keys in _batches(pending, batch_rows):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break

        def on_step(step: int, steps: int, _base: int = done * max_new_tokens, _w: int = len(keys)) -> None:
            if progress and steps:
                progress(_base + int(_w * max_new_tokens * min(step, steps) / steps), steps_total)

        t0, c0 = time.perf_counter(), time.process_time()
        prefix = baseline_prefix(prompt_baseline) if mode == PROMPT_MODE and prompt_baseline else ""
        rows = backend.run_batch(mode, [k[0] for k in keys], [k[2] for k in keys], prefix=prefix, cancel=cancel,
                                 on_step=on_step)
        if rows is None:
            cancelled = True
            break
        _save_batch(out_dir, meta, mode, rows, time.perf_counter() - t0, time.process_time() - c0)
        done += len(rows)
        if progress:
            progress(done * max_new_tokens, steps_total)
    summary = write_tables(out_dir)
    return SweepOutcome(out_dir, done, skipped, total + skipped, time.perf_counter() - start, cancelled, summary)


# --- tuning lambda for the app ----------------------------------------------------------------------
@dataclass
class TuneResult:
    """A small sweep's outcome for one style and mode, with a proposed lambda."""

    style: str
    mode: str
    margin: float
    rows: list[dict[str, Any]]  # per-lambda summary rows (summarize() columns)
    proposed_lam: float | None
    pareto: list[ParetoPoint]  # every lambda's point, in lambda order (front: pareto_front(pareto))
    texts: dict[float, str] = field(default_factory=dict)  # the first prompt's continuation per lambda
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def front(self) -> list[ParetoPoint]:
        return pareto_front(self.pareto)


def tune_from_rows(rows: Sequence[dict[str, Any]], *, style: str, mode: str, margin: float,
                   seconds: float = 0.0, cancelled: bool = False, repetition_guard: bool = True) -> TuneResult:
    """Summarise a small sweep's rows into a TuneResult (the pure half of `tune`)."""
    summary = [r for r in summarize(rows) if r["mode"] == mode]
    try:
        proposed = propose_lam(summary, margin, repetition_guard=repetition_guard) if summary else None
    except ValueError:
        proposed = None
    first = rows[0]["prompt"] if rows else None
    texts = {_lam_key(r["lam"]): r["text"] for r in rows if r["prompt"] == first and r["mode"] == mode}
    return TuneResult(style=style, mode=mode, margin=margin, rows=summary, proposed_lam=proposed,
                      pareto=summary_points(summary), texts=texts, seconds=seconds, cancelled=cancelled)


def tune(lm: Any, store: Any, style_name: str, *, prompts: Sequence[str] | None = None,
         lams: Sequence[float] = TUNE_LAMS, mode: str = "dense", max_new_tokens: int = 48, margin: float = 0.25,
         n_prompts: int = 4, budget_bits: float = DEFAULT_BUDGET_BITS, repetition_guard: bool = True,
         priors: tuple[Any, Any] | None = None,
         backend: SweepBackend | None = None, progress: Progress | None = None,
         cancel: threading.Event | None = None) -> TuneResult:
    """A small greedy sweep for one style (all rows in one batch) and the lambda it proposes.

    prompts default to the first `n_prompts` paper prompts; lambda 0 is always included, since the
    proposal is measured against it. `progress(done, total)` counts generated token-rows.
    """
    parse_mode(mode)
    prompts = list(prompts) if prompts is not None else default_prompts()[:max(1, n_prompts)]
    lams = sorted({_lam_key(x) for x in lams} | {0.0})
    if backend is None:
        steer, held = priors if priors is not None else split_priors(store, style_name, lm, lm.device)
        backend = EngineBackend(lm, steer, held, sampling_config(max_new_tokens), budget_bits=budget_bits)
    keys = [(p, lam) for lam in lams for p in prompts]
    total = len(keys) * max_new_tokens
    t0 = time.perf_counter()

    def on_step(step: int, steps: int) -> None:
        if progress and steps:
            progress(int(total * min(step, steps) / steps), total)

    if progress:
        progress(0, total)
    rows = backend.run_batch(mode, [k[0] for k in keys], [k[1] for k in keys], cancel=cancel, on_step=on_step)
    if rows is None:
        return tune_from_rows([], style=style_name, mode=mode, margin=margin,
                              seconds=time.perf_counter() - t0, cancelled=True)
    if progress:
        progress(total, total)
    return tune_from_rows(rows, style=style_name, mode=mode, margin=margin, seconds=time.perf_counter() - t0,
                          repetition_guard=repetition_guard)
