"""Figures and a Markdown report for a lambda sweep (matplotlib, Agg only: no GUI toolkit)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from engine.sweep import (
    METRICS,
    PROMPT_MODE,
    SUMMARY_CSV,
    ParetoPoint,
    pareto_front,
    read_csv,
    read_meta,
    summary_points,
)
from engine.types import MODES

COLORS = {"paper": "#d62728", "dense": "#1f77b4", "budget": "#2ca02c", PROMPT_MODE: "#7f7f7f"}
LABELS = {
    "style_ppl": "style PPL (steering prior)",
    "heldout_style_ppl": "style PPL (held-out prior)",
    "base_ppl": "base PPL (frozen model)",
    "js_mean_bits": "JS divergence per token (bits)",
    "unigram_overlap": "unigram overlap (top 5000)",
    "bigram_seen": "bigram seen rate",
    "distinct_2": "distinct-2",
}
PLOT_FILES = ("js_vs_lam.png", "base_ppl_vs_lam.png", "style_ppl_vs_lam.png", "pareto.png", "overlap_vs_lam.png")


def _new_figure(ncols: int = 1) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(6.0 * ncols, 4.2), dpi=110)
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no pyplot, no global backend
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def spans_decades(values: Sequence[float | None]) -> bool:
    """Whether positive values span at least a factor of ten (then a log axis reads better)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) >= 10.0


def _modes(summary: Sequence[dict[str, Any]]) -> list[str]:
    present = {r["mode"] for r in summary}
    return [m for m in MODES if m in present] + sorted(present - set(MODES) - {PROMPT_MODE})


def _series(summary: Sequence[dict[str, Any]], mode: str, column: str) -> tuple[list[float], list[float]]:
    raw = sorted((float(r["lam"]), r.get(column)) for r in summary if r["mode"] == mode)
    pts = [(x, float(y)) for x, y in raw if y is not None and math.isfinite(float(y))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _baseline(summary: Sequence[dict[str, Any]], column: str) -> float | None:
    for r in summary:
        if r["mode"] == PROMPT_MODE and r.get(column) is not None and math.isfinite(float(r[column])):
            return float(r[column])
    return None


def _metric_axes(ax: Any, summary: Sequence[dict[str, Any]], metric: str, *, log: bool | None = None) -> None:
    """One metric vs lambda: a solid median line and a dashed mean line per mode, prompt-only as a level."""
    values: list[float] = []
    for mode in _modes(summary):
        color = COLORS.get(mode)
        x, y = _series(summary, mode, f"{metric}_median")
        if x:
            ax.plot(x, y, "o-", color=color, label=f"{mode} (median)", markersize=4)
            values += y
        x, y = _series(summary, mode, f"{metric}_mean")
        if x:
            ax.plot(x, y, "--", color=color, alpha=0.55, linewidth=1, label=f"{mode} (mean)")
            values += y
    base = _baseline(summary, f"{metric}_median")
    if base is not None:
        ax.axhline(base, color=COLORS[PROMPT_MODE], linestyle=":", linewidth=1.5, label="prompt-only (median)")
        values.append(base)
    if log if log is not None else spans_decades(values):
        ax.set_yscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(True, alpha=0.3)
    if values:
        ax.legend(fontsize=7)


def repetitive(summary: Sequence[dict[str, Any]], drop: float = 0.25) -> set[tuple[str, float]]:
    """(mode, lambda) whose median distinct-2 fell more than `drop` below that mode's lambda = 0:
    the repetition loops of the paper's collapse, which base PPL does not show."""
    zero = {r["mode"]: r.get("distinct_2_median") for r in summary if float(r["lam"]) == 0.0}
    out = set()
    for r in summary:
        z, d = zero.get(r["mode"]), r.get("distinct_2_median")
        if z is not None and d is not None and d < (1 - drop) * z - 1e-9:
            out.add((r["mode"], float(r["lam"])))
    return out


def draw_pareto(ax: Any, points: Sequence[ParetoPoint], *, proposed: tuple[str, float] | None = None,
                baseline: ParetoPoint | None = None, label_lams: bool = True,
                repetitive: set[tuple[str, float]] | None = None) -> None:
    """Base PPL (x) vs held-out style PPL (y), one line per mode in lambda order, each point labelled
    with its lambda; the non-dominated points (over all modes) ringed in black, and the `repetitive`
    ones (mode, lambda) crossed out. Shared with the app."""
    modes = [m for m in MODES if any(p.mode == m for p in points)]
    modes += sorted({p.mode for p in points} - set(modes))
    xs: list[float] = []
    ys: list[float] = []
    for mode in modes:
        pts = sorted((p for p in points if p.mode == mode), key=lambda p: p.lam)
        x = [p.base_ppl for p in pts]
        y = [p.heldout_style_ppl for p in pts]
        ax.plot(x, y, "o-", color=COLORS.get(mode), label=mode, markersize=4, linewidth=1)
        xs += x
        ys += y
        if label_lams:
            for p in pts:
                ax.annotate(f"{p.lam:g}", (p.base_ppl, p.heldout_style_ppl), textcoords="offset points",
                            xytext=(4, 3), fontsize=7, color=COLORS.get(mode, "black"))
    loops = [p for p in points if repetitive and (p.mode, p.lam) in repetitive]
    if loops:
        ax.plot([p.base_ppl for p in loops], [p.heldout_style_ppl for p in loops], "x", color="black", markersize=7,
                label="repetition (distinct-2 fell)")
    front = pareto_front(list(points))
    if front:
        ax.plot([p.base_ppl for p in front], [p.heldout_style_ppl for p in front], "o", markersize=9,
                markerfacecolor="none", markeredgecolor="black", label="Pareto front")
    if baseline is not None:
        ax.plot([baseline.base_ppl], [baseline.heldout_style_ppl], "*", color=COLORS[PROMPT_MODE], markersize=12,
                label="prompt-only")
        xs.append(baseline.base_ppl)
        ys.append(baseline.heldout_style_ppl)
    if proposed is not None:
        for p in points:
            if p.mode == proposed[0] and abs(p.lam - proposed[1]) < 1e-9:
                ax.plot([p.base_ppl], [p.heldout_style_ppl], "D", color="orange", markersize=8,
                        label=f"proposed λ = {p.lam:g}")
    if spans_decades(xs):
        ax.set_xscale("log")
    if spans_decades(ys):
        ax.set_yscale("log")
    ax.set_xlabel("base PPL (fluency; lower is better)")
    ax.set_ylabel("held-out style PPL (lower is closer)")
    ax.grid(True, alpha=0.3)
    if xs:
        ax.legend(fontsize=7)


def plot_summary(summary: Sequence[dict[str, Any]], out_dir: Path | str, *, title: str = "") -> list[Path]:
    """Draw the sweep's figures (PLOT_FILES) into `out_dir` as PNGs; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f" ({title})" if title else ""
    paths = []

    def save(fig: Figure, name: str, heading: str) -> None:
        fig.suptitle(heading + suffix, fontsize=10)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, format="png")
        paths.append(path)

    fig, (ax,) = _new_figure()
    _metric_axes(ax, summary, "js_mean_bits")
    save(fig, "js_vs_lam.png", "JS(base, steered) vs λ")

    fig, (ax,) = _new_figure()
    _metric_axes(ax, summary, "base_ppl")
    save(fig, "base_ppl_vs_lam.png", "Base PPL vs λ")

    fig, (a1, a2) = _new_figure(2)
    _metric_axes(a1, summary, "style_ppl")
    _metric_axes(a2, summary, "heldout_style_ppl")
    save(fig, "style_ppl_vs_lam.png", "Style PPL vs λ")

    fig, (ax,) = _new_figure()
    sweep_rows = [r for r in summary if r["mode"] != PROMPT_MODE]
    base_pts = summary_points([r for r in summary if r["mode"] == PROMPT_MODE])
    draw_pareto(ax, summary_points(sweep_rows), baseline=base_pts[0] if base_pts else None,
                repetitive=repetitive(sweep_rows))
    save(fig, "pareto.png", "Fluency vs style, medians over prompts")

    fig, (a1, a2) = _new_figure(2)
    _metric_axes(a1, summary, "unigram_overlap", log=False)
    _metric_axes(a2, summary, "bigram_seen", log=False)
    save(fig, "overlap_vs_lam.png", "Unigram overlap and bigram seen rate vs λ")
    return paths


def plot_dir(sweep_dir: Path | str, out_dir: Path | str | None = None) -> list[Path]:
    """Draw the figures of a sweep folder (its summary.csv) into `out_dir` (default: the same folder)."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / SUMMARY_CSV
    if not path.exists():
        raise FileNotFoundError(f"no {SUMMARY_CSV} in {sweep_dir}: run a sweep into it first")
    meta = read_meta(sweep_dir).get("config", {})
    title = ", ".join(str(meta[k]) for k in ("style", "model") if meta.get(k))
    return plot_summary(read_csv(path), out_dir or sweep_dir, title=title)


# --- report -----------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    v = float(v)
    if not math.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.01 or v == 0:
        return f"{v:.3f}"
    return f"{v:.2g}"


REPORT_COLUMNS = ("style_ppl", "heldout_style_ppl", "base_ppl", "js_mean_bits", "unigram_overlap", "bigram_seen",
                  "distinct_2")


def summary_table(summary: Sequence[dict[str, Any]], stat: str = "median", *, with_mean: bool = True) -> str:
    """A Markdown table: one row per (mode, lambda); `stat` of each metric (and the mean in brackets)."""
    head = "| mode | λ | " + " | ".join(REPORT_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (2 + len(REPORT_COLUMNS))]
    for r in summary:
        cells = []
        for m in REPORT_COLUMNS:
            cell = _fmt(r.get(f"{m}_{stat}"))
            if with_mean and r.get(f"{m}_mean") is not None:
                cell += f" ({_fmt(r.get(f'{m}_mean'))})"
            cells.append(cell)
        lines.append(f"| {r['mode']} | {float(r['lam']):g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def monotonicity(summary: Sequence[dict[str, Any]], column: str = "js_mean_bits_median") -> dict[str, list[float]]:
    """Per steering mode, the lambdas at which `column` fails to rise strictly from the lambda before (empty: it
    rises at every step of the sweep). The prompt-only baseline has no lambda axis and is left out."""
    out: dict[str, list[float]] = {}
    for mode in _modes(summary):
        if mode == PROMPT_MODE:
            continue
        pairs = list(zip(*_series(summary, mode, column), strict=True))
        out[mode] = [lam for (_, prev), (lam, v) in itertools.pairwise(pairs) if not v > prev]
    return out


def monotonicity_lines(summary: Sequence[dict[str, Any]]) -> list[str]:
    """One line per mode: does the mean JS of a continuation (median over prompts) rise strictly with lambda?"""
    lines = []
    for mode, bad in monotonicity(summary).items():
        verdict = "rises strictly at every λ" if not bad else \
            "does not rise at λ = " + ", ".join(f"{lam:g}" for lam in bad)
        lines.append(f"- {mode}: mean JS (median over prompts) {verdict}")
    return lines


def write_report(sweep_dir: Path | str, *, plots: Sequence[Path] | None = None) -> Path:
    """report.md in the sweep folder: settings, timing, the summary table and the figures."""
    sweep_dir = Path(sweep_dir)
    summary = read_csv(sweep_dir / SUMMARY_CSV)
    meta = read_meta(sweep_dir)
    cfg = meta.get("config", {})
    plots = list(plots) if plots is not None else [sweep_dir / p for p in PLOT_FILES if (sweep_dir / p).exists()]
    lines = [f"# λ sweep: {cfg.get('style', '?')} on {cfg.get('model', '?')}", ""]
    lines.append("Settings: " + ", ".join(f"{k} = {cfg[k]}" for k in sorted(cfg) if cfg[k] is not None))
    timing = meta.get("timing", {})
    if timing:
        lines += ["", "| mode | rows | wall seconds | wall s per row | CPU seconds |", "|---|---|---|---|---|"]
        for mode, t in timing.items():
            rows = t.get("rows") or 0
            cpu = f"{t['cpu_seconds']:.0f}" if "cpu_seconds" in t else "–"
            lines.append(f"| {mode} | {rows} | {t.get('seconds', 0):.0f} | "
                         f"{(t.get('seconds', 0) / rows) if rows else 0:.2f} | {cpu} |")
    lines += ["", "Does every slider position act?", "", *monotonicity_lines(summary)]
    lines += ["", "Medians over prompts, means in brackets (the paper's means are outlier-driven).", "",
              summary_table(summary), ""]
    for p in plots:
        rel = Path(p).resolve().relative_to(sweep_dir.resolve()) if Path(p).resolve().is_relative_to(
            sweep_dir.resolve()) else Path(p)
        lines += [f"![{Path(p).stem}]({rel.as_posix()})", ""]
    path = sweep_dir / "report.md"
    path.write_text("\n".join(lines), "utf-8")
    return path


__all__ = ["METRICS", "PLOT_FILES", "draw_pareto", "monotonicity", "monotonicity_lines", "plot_dir", "plot_summary",
           "spans_decades", "summary_table", "write_report"]
