"""`stylesteer generate` and `stylesteer bench` through app.cli.main, on the demo model."""

from __future__ import annotations

import json

import pytest

from app.main import main
from engine.types import METRIC_NAMES

pytestmark = pytest.mark.model

TOKEN_KEYS = {"side", "step", "token_id", "text", "p_base", "p_steered", "js_bits", "lam", "top_base", "top_steered",
              "adjusted"}


@pytest.fixture
def sherlock_style(demo_lm, corpora_dir, tmp_path):
    from styles.importer import import_paths
    from styles.store import StyleStore

    sample = tmp_path / "sherlock-sample.txt"
    sample.write_text((corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    store = StyleStore()
    report = import_paths(store, "sherlock", [sample], demo_lm.tokenizer)
    assert report.n_tokens > 1000
    store.close()
    return "sherlock"


def lines(capsys) -> list[dict]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_generate_json_without_style(capsys):
    assert main(["generate", "--model", "demo", "--json", "--greedy", "--max-new-tokens", "5",
                 "The evening air carried"]) == 0
    rows = lines(capsys)
    tokens, summaries = rows[:-1], rows[-1:]
    assert 1 <= len(tokens) <= 5 and all(set(t) == TOKEN_KEYS for t in tokens)
    s = summaries[0]["summary"]
    assert set(s["metrics"]) >= set(METRIC_NAMES)
    assert s["metrics"]["style_ppl"] is None and s["metrics"]["base_ppl"] > 0
    assert s["text"] == "".join(t["text"] for t in tokens)
    assert s["token_ids"] == [t["token_id"] for t in tokens]


def test_generate_compare_json(capsys, sherlock_style):
    assert main(["generate", "--model", "demo", "--style", sherlock_style, "--lam", "0.5", "--mode", "dense",
                 "--compare", "--json", "--max-new-tokens", "6", "--seed", "1", "It was a dark night"]) == 0
    rows = lines(capsys)
    sides = {r["side"] for r in rows if "side" in r}
    assert sides == {"baseline", "steered"}
    summaries = [r["summary"] for r in rows if "summary" in r]
    assert [s["side"] for s in summaries] == ["baseline", "steered"]
    for s in summaries:
        assert s["metrics"]["style_ppl"] > 0 and s["metrics"]["unigram_overlap"] is not None
    steered = [r for r in rows if r.get("side") == "steered"]
    assert all(r["lam"] == pytest.approx(0.5) for r in steered)
    assert all(len(r["top_steered"]) == 5 for r in steered)


def test_generate_compare_table(capsys, sherlock_style):
    assert main(["generate", "--model", "demo", "--style", sherlock_style, "--compare", "--max-new-tokens", "4",
                 "It was a dark night"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "steered" in out
    for name in METRIC_NAMES:
        assert name in out


@pytest.mark.parametrize("argv, message", [
    (["--lam", "1.5", "hello"], "--lam must be between 0 and 1"),
    (["--lam", "-0.1", "hello"], "--lam must be between 0 and 1"),
    (["   "], "the prompt is empty"),
    (["--model", "/no/such/model.gguf", "hello"], "GGUF file not found"),
    (["--model", "demo", "--style", "missing", "hello"], "missing"),
    (["--temperature", "0", "hello"], "temperature must be > 0"),
    (["--compare", "hello"], "--compare needs --style"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    model = [] if "--model" in argv else ["--model", "demo"]
    assert main(["generate", *model, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("stylesteer: error:") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_style_from_another_tokenizer_is_refused(capsys, demo_lm):
    from styles.store import StyleStore

    store = StyleStore()
    with store.transaction():
        store.create_style("foreign", "some/other-tokenizer", "0123456789abcdef", demo_lm.vocab_size)
    store.close()
    assert main(["generate", "--model", "demo", "--style", "foreign", "hello"]) == 2
    err = capsys.readouterr().err
    assert "another tokenizer" in err and "rebuild" in err


def test_bench_json_reports_every_ratio(capsys):
    assert main(["bench", "--json", "--tokens", "3", "--repeats", "1", "--skip-styles", "--context", "32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["ratios"]) == {"steered_over_unsteered", "diagnostics_over_unsteered",
                                     "loop_over_hf_generate", "compare_over_sequential"}
    assert all(v > 0 for v in result["ratios"].values())
    assert {"hf_generate", "unsteered", "steered", "steered_diagnostics", "compare"} <= set(result["tps"])
    assert result["ttft"]["context_tokens"] == 32
