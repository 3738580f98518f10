"""`stylesteer sweep`: the paper's lambda sweep for one style, resumable, with plots and a report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from app.cli.common import UserError, add_model_arguments, load_model_for_cli, open_store
from engine.types import DEFAULT_BUDGET_BITS, MODES

DEFAULT_BATCH = 40  # rows decoded together; measured fastest per row on a 2-core CPU with the demo model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="measure a style over a range of lambdas (the paper's protocol)",
        description="Decode the paper's prompts at each lambda and mode, score every continuation, and write "
        "results.csv, results.jsonl and summary.csv to --out. An interrupted sweep continues where it stopped "
        "when run again with the same --out. With --plot DIR, draw the figures of an earlier sweep instead.")
    p.add_argument("--style", default=None, help="the style to measure (see `stylesteer styles list`)")
    add_model_arguments(p)
    p.add_argument("--prompts", type=Path, default=None, metavar="FILE",
                   help="one prompt per line (default: the paper's 20 prompts)")
    p.add_argument("--lams", default=None, metavar="L1,L2,...",
                   help="lambdas in [0, 1] (default: the paper's 14, 0 to 1)")
    p.add_argument("--modes", default="paper", metavar="M1,M2",
                   help=f"steering modes, comma-separated, from {', '.join(MODES)} (default paper)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="tokens per continuation (default 256)")
    p.add_argument("--sample", nargs="?", const="paper", default=False, choices=["paper", "product"],
                   help="sample instead of greedy decoding: 'paper' (the default when given alone) is the paper's "
                   "check (top-p 0.9, temperature 1.0); 'product' the app's default sampling (temperature 0.8, "
                   "top-k 50, top-p 0.95, repetition penalty 1.15)")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_BITS, metavar="TAU_MAX",
                   help="budget mode: the JS a token may spend at lambda 1 where the model's entropy is 4 bits; "
                   f"lambda L spends L times it, scaled by the entropy (default {DEFAULT_BUDGET_BITS})")
    p.add_argument("--prompt-baseline", default=None, metavar="TEXT",
                   help="also measure the prompt-only baseline: TEXT prepended to each prompt, lambda 0 "
                   "(e.g. 'Write in the style of Arthur Conan Doyle:')")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (default sweep-out/STYLE)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, metavar="N",
                   help=f"rows decoded together (default {DEFAULT_BATCH})")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    p.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="draw the figures (PNG) of the sweep in DIR and exit")
    p.add_argument("--report", action="store_true", help="also write report.md (tables and figures)")
    p.set_defaults(func=run)


def _plot(sweep_dir: Path, report: bool) -> None:
    from engine.plots import plot_dir, write_report

    paths = plot_dir(sweep_dir)
    for path in paths:
        print(f"wrote {path}")
    if report:
        print(f"wrote {write_report(sweep_dir, plots=paths)}")


def _print_summary(summary: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    cols = ("heldout_style_ppl", "style_ppl", "base_ppl", "js_mean_bits", "bigram_seen", "distinct_2")
    print(f"{'mode':<11} {'lambda':>6} " + " ".join(f"{c:>17}" for c in cols) + "   (medians over prompts)", file=out)
    for r in summary:
        cells = []
        for c in cols:
            v = r.get(f"{c}_median")
            cells.append(f"{v:>17.4g}" if v is not None else f"{'-':>17}")
        print(f"{r['mode']:<11} {float(r['lam']):>6g} " + " ".join(cells), file=out)
    from engine.plots import monotonicity_lines

    for line in monotonicity_lines(summary):
        print(line, file=out)


def _refuse_blend(style: str) -> None:
    """The sweep measures one style against its own held-out documents, which a blend does not have."""
    from styles import blend_store

    with open_store() as store:
        blend = blend_store.resolve(store, style)
    if blend is not None:
        raise UserError(f"the sweep measures one style at a time, and '{blend[0]}' is a blend: "
                        "sweep each of its styles")


def run(args: argparse.Namespace) -> int:
    from engine import sweep

    if args.plot is not None:
        if not (args.plot / sweep.SUMMARY_CSV).exists():
            raise UserError(f"no {sweep.SUMMARY_CSV} in {args.plot}: run a sweep into it first (--out)")
        _plot(args.plot, args.report)
        return 0
    modes, lams, prompts = _checked_plan(args)
    from styles.paths import slug

    out_dir = args.out or Path("sweep-out") / slug(args.style)
    _refuse_blend(args.style)
    lm = load_model_for_cli(args)
    try:
        with open_store() as store:
            steer, held = sweep.split_priors(store, args.style, lm, lm.device)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    backend = sweep.EngineBackend(lm, steer, held, sweep.sampling_config(args.max_new_tokens, args.sample),
                                  budget_bits=args.budget)
    config = {"style": args.style, "model": lm.name, "max_new_tokens": args.max_new_tokens,
              "sample": args.sample == "paper" or args.sample, "budget_bits": args.budget}
    return _run_with_bar(args, backend, out_dir, prompts, lams, modes, config)


def _checked_plan(args: argparse.Namespace) -> tuple[list[str], list[float], list[str]]:
    """Modes, lambdas and prompts from the command line; anything off is a UserError."""
    from engine import sweep

    if not args.style:
        raise UserError("--style is required (or --plot DIR to draw an earlier sweep)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UserError(f"unknown mode {bad[0] if bad else '(none)'!r}: choose from {', '.join(MODES)}")
    try:
        lams = sweep.parse_lams(args.lams) if args.lams else list(sweep.PAPER_LAMS)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for name, value, least in (("--max-new-tokens", args.max_new_tokens, 1), ("--batch-size", args.batch_size, 1),
                               ("--threads", args.threads, 1)):
        if value is not None and value < least:
            raise UserError(f"{name} must be >= {least}, got {value}")
    if args.budget <= 0:
        raise UserError(f"--budget must be > 0 bits, got {args.budget}")
    if args.prompt_baseline is not None and not args.prompt_baseline.strip():
        raise UserError("--prompt-baseline needs the instruction text to prepend")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    return modes, lams, _prompts(args)


def _prompts(args: argparse.Namespace) -> list[str]:
    from engine import sweep

    if args.prompts is None:
        return sweep.default_prompts()
    try:
        prompts = sweep.read_prompts(args.prompts.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the prompts file {args.prompts}: {exc}") from None
    if not prompts:
        raise UserError(f"the prompts file {args.prompts} has no prompts (one per line)")
    return prompts


def _run_with_bar(args: argparse.Namespace, backend: Any, out_dir: Path, prompts: list[str], lams: list[float],
                  modes: list[str], config: dict[str, Any]) -> int:
    """Decode every row not already on disk, with a progress bar; Ctrl-C keeps what is done."""
    from tqdm import tqdm

    from engine import sweep

    total_rows = len(sweep.plan_rows(prompts, lams, modes, args.prompt_baseline))
    bar = tqdm(total=total_rows, unit="row", desc="sweep", file=sys.stderr, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} rows [{elapsed}<{remaining}]")

    def progress(done: int, total: int) -> None:
        # `done` counts token-rows; shown as rows still to decode, offset by rows already on disk.
        bar.n = bar.total - total / args.max_new_tokens + done / args.max_new_tokens
        bar.refresh()

    started = time.perf_counter()
    try:
        outcome = sweep.run_sweep(backend, out_dir, prompts=prompts, lams=lams, modes=modes, config=config,
                                  prompt_baseline=args.prompt_baseline, batch_rows=args.batch_size,
                                  max_new_tokens=args.max_new_tokens, progress=progress)
    except sweep.SweepConfigError as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        sweep.write_tables(out_dir)
        print(f"stylesteer: interrupted; finished rows are in {out_dir}: run the same command to continue",
              file=sys.stderr)
        return 130
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    print(f"{outcome.done} rows decoded, {outcome.skipped} already done, in {elapsed:.0f} s -> {out_dir}")
    _print_summary(outcome.summary)
    _plot(out_dir, args.report)
    return 0
