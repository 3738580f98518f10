"""Blend specs: styles and their weights, parsed from `NAME:W,NAME:W` and normalised (no torch here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from styles.errors import StyleError


class BlendError(StyleError):
    """A blend spec or saved blend the user must fix (bad weight, missing part, ...)."""


@dataclass(frozen=True)
class BlendSpec:
    """Styles and their weights, normalised to sum to 1, zero weights dropped, in the order given."""

    parts: tuple[tuple[str, float], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.parts]

    def text(self) -> str:
        """The canonical `NAME:W,NAME:W` form (what the app shows and passes around)."""
        return ",".join(f"{name}:{weight:.4g}" for name, weight in self.parts)


def normalise(parts: Sequence[tuple[str, float]]) -> BlendSpec:
    """Check weights (finite, >= 0, positive total, each style once) and scale them to sum to 1."""
    if not parts:
        raise BlendError("a blend needs at least one style")
    seen: set[str] = set()
    for name, weight in parts:
        if not name.strip():
            raise BlendError("a blend part has no style name (write NAME:WEIGHT)")
        if not math.isfinite(weight):
            raise BlendError(f"the weight of '{name}' in the blend must be a finite number, got {weight}")
        if weight < 0:
            raise BlendError(f"blend weights cannot be negative: '{name}' has {weight:g}")
        if name.strip().casefold() in seen:
            raise BlendError(f"style '{name.strip()}' appears twice in the blend")
        seen.add(name.strip().casefold())
    total = math.fsum(w for _, w in parts)
    if total <= 0:
        raise BlendError("blend weights add up to zero: give at least one style a positive weight")
    return BlendSpec(tuple((name.strip(), w / total) for name, w in parts if w > 0))


def is_blend_text(text: str) -> bool:
    """Whether `text` is written as a blend (`NAME:W[,NAME:W...]`) rather than one style's name."""
    return ":" in text


def parse_blend(text: str) -> BlendSpec:
    """`holmes:0.7,austen:0.3` -> a normalised BlendSpec; BlendError (one line) when malformed.

    A part is split at its last ':', so a name may hold ':'; names holding ',' can only be blended
    in a saved blend (the app's blend editor).
    """
    parts: list[tuple[str, float]] = []
    for raw in text.split(","):
        if not raw.strip():
            raise BlendError(f"empty part in the blend '{text}' (write NAME:WEIGHT,NAME:WEIGHT)")
        name, sep, weight = raw.rpartition(":")
        if not sep or not name.strip():
            raise BlendError(f"'{raw.strip()}' in the blend is not NAME:WEIGHT")
        try:
            value = float(weight)
        except ValueError:
            raise BlendError(f"the weight of '{name.strip()}' in the blend is not a number: '{weight.strip()}'") \
                from None
        parts.append((name, value))
    return normalise(parts)
