"""`--precision` on the command line, and `stylesteer bench --json`'s precision and memory keys."""

from __future__ import annotations

import json

import pytest

from app.main import main


def _one_line(err: str) -> str:
    said = [line for line in err.splitlines() if line.startswith("stylesteer:")]
    assert len(said) == 1 and "Traceback" not in err and "usage:" not in err
    return said[0]


@pytest.mark.parametrize("argv", [
    ["bench", "--ttft-only", "--precision", "fp16"],
    ["bench", "--precisions", "fp32,int8", "--precision", "fp16"],
    ["generate", "--model", "/nonexistent/model", "--precision", "int4", "Once upon a time"],
])
def test_a_bad_precision_is_one_line(capsys, argv: list[str]) -> None:
    assert main(argv) == 2
    assert "--precision must be one of auto, fp32, bf16, int8" in _one_line(capsys.readouterr().err)


def test_bad_bench_precisions_are_one_line(capsys) -> None:
    assert main(["bench", "--precisions", "fp32,int4"]) == 2
    assert "--precisions" in _one_line(capsys.readouterr().err)


@pytest.mark.model
def test_bench_json_compares_precisions_and_reports_memory(capsys, demo_lm) -> None:
    argv = ["bench", "--json", "--tokens", "3", "--repeats", "1", "--skip-styles", "--context", "8",
            "--precisions", "fp32,int8"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    p = result["precision"]
    assert p["precisions"] == ["fp32", "int8"]
    assert set(p["tps"]) == {"fp32", "int8"} and all(v > 0 for v in p["tps"].values())
    assert p["best"] in ("fp32", "int8") and p["best_over_hf_fp32"] > 0
    assert p["agreement"]["fp32"] == 1.0 and 0.0 <= p["agreement"]["int8"] <= 1.0
    assert p["perplexity_change"]["fp32"] == 0.0 and abs(p["perplexity_change"]["int8"]) < 0.5
    assert p["weights_bytes"]["int8"] < p["weights_bytes"]["fp32"]
    memory = result["memory"]
    assert memory["precision"] == p["best"]
    assert memory["peak_rss_over_weights"] > 1.0 and memory["peak_rss_bytes"] >= memory["baseline_rss_bytes"]
    assert result["loaded_precision"] == "fp32"
