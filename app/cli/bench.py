"""`stylesteer bench`: throughput ratios measured side by side in one run (not pass/fail timings)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.cli.common import UserError, add_model_arguments, load_model_for_cli, say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure decoding and style-library throughput ratios",
                       description="Measure, side by side in one run, the decode loop against HF generate, "
                                   "steering and diagnostics overheads, compare mode, and the style library.")
    add_model_arguments(p)
    p.set_defaults(model="demo")
    p.add_argument("--tokens", type=int, default=256, help="greedy tokens per run (default 256)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported (default 3)")
    p.add_argument("--corpora", type=Path, default=None,
                   help="folder with the sample corpora (default ../shared/corpora beside the checkout)")
    p.add_argument("--skip-styles", action="store_true", help="only the decode benchmark")
    p.add_argument("--context", type=int, default=1500,
                   help="context tokens for the time-to-first-token measurement (default 1500)")
    p.add_argument("--ttft-only", action="store_true",
                   help="only the time to first token, fresh vs with the context reused")
    p.add_argument("--precisions", default=None,
                   help="CPU precisions to compare side by side, comma-separated (default: all this CPU runs, "
                        "of fp32, bf16, int8), or 'none'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def default_corpora_dir() -> Path | None:
    env = os.environ.get("STYLESTEER_CORPORA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parents[1]
    candidates += [here.parent / "shared" / "corpora", Path.cwd().parent / "shared" / "corpora"]
    for c in candidates:
        if (c / "sherlock_holmes.txt").is_file():
            return c
    return None


def run(args: argparse.Namespace) -> int:
    from engine.bench import TARGETS, bench_prior, run_decode_bench, run_ttft_bench

    if args.tokens < 2 or args.repeats < 1:
        raise UserError("--tokens must be >= 2 and --repeats >= 1")
    if args.context < 2:
        raise UserError("--context must be >= 2 tokens")
    corpora = args.corpora or default_corpora_dir()
    if corpora is None:
        print("stylesteer: sample corpora not found; the style is built from a short text instead", file=sys.stderr)
    log = (lambda _s: None) if args.json else (lambda s: print(f"  {s}", file=sys.stderr))
    precisions = _parse_precisions(args.precisions) if not args.ttft_only else []
    wanted = _checked_precision(args.precision)
    if precisions:  # compared beside fp32; the rest of the benchmark then runs at --precision
        args.precision = "fp32"
    lm = load_model_for_cli(args)
    if precisions and lm.device.type != "cpu":
        say(f"the precision comparison is for the CPU; skipped on {lm.device.type}")
        precisions = []
    precision_result = None
    if precisions:
        from engine.precision_bench import run_precision_bench

        precision_result = run_precision_bench(lm, precisions, tokens=args.tokens, repeats=args.repeats,
                                               corpora_dir=corpora, log=log)
        from engine.precision import choose, convert

        measured = {p: {"tps": precision_result["tps"][p], "agreement": precision_result["agreement"][p]}
                    for p in precision_result["precisions"]}
        chosen = choose(measured) if wanted == "auto" else (wanted or "fp32")
        if chosen != "fp32":
            lm.model = convert(lm.model, chosen)
            lm.precision, lm.dtype = chosen, next(lm.model.parameters()).dtype
    if args.context > lm.context_length - 1:
        raise UserError(f"--context {args.context} does not fit {lm.name}'s {lm.context_length}-token window "
                        f"(at most {lm.context_length - 1})")
    if args.ttft_only:
        result: dict[str, Any] = {"model": lm.name, "device": str(lm.device), "threads": torch_threads()}
    else:
        prior = bench_prior(lm, corpora)
        result = run_decode_bench(lm, prior, tokens=args.tokens, repeats=args.repeats, log=log)
    result["ttft"] = run_ttft_bench(lm, context_tokens=args.context, repeats=args.repeats, corpora_dir=corpora,
                                    log=log)
    if not args.ttft_only and not args.skip_styles:
        result["styles"] = _styles_bench(lm, corpora, 1.0 / result["tps"]["unsteered"], prior)
    result["loaded_precision"] = lm.precision
    if precision_result is not None:
        result["precision"] = precision_result
        result["memory"] = _memory(lm, precision_result["best"], args.tokens)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {result['model']} on {result['device']} ({result['threads']} threads), median of {args.repeats}")
    _print_ttft(result["ttft"])
    if args.ttft_only:
        return 0
    print(f"{args.tokens} greedy tokens:")
    for name, v in result["tps"].items():
        print(f"  {name:<22}{v:8.1f} tok/s")
    print("ratios, wall clock | per CPU second (target):")
    for name, v in result["ratios"].items():
        mark = "ok " if v >= TARGETS[name] else "LOW"
        print(f"  {mark} {name:<30}{v:6.3f} | {result['cpu_ratios'][name]:6.3f}  (>= {TARGETS[name]})")
    costs = result["overhead_ms_per_step"]
    print(f"ms per step, measured step by step in this run (forward {costs['forward']:.2f} ms):")
    for name in ("prior", "sampling", "diagnostics"):
        print(f"  {name:<22}{costs[name]:8.3f} ms  ({costs[name] / costs['forward']:.1%} of the forward)")
    if "precision" in result:
        _print_precision(result["precision"], result["memory"])
    if "styles" in result:
        print("style library:")
        for name, v in result["styles"].items():
            print(f"  {name:<40}{'-' if v is None else format(v, '.4g')}")
    return 0


def _checked_precision(value: str | None) -> str | None:
    """--precision, checked here because the comparison loads fp32 whatever it says."""
    from engine.precision import PrecisionError, check_available, parse_precision

    try:
        if value is not None:
            check_available(parse_precision(value))
    except PrecisionError as exc:
        raise UserError(str(exc)) from None
    return value


def _parse_precisions(value: str | None) -> list[str]:
    """The --precisions list; a bad or unavailable name is a UserError."""
    from engine.precision import PrecisionError, check_available, cpu_precisions

    if value is None:
        return cpu_precisions()
    if value.strip() == "none":
        return []
    names = [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        if name not in ("fp32", "bf16", "int8"):
            raise UserError(f"--precisions takes fp32, bf16, int8 (comma-separated) or none, got {name!r}")
        try:
            check_available(name)
        except PrecisionError as exc:
            raise UserError(str(exc)) from None
    return list(dict.fromkeys(names))


def _memory(lm: Any, precision: str, tokens: int) -> dict[str, Any]:
    """Peak RSS of loading and decoding at `precision`, measured in a fresh process (or why not)."""
    from engine.precision_bench import measure_memory

    try:
        return measure_memory(lm.source, precision, min(tokens, 64))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        say(str(exc))
        return {"precision": precision, "peak_rss_over_weights": None, "error": str(exc)}


def _print_precision(p: dict[str, Any], memory: dict[str, Any]) -> None:
    print(f"precision on the CPU, {p['tokens']} greedy tokens "
          f"(HF generate fp32 {p['hf_generate_fp32_tps']:.1f} tok/s):")
    for name in p["precisions"]:
        print(f"  {name:<6}{p['tps'][name]:8.1f} tok/s  x{p['over_fp32'][name]:.2f} of fp32  "
              f"agreement {p['agreement'][name]:.3f}  perplexity {p['perplexity_change'][name]:+.2%}  "
              f"weights {p['weights_bytes'][name] / 2**20:.0f} MB")
    print(f"  best {p['best']}: x{p['best_over_hf_fp32']:.2f} of HF generate in fp32")
    if memory.get("peak_rss_over_weights") is not None:
        print(f"  peak RSS loading and decoding at {memory['precision']}: {memory['peak_rss_bytes'] / 2**20:.0f} MB, "
              f"x{memory['peak_rss_over_weights']:.2f} of the weights "
              f"(x{memory['peak_rss_above_runtime_over_weights']:.2f} above the "
              f"{memory['runtime_rss_bytes'] / 2**20:.0f} MB of Python, libraries and tokenizer)")


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _print_ttft(t: dict[str, Any]) -> None:
    from engine.bench import TTFT_TARGET

    mark = "ok  " if t["ratio"] <= TTFT_TARGET else "HIGH"
    print(f"time to first token, {t['context_tokens']:,}-token context: fresh {t['fresh_ms']:.1f} ms, "
          f"context reused {t['reused_ms']:.1f} ms")
    print(f"  {mark} reused_over_fresh{t['ratio']:19.3f}  (<= {TTFT_TARGET})")
    print(f"  prefill {t['prefill_tps']:,.0f} tok/s")


def _styles_bench(lm: Any, corpora: Path | None, decode_step: float, prior: Any) -> dict[str, Any]:
    """The style library's ratios; without the corpora, only the prior step (on the benchmark's prior)."""
    if corpora is None:
        from engine.bench import prior_step_seconds

        return {"prior_step_over_decode_step": prior_step_seconds(prior) / decode_step}
    from styles.bench import run_styles_bench

    return run_styles_bench(lm.tokenizer, corpora, decode_step_seconds=decode_step)
