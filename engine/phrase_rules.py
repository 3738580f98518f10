"""Banned phrases and phrase biases: the user's lists, parsed, validated and normalised (no torch here)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BIAS_LIMIT = 100.0  # a bias is a logit offset in [-BIAS_LIMIT, BIAS_LIMIT]
MAX_PHRASE_CHARS = 200
_WHITESPACE = re.compile(r"\s+")


class PhraseRuleError(ValueError):
    """A banned phrase or bias the user gave cannot be used; the message says which and why."""


def normalise(text: str, ignore_case: bool) -> str:
    """The form phrases are matched in: every run of whitespace is one space; case-folded on request.

    So "shivers down" also matches "shivers\\ndown", and " suddenly" matches "suddenly" after any
    space, tab or line break.
    """
    text = _WHITESPACE.sub(" ", text)
    return text.casefold() if ignore_case else text


def check_phrase(phrase: Any) -> str:
    """`phrase` when it can be banned or biased; PhraseRuleError naming the problem otherwise."""
    if not isinstance(phrase, str):
        raise PhraseRuleError(f"a phrase must be text, got {type(phrase).__name__}")
    if not phrase:
        raise PhraseRuleError("a banned or biased phrase cannot be empty")
    if not phrase.strip():
        raise PhraseRuleError(f"the phrase {phrase!r} is only whitespace: it would match every space")
    if len(phrase) > MAX_PHRASE_CHARS:
        raise PhraseRuleError(f"the phrase {phrase[:40]!r}... is longer than {MAX_PHRASE_CHARS} characters")
    if "\ufffd" in phrase or "\x00" in phrase:
        raise PhraseRuleError(f"the phrase {phrase!r} holds a replacement or NUL character")
    return phrase


def check_bias(value: Any, phrase: str = "") -> float:
    """`value` as a bias in [-BIAS_LIMIT, BIAS_LIMIT]; PhraseRuleError otherwise."""
    where = f" for {phrase!r}" if phrase else ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PhraseRuleError(f"the bias{where} must be a number, got {value!r}") from None
    if math.isnan(v) or not -BIAS_LIMIT <= v <= BIAS_LIMIT:
        raise PhraseRuleError(f"the bias{where} must be between {-BIAS_LIMIT:g} and {BIAS_LIMIT:g}, got {value!r}")
    return v


def parse_bias(spec: str) -> tuple[str, float]:
    """"PHRASE=VALUE" (split at the last '=', so a phrase may hold one) as (phrase, bias)."""
    phrase, sep, value = spec.rpartition("=")
    if not sep:
        raise PhraseRuleError(f"a bias is PHRASE=VALUE, e.g. ' suddenly=-5'; got {spec!r} (no '=')")
    phrase = check_phrase(phrase)
    if not value.strip():
        raise PhraseRuleError(f"the bias for {phrase!r} has no value after '='")
    return phrase, check_bias(value.strip(), phrase)


@dataclass(frozen=True)
class PhraseRules:
    """Phrases never to write, and phrases to favour (bias > 0) or avoid (bias < 0).

    A ban holds wherever the phrase would appear, even inside a longer word; a bias is added to each
    token that writes part of its phrase where the phrase starts a word. Matching follows
    `normalise`: whitespace runs are equal, and `ignore_case` matches every case variant.
    """

    bans: tuple[str, ...] = ()
    biases: tuple[tuple[str, float], ...] = ()
    ignore_case: bool = False

    def __post_init__(self) -> None:
        bans = tuple(dict.fromkeys(check_phrase(p) for p in self.bans))
        biases: dict[str, float] = {}
        for item in self.biases:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise PhraseRuleError(f"a bias is a (phrase, value) pair, got {item!r}")
            phrase = check_phrase(item[0])
            biases[phrase] = check_bias(item[1], phrase)
        object.__setattr__(self, "bans", bans)
        object.__setattr__(self, "biases", tuple(biases.items()))
        object.__setattr__(self, "ignore_case", bool(self.ignore_case))

    @property
    def empty(self) -> bool:
        return not self.bans and not any(v != 0 for _, v in self.biases)

    def merged(self, other: PhraseRules | None) -> PhraseRules:
        """These rules and `other`'s together (other's bias wins for a phrase in both; case-insensitive
        when either is)."""
        if other is None:
            return self
        biases = dict(self.biases)
        biases.update(other.biases)
        return PhraseRules(self.bans + other.bans, tuple(biases.items()), self.ignore_case or other.ignore_case)

    def to_json(self) -> dict[str, Any]:
        return {"bans": list(self.bans), "biases": [[p, v] for p, v in self.biases], "ignore_case": self.ignore_case}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhraseRules:
        """The rules `to_json` wrote; PhraseRuleError for anything malformed."""
        if not isinstance(data, Mapping):
            raise PhraseRuleError(f"phrase rules must be an object, got {type(data).__name__}")
        bans = data.get("bans", [])
        biases = data.get("biases", [])
        if not isinstance(bans, (list, tuple)) or not isinstance(biases, (list, tuple)):
            raise PhraseRuleError("phrase rules need lists of bans and biases")
        return cls(tuple(bans), tuple(tuple(b) if isinstance(b, (list, tuple)) else b for b in biases),
                   bool(data.get("ignore_case", False)))

    @classmethod
    def from_specs(cls, bans: Iterable[str] = (), biases: Iterable[str] = (),
                   ignore_case: bool = False) -> PhraseRules:
        """From command-line values: phrases, and "PHRASE=VALUE" biases."""
        return cls(tuple(bans), tuple(parse_bias(s) for s in biases), ignore_case)
