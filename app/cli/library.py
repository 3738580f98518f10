"""`stylesteer styles ...`: import, rebuild, blend, list, show, rename, delete, remove-doc, export, import-file."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.cli.common import UserError, open_store, say
from app.display import format_bytes, short_tokenizer_name


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "styles",
        help="manage the style library (import your texts, list, export, ...)",
        description="Build styles from your own text files and manage the style library.",
    )
    ss = p.add_subparsers(dest="styles_command", metavar="ACTION")
    _register_building(ss)
    _register_reading(ss)
    _register_managing(ss)
    p.set_defaults(func=lambda _args: _help(p))


def _register_building(ss: argparse._SubParsersAction) -> None:
    imp = ss.add_parser(
        "import",
        help="import files or folders into a style (created if new)",
        description="Import text files (.txt .md .rst .tex .html .docx .epub) or folders (searched "
        "recursively) into style NAME, creating it if it does not exist yet.",
    )
    imp.add_argument("name", metavar="NAME")
    imp.add_argument("paths", metavar="PATH", nargs="+")
    _model_argument(imp)
    imp.add_argument("--glob", default=None, metavar="PATTERN", help="only files in folders matching this, e.g. '*.md'")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(func=cmd_import)

    reb = ss.add_parser("rebuild", help="re-tokenize a style's stored text for another model")
    reb.add_argument("name", metavar="NAME")
    _model_argument(reb)
    reb.set_defaults(func=cmd_rebuild)

    blend = ss.add_parser(
        "blend", help="save a blend of styles under a name (usable like a style)",
        description="Save a weighted mixture of styles as NAME, e.g. `styles blend mix holmes:0.7,austen:0.3`. "
        "Weights are normalised to sum to 1; saving an existing blend's name replaces it.")
    blend.add_argument("name", metavar="NAME")
    blend.add_argument("spec", metavar="STYLE:WEIGHT,STYLE:WEIGHT")
    blend.set_defaults(func=cmd_blend)


def _register_reading(ss: argparse._SubParsersAction) -> None:
    ls = ss.add_parser("list", help="list the styles")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    show = ss.add_parser("show", help="details of one style: documents, n-grams, skipped files")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)


# name, help, positional arguments, handler; options are added below where a command has them.
_MANAGING = (
    ("rename", "rename a style", ("old:OLD", "new:NEW"), "cmd_rename"),
    ("delete", "delete a style", ("name:NAME",), "cmd_delete"),
    ("remove-doc", "remove one document (by path or SHA-256) from a style", ("name:NAME", "doc:PATH|SHA"),
     "cmd_remove_doc"),
    ("export", "write one style to a single file another user can import", ("name:NAME", "file:FILE"), "cmd_export"),
    ("import-file", "add a style from a file made by `styles export`", ("file:FILE",), "cmd_import_file"),
)


def _register_managing(ss: argparse._SubParsersAction) -> None:
    parsers = {}
    for name, help_text, positionals, handler in _MANAGING:
        sub = ss.add_parser(name, help=help_text)
        for spec in positionals:
            dest, metavar = spec.split(":", 1)
            sub.add_argument(dest, metavar=metavar)
        sub.set_defaults(func=globals()[handler])
        parsers[name] = sub
    parsers["delete"].add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parsers["import-file"].add_argument("--name", default=None, help="store it under this name instead")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="the model the style is for; only its tokenizer is loaded (default: the app's default model)",
    )


# --------------------------------------------------------------------------- helpers


def _load_tokenizer(spec: str | None) -> Any:
    """Only the tokenizer of the model (no weights)."""
    from engine.models import ModelLoadError, load_tokenizer

    try:
        return load_tokenizer(spec, notify=say)
    except ModelLoadError as exc:
        raise UserError(str(exc)) from None


class _Bar:
    """The import progress callback as a tqdm bar on stderr (bytes, with files and tokens); with
    `quiet` no bar, only the line saying it waits for another import."""

    def __init__(self, quiet: bool = False) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False,
                        dynamic_ncols=True, desc="importing", disable=quiet)
        self.said_waiting = False

    def __call__(self, p: Any) -> None:
        if p.waiting:
            if not self.said_waiting:
                self.said_waiting = True
                self.bar.write("waiting for another import…", file=sys.stderr)
            return
        self.bar.total = p.bytes_total
        self.bar.n = p.bytes_done
        self.bar.set_postfix_str(f"{p.files_done}/{p.files_total} files, {p.tokens:,} tokens", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@contextmanager
def _cancel_on_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C sets the cancel flag; the import stops at the next batch and rolls back."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(_signum: int, _frame: Any) -> None:
        if cancel.is_set():  # a second Ctrl-C: stop at once (the transaction still rolls back)
            raise KeyboardInterrupt
        cancel.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_report(report: Any, verb: str = "imported") -> None:
    out = sys.stdout
    if report.cancelled:
        print(f"Cancelled: nothing was {verb}; style '{report.style}' is unchanged.", file=out)
        return
    for doc in report.imported:
        size = format_bytes(doc.n_bytes)
        print(f"  {verb}  {doc.path}  ({doc.n_tokens:,} tokens, {size}, {doc.encoding})", file=out)
    for dup in report.duplicates:
        print(f"  duplicate  {dup.path}: {dup.reason}", file=out)
    for skip in report.skipped:
        print(f"  skipped   {skip.path}: {skip.reason}", file=out)
    print(
        f"Style '{report.style}': {len(report.imported)} file(s) {verb} ({report.n_tokens:,} tokens), "
        f"{len(report.duplicates)} duplicate(s), {len(report.skipped)} skipped, in {report.seconds:.1f} s.",
        file=out,
    )


# --------------------------------------------------------------------------- commands


def cmd_import(args: argparse.Namespace) -> int:
    from styles.importer import import_paths

    tokenizer = _load_tokenizer(args.model)
    bar = _Bar(quiet=args.json)
    try:
        with open_store() as store, _cancel_on_interrupt() as cancel:
            report = import_paths(store, args.name, args.paths, tokenizer, glob=args.glob,
                                  progress=bar, cancel=cancel)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if report.cancelled:
        return 130
    # Nothing new but everything already there is not a failure.
    if report.imported or (report.duplicates and not report.skipped):
        return 0
    if not args.json and not report.skipped and not report.duplicates:
        print("No files found to import.", file=sys.stdout)
    return 2


def cmd_rebuild(args: argparse.Namespace) -> int:
    from styles.importer import rebuild

    with open_store() as store:
        store.get(args.name)  # a missing style fails before the tokenizer loads
        tokenizer = _load_tokenizer(args.model)
        bar = _Bar()
        try:
            with _cancel_on_interrupt() as cancel:
                report = rebuild(store, args.name, tokenizer, progress=bar, cancel=cancel)
        finally:
            bar.close()
        _print_report(report, verb="rebuilt")
        if report.cancelled:
            return 130
        info = store.get(args.name)
        print(f"Style '{info.name}' now uses tokenizer {info.tokenizer_name} ({info.tokenizer_fingerprint}).")
    return 0


def cmd_blend(args: argparse.Namespace) -> int:
    from styles import blend_store

    with open_store() as store:
        saved = blend_store.save_blend(store, args.name, args.spec)
    print(f"Saved blend '{saved.name}': {_blend_text(saved)}.")
    return 0


def _blend_text(saved: Any) -> str:
    parts = " + ".join(f"{name} {weight:.3g}" for name, weight in saved.spec.parts)
    missing = f" (missing: {', '.join(saved.missing)})" if saved.missing else ""
    return parts + missing


def cmd_list(args: argparse.Namespace) -> int:
    from styles import blend_store

    with open_store() as store:
        styles = store.list_styles()
        blends = blend_store.list_blends(store)
    if args.json:
        print(json.dumps([s.to_dict() for s in styles] + [dict(b.to_dict(), kind="blend") for b in blends], indent=2))
        return 0
    if not styles and not blends:
        print("No styles yet. Import some of your writing: stylesteer styles import NAME FILE_OR_FOLDER...")
        return 0
    rows = [("NAME", "TOKENIZER", "DOCS", "TOKENS", "ON DISK")]
    for s in styles:
        size = format_bytes(s.bytes_on_disk)
        rows.append((s.name, _short_tokenizer(s), str(s.n_documents), f"{s.n_tokens:,}", size))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    if blends:
        print("\nBLEND" if styles else "BLEND")
        width = max(len(b.name) for b in blends)
        for b in blends:
            print(f"{b.name.ljust(width)}  {_blend_text(b)}")
    return 0


def _short_tokenizer(info: Any) -> str:
    return f"{short_tokenizer_name(info.tokenizer_name)} ({info.tokenizer_fingerprint[:8]})"

def _show_blend(name: str, as_json: bool) -> bool:
    """`styles show` for a saved blend; False when `name` is not one."""
    from styles import blend_store

    with open_store() as store:
        saved = blend_store.find_blend(store, name) if store.find_style(name) is None else None
    if saved is None:
        return False
    if as_json:
        print(json.dumps(dict(saved.to_dict(), kind="blend"), indent=2))
        return True
    print(f"Blend:      {saved.name}")
    for part, weight in saved.spec.parts:
        print(f"  {weight:6.3f}  {part}" + ("  (missing: no longer in the library)" if part in saved.missing else ""))
    print(f"Updated:    {saved.updated_at}")
    return True


def cmd_show(args: argparse.Namespace) -> int:
    if _show_blend(args.name, args.json):
        return 0
    with open_store() as store:
        info = store.get(args.name)
        docs = store.documents(args.name)
        skipped = store.skipped(args.name)
    if args.json:
        data = info.to_dict()
        data["documents"] = [d.to_dict() for d in docs]
        data["skipped"] = [s.to_dict() for s in skipped]
        print(json.dumps(data, indent=2))
        return 0
    print(f"Style:      {info.name}")
    print(f"Tokenizer:  {info.tokenizer_name} (fingerprint {info.tokenizer_fingerprint}, {info.vocab_size:,} tokens)")
    print(f"Documents:  {info.n_documents} ({info.n_tokens:,} tokens, {format_bytes(info.n_bytes)} of text)")
    print("N-grams:    " + ", ".join(f"{info.ngrams.get(n, 0):,} distinct {n}-grams" for n in (1, 2, 3)))
    print(f"On disk:    {format_bytes(info.bytes_on_disk)}")
    print(f"Updated:    {info.updated_at}")
    for d in docs:
        print(f"  {d.sha256[:12]}  {d.n_tokens:>10,} tokens  {d.path}")
    if skipped:
        print("Skipped files:")
        for s in skipped:
            print(f"  {s.path}: {s.reason}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with open_store() as store:
        store.rename(args.old, args.new)
    print(f"Renamed style '{args.old}' to '{args.new.strip()}'.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from styles import blend_store

    with open_store() as store:
        if store.find_style(args.name) is None and blend_store.find_blend(store, args.name) is not None:
            store.delete(args.name)  # a blend holds no data of its own: no confirmation
            print(f"Deleted blend '{args.name.strip()}'.")
            return 0
        info = store.get(args.name)
        if not args.yes:
            try:
                answer = input(f"Delete style '{info.name}' ({info.n_documents} documents, "
                               f"{info.n_tokens:,} tokens)? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("Not deleted.")
                return 1
        store.delete(info.name)
    print(f"Deleted style '{info.name}'.")
    return 0


def cmd_remove_doc(args: argparse.Namespace) -> int:
    with open_store() as store:
        removed = store.remove_document(args.name, args.doc)
    for d in removed:
        print(f"Removed {d.path} ({d.sha256[:12]}, {d.n_tokens:,} tokens) from style '{args.name}'.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_store() as store:
        path = store.export(args.name, args.file)
    print(f"Exported style '{args.name}' to {path}.")
    return 0


def cmd_import_file(args: argparse.Namespace) -> int:
    with open_store() as store:
        name = store.import_file(args.file, name=args.name)
        info = store.get(name)
    print(f"Imported style '{name}' ({info.n_documents} documents, {info.n_tokens:,} tokens) from {args.file}.")
    return 0
