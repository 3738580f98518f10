"""The lambda sweep: statistics, resumable files, the proposal rule and the held-out split."""

from __future__ import annotations

import csv
import json
import math
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine import sweep
from engine.sweep import (
    METRICS,
    PAPER_LAMS,
    PROMPT_MODE,
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    ParetoPoint,
    SweepConfigError,
    default_prompts,
    pareto_front,
    propose_lam,
    run_sweep,
    split_documents,
    split_priors,
    split_tokens,
    summarize,
    tune,
    tune_from_rows,
)


class FakeBackend:
    """Deterministic rows: base PPL rises with lambda, held-out style PPL falls until 0.3 then rises."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[tuple[str, list[str], list[float], str]] = []
        self.fail_on_call = fail_on_call

    def run_batch(self, mode, prompts, lams, *, prefix="", cancel=None, on_step=None):
        self.calls.append((mode, list(prompts), list(lams), prefix))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-sweep
        if on_step:
            on_step(1, 2)
            on_step(2, 2)
        rows = []
        for p, lam in zip(prompts, lams, strict=True):
            i = len(p)
            rows.append({
                "prompt": p, "mode": mode, "lam": lam, "text": f"{prefix}{p} -> {mode} {lam}",
                "style_ppl": 100.0 - 50 * lam, "base_ppl": 10.0 + 100 * lam ** 2 + i,
                "js_mean_bits": 0.1 * lam, "js_median_bits": 0.05 * lam if mode != PROMPT_MODE else None,
                "unigram_overlap": 0.8, "bigram_seen": 0.5, "distinct_2": 0.9,
                "heldout_style_ppl": 200.0 - 300 * lam + 500 * max(0.0, lam - 0.3),
            })
        return rows


PROMPTS = ["a", "bb", "ccc"]
CONFIG = {"style": "s", "model": "m", "max_new_tokens": 8, "sample": False, "budget_bits": 0.05}


def test_default_prompts_are_the_papers_twenty() -> None:
    prompts = default_prompts()
    assert len(prompts) == 20
    assert prompts[0] == "I still remember the moment when everything began to change"
    shared = Path(__file__).resolve().parents[2] / ".." / "shared" / "paper_prompts.txt"
    if shared.exists():
        assert prompts == sweep.read_prompts(shared.read_text("utf-8"))


def test_parse_lams() -> None:
    assert sweep.parse_lams("0, 0.1,0.05,0.1") == [0.0, 0.05, 0.1]
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        sweep.parse_lams("0,1.5")
    with pytest.raises(ValueError, match="not a number"):
        sweep.parse_lams("0,x")
    assert len(PAPER_LAMS) == 14


def test_summary_statistics_by_hand() -> None:
    rows = [
        {"prompt": "a", "mode": "dense", "lam": 0.1, "base_ppl": 10.0, "style_ppl": 1.0},
        {"prompt": "b", "mode": "dense", "lam": 0.1, "base_ppl": 20.0, "style_ppl": None},
        {"prompt": "c", "mode": "dense", "lam": 0.1, "base_ppl": 60.0, "style_ppl": 3.0},
        {"prompt": "a", "mode": "paper", "lam": 0.0, "base_ppl": 5.0, "style_ppl": float("nan")},
    ]
    summary = summarize(rows)
    assert [(r["mode"], r["lam"]) for r in summary] == [("paper", 0.0), ("dense", 0.1)]
    dense = summary[1]
    assert dense["base_ppl_mean"] == pytest.approx(30.0)
    assert dense["base_ppl_median"] == pytest.approx(20.0)
    # population std of (10, 20, 60) = sqrt((400 + 100 + 900) / 3)
    assert dense["base_ppl_cv"] == pytest.approx(math.sqrt(1400 / 3) / 30.0)
    # None and NaN are left out, not counted as zero
    assert dense["style_ppl_mean"] == pytest.approx(2.0)
    assert dense["style_ppl_median"] == pytest.approx(2.0)
    assert summary[0]["style_ppl_mean"] is None and summary[0]["style_ppl_cv"] is None
    assert summary[0]["base_ppl_cv"] == 0.0
    assert set(SUMMARY_COLUMNS) <= set(dense)


def test_files_have_exactly_the_issue_columns(tmp_path: Path) -> None:
    out = run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS, lams=[0.0, 0.5], modes=["paper", "dense"],
                    config=CONFIG, batch_rows=4, max_new_tokens=8)
    assert out.done == out.total == 12 and not out.cancelled
    assert RESULT_COLUMNS == ("prompt", "mode", "lam", "text", "style_ppl", "base_ppl", "js_mean_bits",
                              "js_median_bits", "unigram_overlap", "bigram_seen", "distinct_2",
                              "heldout_style_ppl")
    with (tmp_path / "results.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == RESULT_COLUMNS
        assert len(list(reader)) == 12
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 12
    assert all(tuple(json.loads(line)) == RESULT_COLUMNS for line in lines)
    with (tmp_path / "summary.csv").open() as f:
        reader = csv.DictReader(f)
        expected = ["mode", "lam"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "median", "cv")]
        assert reader.fieldnames == expected
        assert [(r["mode"], float(r["lam"])) for r in reader] == [
            ("paper", 0.0), ("paper", 0.5), ("dense", 0.0), ("dense", 0.5)]


def test_resume_skips_rows_already_done(tmp_path: Path) -> None:
    first = FakeBackend(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(first, tmp_path, prompts=PROMPTS, lams=[0.0, 0.25, 0.5], modes=["dense"], config=CONFIG,
                  batch_rows=2, max_new_tokens=8)
    done_before = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(done_before) == 4  # two whole batches landed before the interruption
    # A line cut short by the interruption is dropped and the rest kept.
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write('{"prompt": "ccc", "mode": "dense", "la')
    second = FakeBackend()
    out = run_sweep(second, tmp_path, prompts=PROMPTS, lams=[0.0, 0.25, 0.5], modes=["dense"], config=CONFIG,
                    batch_rows=2, max_new_tokens=8)
    assert out.skipped == 4 and out.done == 5
    decoded = {(p, lam) for _, ps, ls, _ in second.calls for p, lam in zip(ps, ls, strict=True)}
    assert decoded.isdisjoint({(r["prompt"], r["lam"]) for r in done_before})
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 9
    assert Counter((r["prompt"], r["lam"]) for r in rows).most_common(1)[0][1] == 1
    # A third run has nothing left to do but still rewrites the tables.
    third = FakeBackend()
    out = run_sweep(third, tmp_path, prompts=PROMPTS, lams=[0.0, 0.25, 0.5], modes=["dense"], config=CONFIG,
                    batch_rows=2, max_new_tokens=8)
    assert out.done == 0 and third.calls == []
    assert len(list(csv.DictReader((tmp_path / "results.csv").open()))) == 9


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS[:1], lams=[0.0], modes=["dense"], config=CONFIG)
    with pytest.raises(SweepConfigError, match="max_new_tokens"):
        run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS[:1], lams=[0.0], modes=["dense"],
                  config={**CONFIG, "max_new_tokens": 16})


def test_prompt_baseline_can_be_added_later_but_not_changed(tmp_path: Path) -> None:
    run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS[:1], lams=[0.0], modes=["dense"], config=CONFIG)
    run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS[:1], lams=[0.0], modes=["dense"], config=CONFIG,
              prompt_baseline="Write like Holmes:")
    run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS[:1], lams=[0.0], modes=["dense"], config=CONFIG)
    assert sweep.read_meta(tmp_path)["config"]["prompt_baseline"] == "Write like Holmes:"
    with pytest.raises(SweepConfigError, match="prompt_baseline"):
        run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS[:1], lams=[0.0], modes=["dense"], config=CONFIG,
                  prompt_baseline="Write like Watson:")


def test_cancel_stops_between_batches(tmp_path: Path) -> None:
    cancel = threading.Event()
    backend = FakeBackend()

    def progress(done: int, total: int) -> None:
        if done >= 2 * 8:  # after the first batch of two rows
            cancel.set()

    out = run_sweep(backend, tmp_path, prompts=PROMPTS, lams=[0.0, 0.5], modes=["dense"], config=CONFIG,
                    batch_rows=2, max_new_tokens=8, progress=progress, cancel=cancel)
    assert out.cancelled and out.done == 2 and len(backend.calls) == 1


def test_prompt_baseline_rows(tmp_path: Path) -> None:
    backend = FakeBackend()
    run_sweep(backend, tmp_path, prompts=PROMPTS, lams=[0.0, 0.5], modes=["dense"], config=CONFIG,
              prompt_baseline="Write like Holmes:", batch_rows=10)
    mode, prompts, lams, prefix = backend.calls[0]
    assert mode == PROMPT_MODE and prompts == PROMPTS and lams == [0.0] * 3
    assert prefix == "Write like Holmes:\n\n"
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sum(r["mode"] == PROMPT_MODE for r in rows) == 3
    assert all(r["prompt"] in PROMPTS for r in rows)  # the bare prompt is the row's key
    summary = summarize(rows)
    assert summary[-1]["mode"] == PROMPT_MODE


def test_proposed_lambda_rule() -> None:
    summary = [
        {"mode": "dense", "lam": 0.0, "base_ppl_median": 10.0, "heldout_style_ppl_median": 100.0},
        {"mode": "dense", "lam": 0.1, "base_ppl_median": 11.0, "heldout_style_ppl_median": 80.0},
        {"mode": "dense", "lam": 0.2, "base_ppl_median": 12.5, "heldout_style_ppl_median": 70.0},  # at the margin
        {"mode": "dense", "lam": 0.3, "base_ppl_median": 12.6, "heldout_style_ppl_median": 60.0},  # over it
        {"mode": "dense", "lam": 0.5, "base_ppl_median": 9.0, "heldout_style_ppl_median": 70.0},  # tie: larger lam
    ]
    assert propose_lam(summary, 0.25) == 0.2
    assert propose_lam(summary, 0.3) == 0.3
    assert propose_lam(summary, 0.0) == 0.5
    worse = [dict(r, heldout_style_ppl_median=100.0 + r["lam"]) for r in summary]
    assert propose_lam(worse, 1.0) == 0.0
    with pytest.raises(ValueError, match="lambda = 0"):
        propose_lam(summary[1:], 0.25)


def test_repetition_guard() -> None:
    summary = [
        {"mode": "dense", "lam": 0.0, "base_ppl_median": 10.0, "heldout_style_ppl_median": 100.0,
         "distinct_2_median": 0.8},
        {"mode": "dense", "lam": 0.3, "base_ppl_median": 11.0, "heldout_style_ppl_median": 80.0,
         "distinct_2_median": 0.6},  # exactly (1 - 0.25) x 0.8
        {"mode": "dense", "lam": 0.9, "base_ppl_median": 9.0, "heldout_style_ppl_median": 40.0,
         "distinct_2_median": 0.3},  # a repetition loop: fluent-looking, and style-like
    ]
    assert propose_lam(summary, 0.25) == 0.3
    assert propose_lam(summary, 0.25, repetition_guard=False) == 0.9


def test_pareto_front() -> None:
    pts = [ParetoPoint("dense", 0.0, 10, 100), ParetoPoint("dense", 0.1, 12, 80), ParetoPoint("dense", 0.2, 15, 85),
           ParetoPoint("paper", 0.1, 9, 120), ParetoPoint("paper", 0.2, 20, 60)]
    assert [(p.mode, p.lam) for p in pareto_front(pts)] == [("paper", 0.1), ("dense", 0.0), ("dense", 0.1),
                                                             ("paper", 0.2)]


def test_tune_with_fake_backend() -> None:
    seen = []
    result = tune(None, None, "holmes", lams=(0.1, 0.3, 0.5), mode="dense", margin=0.5, n_prompts=2,
                  max_new_tokens=8, backend=FakeBackend(), progress=lambda d, t: seen.append((d, t)))
    assert [r["lam"] for r in result.rows] == [0.0, 0.1, 0.3, 0.5]  # lambda 0 added
    # base medians over prompts of lengths 59 and 56 (the first two paper prompts): 67.5 + 100 lam^2
    assert result.proposed_lam == 0.3  # 76.5 <= 1.5 x 67.5; held-out style lowest at 0.3
    assert len(result.pareto) == 4 and result.front
    assert result.texts[0.3].startswith("I still remember")
    assert seen[0] == (0, 64) and seen[-1] == (64, 64)
    assert not result.cancelled


def test_tune_from_rows_with_no_rows() -> None:
    result = tune_from_rows([], style="s", mode="dense", margin=0.25, cancelled=True)
    assert result.proposed_lam is None and result.rows == [] and result.cancelled


# --- held-out split ---------------------------------------------------------------------------------
def _counts(docs: list[np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Plain n-gram counting for the fake store (no n-gram spans two documents)."""
    out = {}
    for n in (1, 2, 3):
        c: Counter = Counter()
        for d in docs:
            for i in range(len(d) - n + 1):
                c[tuple(int(t) for t in d[i:i + n])] += 1
        keys = sorted(c)
        ctx = np.array([k[:-1] for k in keys], dtype=np.int64).reshape(len(keys), n - 1)
        tok = np.array([k[-1] for k in keys], dtype=np.int64)
        cnt = np.array([c[k] for k in keys], dtype=np.int64)
        out[n] = (ctx, tok, cnt)
    return out


class FakeStore:
    """Each document uses its own token ids, so any leak shows up in the prior's unigram counts."""

    def __init__(self, n_docs: int) -> None:
        self.docs = {f"doc-{i}": np.arange(i * 10, i * 10 + 10, dtype=np.int64) for i in range(n_docs)}
        self.requests: list[list[str]] = []

    def document_ids(self, name: str) -> list[str]:
        return list(self.docs)

    def document_token_ids(self, name: str, doc_id: str) -> np.ndarray:
        return self.docs[doc_id]

    def load_counts(self, name: str, documents=None):
        self.requests.append(list(documents))
        return _counts([self.docs[d] for d in documents])


def test_split_documents_is_deterministic_and_disjoint() -> None:
    ids = [f"doc-{i}" for i in range(25)]
    steer, held = split_documents(ids)
    assert len(held) == 3 and len(steer) == 22
    assert set(steer).isdisjoint(held) and set(steer) | set(held) == set(ids)
    assert split_documents(list(reversed(ids))) == (steer, held)
    assert split_documents(["a", "b"])[1] and split_documents(["a", "b"])[0]


def test_split_priors_never_lets_held_out_documents_into_steering() -> None:
    store = FakeStore(20)
    steer, held = split_priors(store, "s", "fp", vocab_size=200)
    steer_docs, held_docs = store.requests
    assert len(held_docs) == 2 and set(steer_docs).isdisjoint(held_docs)
    held_tokens = np.concatenate([store.docs[d] for d in held_docs])
    steer_tokens = np.concatenate([store.docs[d] for d in steer_docs])
    assert steer.unigram_counts[held_tokens].sum() == 0
    assert held.unigram_counts[steer_tokens].sum() == 0
    assert held.unigram_counts[held_tokens].sum() == len(held_tokens)
    assert steer.tokenizer_fingerprint == held.tokenizer_fingerprint == "fp"


def test_split_tokens_cuts_at_a_boundary() -> None:
    ids = np.arange(1000) % 50
    assert split_tokens(ids) == 900
    assert split_tokens(ids, is_boundary=lambda t: t == 7) == 908  # 907 holds a 7: cut just after it
    assert split_tokens(np.array([1, 2])) == 1
    with pytest.raises(ValueError):
        split_tokens(np.array([1]))


def test_split_priors_one_document() -> None:
    pytest.importorskip("styles.importer")
    store = FakeStore(1)
    store.docs["doc-0"] = np.arange(100, dtype=np.int64)
    steer, held = split_priors(store, "s", "fp", vocab_size=200)
    assert steer.unigram_counts[90:].sum() == 0 and steer.unigram_counts[:90].sum() == 90
    assert held.unigram_counts[:90].sum() == 0 and held.unigram_counts[90:100].sum() == 10


# --- the command line (no model) ------------------------------------------------------------------
def test_cli_user_errors(tmp_path: Path, capsys) -> None:
    from app.main import main

    assert main(["sweep"]) == 2
    assert "--style is required" in capsys.readouterr().err
    assert main(["sweep", "--plot", str(tmp_path)]) == 2
    assert "no summary.csv" in capsys.readouterr().err
    assert main(["sweep", "--style", "x", "--modes", "fancy"]) == 2
    assert "unknown mode 'fancy'" in capsys.readouterr().err
    assert main(["sweep", "--style", "x", "--lams", "0,2"]) == 2
    assert "lambda must be in [0, 1]" in capsys.readouterr().err


def test_cli_plot_and_report_from_a_folder(tmp_path: Path, capsys) -> None:
    from app.main import main

    run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS, lams=[0.0, 0.5], modes=["dense"], config=CONFIG)
    assert main(["sweep", "--plot", str(tmp_path), "--report"]) == 0
    assert (tmp_path / "pareto.png").exists() and (tmp_path / "report.md").exists()


# --- end to end on the demo model -----------------------------------------------------------------
TEXT = ("It was a dark and windy night upon the moor, and the hound howled at the gate.\n"
        "My friend lit his pipe and said nothing for a long while, watching the fire.\n") * 40


@pytest.mark.model
def test_tiny_real_sweep_on_the_demo_model(demo_lm, tmp_path: Path) -> None:
    from engine import metrics
    from styles.importer import import_paths
    from styles.store import StyleStore

    corpus = tmp_path / "moor.txt"
    corpus.write_text(TEXT, "utf-8")
    with StyleStore() as store:
        import_paths(store, "moor", [corpus], demo_lm.tokenizer)
        steer, held = split_priors(store, "moor", demo_lm, "cpu")
    assert 0 < held.n_tokens < steer.n_tokens
    backend = sweep.EngineBackend(demo_lm, steer, held, sweep.sampling_config(8))
    prompts = default_prompts()[:2]
    out = run_sweep(backend, tmp_path / "out", prompts=prompts, lams=[0.0, 0.5], modes=["paper", "dense"],
                    config={"style": "moor", "model": demo_lm.name, "max_new_tokens": 8}, max_new_tokens=8,
                    batch_rows=4, prompt_baseline="Write about a moor:")
    assert out.done == 10 and not out.cancelled
    rows = sweep.load_rows(tmp_path / "out" / "results.jsonl")
    by = {(r["prompt"], r["mode"], r["lam"]): r for r in rows}
    for p in prompts:
        # lambda = 0 is the frozen model in every mode
        assert by[(p, "paper", 0.0)]["text"] == by[(p, "dense", 0.0)]["text"]
        assert by[(p, "paper", 0.0)]["js_mean_bits"] == 0.0
        assert by[(p, "dense", 0.5)]["js_mean_bits"] > 0.0
        assert by[(p, PROMPT_MODE, 0.0)]["js_mean_bits"] is None
    for r in rows:
        for m in ("style_ppl", "heldout_style_ppl", "base_ppl", "unigram_overlap", "bigram_seen", "distinct_2"):
            assert r[m] is not None and r[m] >= 0, (m, r)
    # Base PPL from the decode loop's log-probabilities equals a separate forward pass.
    r = by[(prompts[0], "dense", 0.5)]
    ids = demo_lm.tokenizer(prompts[0])["input_ids"]
    toks = demo_lm.tokenizer(r["text"], add_special_tokens=False)["input_ids"]
    if demo_lm.tokenizer.decode(toks) == r["text"] and len(toks) == 8:
        assert metrics.base_ppl(demo_lm, ids, toks) == pytest.approx(r["base_ppl"], rel=1e-3)

    result = tune(demo_lm, None, "moor", lams=(0.5,), n_prompts=2, max_new_tokens=8, priors=(steer, held))
    assert [row["lam"] for row in result.rows] == [0.0, 0.5]
    assert result.proposed_lam in (0.0, 0.5) and len(result.pareto) == 2
