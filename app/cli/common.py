"""What every `stylesteer` subcommand shares: the user-error type, model options, the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.types import PRECISION_CHOICES, QUANTIZE_CHOICES


class UserError(Exception):
    """A problem with the user's input or environment: one clear line, exit code 2."""


def say(line: str) -> None:
    """A one-line notice on stderr (standard output stays the command's result)."""
    print(f"stylesteer: {line}", file=sys.stderr)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """--model, --device, --quantize and --precision, the same for every command that loads a model."""
    p.add_argument("--model", default=None,
                   help="hub id, model folder, .gguf file, or 'demo' (default: TinyLlama, else the demo model)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None, help="bitsandbytes quantization (CUDA)")
    # Checked when the model loads (one line, exit 2), not by argparse, whose error is a usage block.
    p.add_argument("--precision", default=None, metavar="|".join(PRECISION_CHOICES),
                   help="weights on the CPU: fp32 (default), bf16 (CPUs with bf16 instructions), int8, or auto "
                        "(the fastest at fp32's quality, measured on the first load and remembered)")


def load_model_for_cli(args: argparse.Namespace) -> Any:
    """Load the model named on the command line; its notices go to stderr, its errors become UserError."""
    from engine.models import ModelLoadError, load_model

    try:
        return load_model(args.model, device=args.device, quantize=getattr(args, "quantize", None), notify=say,
                          precision=getattr(args, "precision", None))
    except ModelLoadError as exc:
        raise UserError(str(exc)) from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Style-library errors are the user's: one line, exit code 2."""
    from styles.errors import StyleError

    try:
        yield
    except StyleError as exc:
        raise UserError(str(exc)) from None


@contextmanager
def open_store() -> Iterator[Any]:
    """The style library for one command: what opening it had to say (set aside as damaged,
    read-only) is said once on stderr; its errors are UserErrors; it is closed afterwards."""
    from styles.store import StyleStore

    with user_errors():
        store = StyleStore()
    if store.notice:
        say(store.notice)
    try:
        with user_errors():
            yield store
    finally:
        store.close()


def check_style_for_cli(name: str) -> None:
    """Fail early (before a model loads) on a missing style or a bad blend `NAME:W,NAME:W`."""
    from styles import blend_store

    with open_store() as store, user_errors():
        if blend_store.resolve(store, name) is None:
            store.get(name)


def load_style_for_cli(name: str, lm: Any) -> Any:
    """The prior of the named style, saved blend or blend `NAME:W,NAME:W` for this model; a missing
    style, a bad blend or a tokenizer mismatch (of any part) is a UserError."""
    from engine.steering import check_compatible
    from styles import blend_store

    with open_store() as store, user_errors():
        found = blend_store.resolve(store, name)
        if found is not None:
            return blend_store.load_blend_prior(store, *found, device=lm.device, fingerprint=lm.fingerprint,
                                                model=lm.name)
        prior = store.load_prior(name, device=lm.device)
        check_compatible(prior, lm)
    return prior
