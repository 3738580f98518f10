"""`stylesteer check`: which sentences of a text read like a style, and the evaluation of that score."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.common import UserError, add_model_arguments, check_style_for_cli, load_model_for_cli, load_style_for_cli


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="score how much each sentence of a text reads like a style",
                       description="Score every token of FILE by how much more the style's prior expects it than "
                       "the model does, and list the sentences, the least in-style first. With --evaluate, "
                       "measure how well that score tells held-out sentences of each corpus from the others'.")
    add_model_arguments(p)
    p.add_argument("--style", default=None, help="style or saved blend to check against (see `stylesteer styles list`)")
    p.add_argument("--json", action="store_true", help="one JSON object: per-token and per-sentence scores")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="print the N least in-style sentences (default 20; 0: all)")
    p.add_argument("--evaluate", action="store_true",
                   help="FILES are corpora (two or more): build a style from 90%% of each and report the AUC of "
                   "its held-out sentences against the other corpora's")
    p.add_argument("--sentences", type=int, default=300, metavar="N",
                   help="--evaluate: sentences sampled from each corpus's held-out part (default 300)")
    p.add_argument("--seed", type=int, default=0, help="--evaluate: the sampling seed (default 0)")
    p.add_argument("files", nargs="+", metavar="FILE", help="the text to check ('-' reads standard input)")
    p.set_defaults(func=run)


def read_text(name: str) -> str:
    """The text of a file (any format the importer reads) or of standard input; empty or binary is a UserError."""
    from styles.readers import Candidate, ReadError, decode_bytes, open_source

    try:
        if name == "-":
            data = sys.stdin.buffer.read()
            if not data:
                raise ReadError("empty input")
            text, _ = decode_bytes(data)
        else:
            path = Path(name)
            if not path.is_file():
                raise ReadError("no such file" if not path.exists() else "not a file")
            text = "".join(open_source(Candidate(path, path.stat().st_size)).pieces())
    except ReadError as exc:
        raise UserError(f"cannot check {name}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot check {name}: {exc.strerror or exc}") from None
    if not text.strip():
        raise UserError(f"cannot check {name}: no text in it")
    return text


def run(args: argparse.Namespace) -> int:
    if args.evaluate:
        return _evaluate(args)
    if not args.style:
        raise UserError("check needs --style NAME: the style to check the text against")
    if len(args.files) != 1:
        raise UserError("check takes one FILE (several are for --evaluate)")
    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    text = read_text(args.files[0])
    check_style_for_cli(args.style)
    lm = load_model_for_cli(args)
    prior = load_style_for_cli(args.style, lm)
    from engine.stylecheck import check_text

    result = check_text(lm, prior, text)
    out = sys.stdout
    if args.json:
        doc = {"style": args.style, "file": args.files[0], **result.to_json()}
        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    ranked = result.least_in_style()
    shown = ranked if args.top == 0 else ranked[:args.top]
    overall = result.score()
    print(f"style {args.style}: {len(ranked)} sentences scored, text score "
          f"{overall:+.3f}" if overall is not None else f"style {args.style}: nothing to score", file=out)
    print("score    line  sentence (least in style first; higher reads more like the style)", file=out)
    for s in shown:
        line = text.count("\n", 0, s.start) + 1
        one = " ".join(text[s.start:s.end].split())
        print(f"{s.score:+7.3f} {line:6d}  {one[:100]}{'…' if len(one) > 100 else ''}", file=out)
    if len(shown) < len(ranked):
        print(f"… {len(ranked) - len(shown)} more (--top 0 lists all)", file=out)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from engine.stylecheck import evaluate_auc

    if len(args.files) < 2:
        raise UserError("--evaluate needs two or more corpus files")
    if args.sentences < 1:
        raise UserError(f"--sentences must be >= 1, got {args.sentences}")
    corpora = {Path(f).stem: read_text(f) for f in args.files}
    if len(corpora) != len(args.files):
        raise UserError("--evaluate: two corpus files have the same name")
    lm = load_model_for_cli(args)

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\rscoring {done}/{total} sentences", end="", file=sys.stderr, flush=True)

    try:
        report: Any = evaluate_auc(lm, corpora, n_sentences=args.sentences, seed=args.seed, progress=progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return 0
    methods = list(report["by_method"])
    print(f"sentence-level AUC, held-out sentences of each corpus against the others' (method: {report['method']})")
    print(f"{'corpus':<20}" + "".join(f"{m:>10}" for m in methods) + f"{'held-out':>10}{'others':>8}")
    for name, r in report["corpora"].items():
        aucs = "".join(f"{report['by_method'][m][name]['auc']:>10.3f}" for m in methods)
        print(f"{name:<20}{aucs}{r['positives']:>10}{r['negatives']:>8}")
    return 0
