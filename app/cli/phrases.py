"""--ban, --bias and --ban-ignore-case: banned phrases and phrase biases on the command line."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import UserError
from engine.phrase_rules import BIAS_LIMIT, PhraseRuleError, PhraseRules


def add_phrase_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ban", action="append", default=[], metavar="PHRASE",
                   help="never write PHRASE, however it is tokenised (repeatable); whitespace in it matches "
                        "any run of spaces or line breaks, e.g. --ban 'shivers down' --ban ' suddenly'")
    p.add_argument("--bias", action="append", default=[], metavar="PHRASE=VALUE",
                   help=f"add VALUE (between {-BIAS_LIMIT:g} and {BIAS_LIMIT:g}) to the logits of the tokens "
                        "that write PHRASE (repeatable), e.g. --bias ' suddenly=-5'")
    p.add_argument("--ban-ignore-case", action="store_true",
                   help="--ban and --bias match every case variant (Suddenly, SUDDENLY, ...)")


def phrase_rules(args: argparse.Namespace) -> PhraseRules | None:
    """The rules the arguments give (None when there are none); UserError for a malformed one."""
    try:
        rules = PhraseRules.from_specs(args.ban, args.bias, args.ban_ignore_case)
    except PhraseRuleError as exc:
        raise UserError(str(exc)) from None
    return None if rules.empty else rules


def check_rules_for_model(rules: PhraseRules | None, lm: Any) -> None:
    """Compile the rules for the model's tokenizer now, so a list that bans everything fails before generating."""
    if rules is None:
        return
    from engine.bans import compile_rules

    try:
        compile_rules(lm.tokenizer, rules)
    except PhraseRuleError as exc:
        raise UserError(str(exc)) from None
