"""`stylesteer bench --ttft-only`: time to first token, fresh vs with the context reused, on the demo model."""

from __future__ import annotations

import json

import pytest

from app.main import main

pytestmark = pytest.mark.model


def test_ttft_json_reports_fresh_reused_and_prefill(capsys, demo_lm) -> None:
    assert main(["bench", "--json", "--ttft-only", "--context", "64", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    ttft = result["ttft"]
    assert {"context_tokens", "fresh_ms", "reused_ms", "ratio", "prefill_tps"} <= set(ttft)
    assert ttft["context_tokens"] == 64
    assert ttft["reused_tokens"] == 63  # re-generating at the same place fed one token
    assert ttft["fresh_ms"] > 0 and ttft["reused_ms"] > 0 and ttft["prefill_tps"] > 0
    assert ttft["ratio"] == pytest.approx(ttft["reused_ms"] / ttft["fresh_ms"])
    assert "tps" not in result and "styles" not in result  # --ttft-only runs nothing else


def test_ttft_human_output(capsys, demo_lm) -> None:
    assert main(["bench", "--ttft-only", "--context", "32", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "time to first token, 32-token context" in out
    assert "reused_over_fresh" in out and "tok/s" in out


@pytest.mark.parametrize("context", ["1", "10000000"])
def test_a_context_that_cannot_be_used_is_one_line(capsys, demo_lm, context: str) -> None:
    assert main(["bench", "--ttft-only", "--context", context]) == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("stylesteer:")]
    assert len(said) == 1 and "--context" in said[0] and "Traceback" not in err
