"""Sweep figures and report: PNG files from a summary, log axes only where values span decades."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import plots
from engine.sweep import PROMPT_MODE, run_sweep, summarize
from tests.engine.test_sweep import CONFIG, PROMPTS, FakeBackend

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_spans_decades() -> None:
    assert plots.spans_decades([1.0, 10.0])
    assert not plots.spans_decades([1.0, 9.9])
    assert not plots.spans_decades([0.0, 100.0])  # a log axis cannot show 0
    assert not plots.spans_decades([None, float("nan")])


def test_sweep_folder_to_pngs_and_report(tmp_path: Path) -> None:
    run_sweep(FakeBackend(), tmp_path, prompts=PROMPTS, lams=[0.0, 0.1, 0.3, 0.9], modes=["paper", "dense"],
              config=CONFIG, prompt_baseline="Write like this:", batch_rows=8)
    paths = plots.plot_dir(tmp_path)
    assert [p.name for p in paths] == list(plots.PLOT_FILES)
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    report = plots.write_report(tmp_path, plots=paths).read_text()
    assert "| dense | 0.3 |" in report and f"| {PROMPT_MODE} | 0 |" in report
    for name in plots.PLOT_FILES:
        assert f"]({name})" in report
    assert "| paper | 4 |" not in report  # timing rows count rows, modes listed once
    assert "| dense | 12 |" in report


def test_plot_dir_without_results(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"summary\.csv"):
        plots.plot_dir(tmp_path)


def test_log_axis_where_values_span_decades(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    rows = [{"prompt": "a", "mode": "paper", "lam": lam, "base_ppl": b, "js_mean_bits": 0.05 + lam / 20}
            for lam, b in ((0.0, 5.0), (0.5, 50.0), (1.0, 5000.0))]
    summary = summarize(rows)
    fig = Figure()
    ax_base, ax_js = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    plots._metric_axes(ax_base, summary, "base_ppl")
    plots._metric_axes(ax_js, summary, "js_mean_bits")
    assert ax_base.get_yscale() == "log"
    assert ax_js.get_yscale() == "linear"


def test_monotonicity_per_mode() -> None:
    def rows(mode, js):
        return [{"mode": mode, "lam": lam, "js_mean_bits_median": v} for lam, v in zip((0.0, 0.1, 0.5, 1.0), js,
                                                                                       strict=True)]

    summary = rows("dense", [0.0, 0.01, 0.2, 0.15]) + rows("budget", [0.0, 0.01, 0.02, 0.04]) + \
        [{"mode": PROMPT_MODE, "lam": 0.0, "js_mean_bits_median": None}]
    assert plots.monotonicity(summary) == {"dense": [1.0], "budget": []}
    lines = plots.monotonicity_lines(summary)
    assert lines == ["- dense: mean JS (median over prompts) does not rise at λ = 1",
                     "- budget: mean JS (median over prompts) rises strictly at every λ"]
