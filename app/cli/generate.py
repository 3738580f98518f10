"""`stylesteer generate`: stream a (steered) continuation to the terminal, or as JSON lines."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
from typing import Any, TextIO

from app.cli.common import (
    UserError,
    add_model_arguments,
    check_style_for_cli,
    load_model_for_cli,
    load_style_for_cli,
)
from app.cli.phrases import add_phrase_arguments, check_rules_for_model, phrase_rules
from app.cli.session import DocumentRun, add_document_arguments
from engine.types import (
    DEFAULT_BUDGET_BITS,
    DEFAULT_LAM,
    DEFAULT_MODE,
    METRIC_NAMES,
    MODES,
    SamplingConfig,
)

# A colour-blind-safe sequential ramp (viridis stops) for JS divergence, as 256-colour ANSI codes, on a log scale
# like the app's legend: a token spends from thousandths to a few tenths of a bit.
_JS_RAMP = [(0.0, 54), (3e-4, 61), (1e-3, 67), (3e-3, 72), (0.01, 114), (0.03, 184), (0.1, 226)]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="continue a prompt, steered by a style",
                       description="Continue PROMPT with the model, steered toward a style.")
    add_model_arguments(p)
    p.add_argument("--style", default=None,
                   help="style or saved blend to steer toward (see `stylesteer styles list`), "
                        "or a blend of styles: 'holmes:0.7,austen:0.3'")
    p.add_argument("--lam", type=float, default=DEFAULT_LAM,
                   help=f"steering strength lambda in [0, 1] (default {DEFAULT_LAM})")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help=f"steering mode (default {DEFAULT_MODE})")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_BITS, metavar="TAU_MAX",
                   help="budget mode: the JS a token may spend at lambda 1 where the model's entropy is 4 bits; "
                   f"lambda L spends L times it, scaled by the entropy (default {DEFAULT_BUDGET_BITS})")
    d = SamplingConfig()
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--top-p", type=float, default=d.top_p)
    p.add_argument("--top-k", type=int, default=d.top_k)
    p.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    p.add_argument("--seed", type=int, default=d.seed)
    add_phrase_arguments(p)
    p.add_argument("--compare", action="store_true", help="print baseline and steered side by side with metrics")
    p.add_argument("--json", action="store_true", help="one JSON object per line: tokens, then summaries")
    p.add_argument("--no-color", action="store_true", help="plain text, no JS colouring")
    add_document_arguments(p)
    p.add_argument("prompt", metavar="PROMPT", nargs="?",
                   help="the text to continue ('-' reads standard input); or give --document")
    p.set_defaults(func=run)


def _sampling(args: argparse.Namespace) -> SamplingConfig:
    s = SamplingConfig(max_new_tokens=args.max_new_tokens, greedy=args.greedy, temperature=args.temperature,
                       top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                       seed=args.seed, n_alternatives=5 if args.json else 0, rules=phrase_rules(args))
    try:
        s.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return s


def _js_colour(js: float) -> int:
    code = _JS_RAMP[0][1]
    for threshold, c in _JS_RAMP:
        if js >= threshold:
            code = c
    return code


def _use_colour(args: argparse.Namespace, out: TextIO) -> bool:
    return not args.no_color and out.isatty() and os.environ.get("NO_COLOR") is None and os.environ.get(
        "TERM") != "dumb"


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}"


def run(args: argparse.Namespace) -> int:
    from engine.decode import PromptError, compare_stream, stream
    from engine.steering import StyleSteeringProcessor

    document = DocumentRun.open(args)
    if document is None and args.prompt is None:
        raise UserError("give a PROMPT to continue, or --document FILE")
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt or ""
    if document is None and not prompt.strip():
        raise UserError("the prompt is empty: give some text to continue")
    if not 0.0 <= args.lam <= 1.0:
        raise UserError(f"--lam must be between 0 and 1, got {args.lam}")
    if args.budget <= 0:
        raise UserError(f"--budget must be > 0 bits, got {args.budget}")
    if args.compare and not args.style:
        raise UserError("--compare needs --style: it compares steered output against the baseline")
    sampling = _sampling(args)
    if args.style:
        check_style_for_cli(args.style)
    lm = load_model_for_cli(args)
    check_rules_for_model(sampling.rules, lm)
    if document is not None:
        prompt = document.assemble(lm, sampling.max_new_tokens)
    prior = load_style_for_cli(args.style, lm) if args.style else None
    steering = StyleSteeringProcessor(prior, lam=args.lam, mode=args.mode, budget_bits=args.budget) \
        if prior is not None else None
    out = sys.stdout
    cancel = threading.Event()
    try:
        if args.compare:
            gen = compare_stream(lm, prompt, sampling, steering, cancel)
        else:
            gen = stream(lm, prompt, sampling, steering, cancel)
    except PromptError as exc:
        raise UserError(str(exc)) from None
    for line in gen.notices:
        print(f"stylesteer: {line}", file=sys.stderr)
    colour = _use_colour(args, out)
    try:
        if args.compare:
            _run_compare(gen, args, out)
        else:
            _run_single(gen, args, out, colour, document, sampling)
    except KeyboardInterrupt:
        cancel.set()
        print("\nstylesteer: interrupted", file=sys.stderr)
        return 130
    except torch_oom() as exc:
        raise UserError(f"out of memory while generating on {lm.device} ({exc.__class__.__name__}); "
                        "try fewer --max-new-tokens, --quantize 4bit or --device cpu") from None
    return 0


def torch_oom() -> tuple[type[BaseException], ...]:
    """Out-of-memory errors a generation can raise (CUDA, MPS or the host)."""
    import torch

    kinds: list[type[BaseException]] = [MemoryError]
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None:
        kinds.append(oom)
    return tuple(kinds)


def _run_single(gen: Any, args: argparse.Namespace, out: TextIO, colour: bool, document: DocumentRun | None = None,
                sampling: SamplingConfig | None = None) -> None:
    if not args.json:
        out.write(args.prompt if args.prompt not in (None, "-") else "")
    for rec in gen:
        if args.json:
            out.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
        elif colour and rec.lam > 0:
            out.write(f"\x1b[38;5;{_js_colour(rec.js_bits)}m{rec.text}\x1b[0m")
        else:
            out.write(rec.text)
        out.flush()
    summary = gen.summary()
    extra = document.record(summary, args, sampling) if document is not None else {}
    if args.json:
        out.write(json.dumps({"summary": summary.to_json()["summary"] | extra}, ensure_ascii=False) + "\n")
    else:
        out.write("\n")
        if args.style:
            m = summary.metrics
            print(f"[style {args.style} · {args.mode} · λ={args.lam} · mean JS {_fmt(m['js_mean_bits'])} bits · "
                  f"style PPL {_fmt(m['style_ppl'])} · base PPL {_fmt(m['base_ppl'])}]", file=sys.stderr)


def _run_compare(gen: Any, args: argparse.Namespace, out: TextIO) -> None:
    for base, steered in gen:
        if args.json:
            for rec in (base, steered):
                if rec is not None:
                    out.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            out.flush()
        else:
            print(".", end="", file=sys.stderr, flush=True)
    base, steered = gen.summaries()
    if args.json:
        out.writelines(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in (base, steered))
        return
    print(file=sys.stderr)
    for label, s in (("baseline (λ = 0)", base), (f"steered ({args.style}, {args.mode}, λ = {args.lam})", steered)):
        out.write(f"── {label} " + "─" * max(0, 60 - len(label)) + "\n")
        out.write(args.prompt + s.text + "\n\n")
    out.write(f"{'metric':<18}{'baseline':>14}{'steered':>14}\n")
    out.writelines(f"{name:<18}{_fmt(base.metrics[name]):>14}{_fmt(steered.metrics[name]):>14}\n"
                   for name in METRIC_NAMES)
