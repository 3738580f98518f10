"""The JS-divergence tint: a colour-blind-safe sequential palette (viridis), its bits scale, and readable text on it.

The scale is logarithmic from JS_ZERO_BITS to JS_MAX_BITS: the JS a token spends at the product's settings runs from
thousandths to a few tenths of a bit, and a square-root or linear scale put nearly all of it on one or two colours.
Every tint is drawn opaque (blended with the editor's background), and the text on it, typed or ghost, gets a colour
with at least MIN_CONTRAST:1 contrast (WCAG 2), so the darkest tint never hides the words.

At the default settings a suggestion's tokens sit in a narrow band of that fixed scale, so the editor by default
draws each suggestion on its own scale (`scale_for`): logarithmic between its tokens' 15th and 95th percentile JS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtGui import QColor

# viridis from yellow (low) to blue (high); the darkest purple is left out.
_STOPS = ("#fde725", "#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989")
JS_ZERO_BITS = 1e-4  # below this a token is drawn without a tint (the style changed nothing); the scale's bottom
JS_MAX_BITS = 0.25  # the top of the scale; anything above is drawn at full strength
LEGEND_TICKS = (1e-4, 1e-3, 0.01, 0.05, 0.25)
MIN_CONTRAST = 4.5  # WCAG AA for body text
GHOST_ALPHA = 0.62  # the suggestion's text is the theme's text colour at this opacity, where contrast allows
_BLACK, _WHITE = QColor("#000000"), QColor("#ffffff")
MIN_SCALED_TOKENS = 4  # a suggestion with fewer tinted tokens is drawn on the fixed scale
# The ends of a suggestion's own scale, among its tinted tokens. At the default settings a suggestion's log-JS has
# a long tail of small values below a bulk near its budget; from the 5th percentile 70% of tokens still fell in the
# top two fifths of the legend, from the 15th 48% (20 prompts x 64 tokens): the lowest 15% share its lightest tint.
SCALE_PERCENTILES = (15.0, 95.0)
MIN_SCALE_RATIO = 1.05  # a suggestion whose ends are closer than this (hi / lo) is drawn on the fixed scale


@dataclass(frozen=True)
class Scale:
    """A logarithmic bits scale from `lo` (the legend's left end) to `hi` (its right end)."""

    lo: float
    hi: float

    def position(self, js_bits: float) -> float:
        """0..1 position on the legend; values outside [lo, hi] sit at its ends, negligible ones (and NaN) at 0."""
        if not js_bits or js_bits <= max(self.lo, JS_ZERO_BITS) or math.isnan(js_bits):
            return 0.0
        return min(1.0, math.log(js_bits / self.lo) / math.log(self.hi / self.lo))

    def ticks(self) -> tuple[float, ...]:
        """Bits to label on the legend: the fixed scale's ticks, or a per-suggestion scale's ends and middle."""
        if self == FIXED:
            return LEGEND_TICKS
        return (self.lo, math.sqrt(self.lo * self.hi), self.hi)


FIXED = Scale(JS_ZERO_BITS, JS_MAX_BITS)


def _percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, linear between neighbours."""
    x = (len(ordered) - 1) * q / 100.0
    i = min(int(x), len(ordered) - 1)
    j = min(i + 1, len(ordered) - 1)
    return ordered[i] + (ordered[j] - ordered[i]) * (x - i)


def scale_for(js_values: Iterable[float | None]) -> Scale:
    """The scale one suggestion is drawn on: logarithmic between the SCALE_PERCENTILES of its tinted tokens' JS
    (those at or above JS_ZERO_BITS), or FIXED with fewer than MIN_SCALED_TOKENS of them or a degenerate range."""
    tinted = sorted(v for v in js_values if v is not None and v >= JS_ZERO_BITS and not math.isnan(v))
    if len(tinted) < MIN_SCALED_TOKENS:
        return FIXED
    lo, hi = (_percentile(tinted, q) for q in SCALE_PERCENTILES)
    if not (math.isfinite(hi) and hi >= lo * MIN_SCALE_RATIO):
        return FIXED
    return Scale(lo, hi)


def scale(js_bits: float) -> float:
    """0..1 position on the fixed legend: logarithmic between JS_ZERO_BITS and JS_MAX_BITS."""
    return FIXED.position(js_bits)


def scale_caption(sc: Scale) -> str:
    """The bits at a scale's ends, for the legend: "0.021 – 0.066 bits"."""
    return f"{bits_label(sc.lo)} – {bits_label(sc.hi)} bits"


def bits_label(v: float) -> str:
    return f"{v:.2g}" if v < 0.01 else f"{v:.3f}"


def ramp(t: float) -> QColor:
    """Interpolate the palette at t in [0, 1]."""
    t = min(1.0, max(0.0, t))
    x = t * (len(_STOPS) - 1)
    i = min(int(x), len(_STOPS) - 2)
    f = x - i
    a, b = QColor(_STOPS[i]), QColor(_STOPS[i + 1])
    return QColor(round(a.red() + (b.red() - a.red()) * f), round(a.green() + (b.green() - a.green()) * f),
                  round(a.blue() + (b.blue() - a.blue()) * f))


def blend(top: QColor, alpha: float, under: QColor) -> QColor:
    """`top` at opacity `alpha` over the opaque colour `under`, as one opaque colour."""
    a = min(1.0, max(0.0, alpha))
    return QColor(round(top.red() * a + under.red() * (1 - a)), round(top.green() * a + under.green() * (1 - a)),
                  round(top.blue() * a + under.blue() * (1 - a)))


def luminance(c: QColor) -> float:
    """WCAG 2 relative luminance."""
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two opaque colours, 1 to 21."""
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def tint(js_bits: float, dark: bool = False, base: QColor | None = None, sc: Scale = FIXED) -> QColor | None:
    """The opaque background for a token over the editor's `base` on the scale `sc`, or None when its JS is
    negligible."""
    if js_bits is None or js_bits < JS_ZERO_BITS:
        return None
    return tint_at(sc.position(js_bits), dark, base)


def tint_at(t: float, dark: bool = False, base: QColor | None = None) -> QColor:
    """The opaque background at position t (0..1) of the legend over the editor's `base`."""
    t = min(1.0, max(0.0, t))
    under = base if base is not None else (QColor("#17181a") if dark else _WHITE)
    return blend(ramp(t), 0.35 + 0.4 * t if not dark else 0.45 + 0.35 * t, under)


def text_on(background: QColor, text: QColor, ghost: bool = False) -> QColor:
    """A text colour with at least MIN_CONTRAST:1 on `background`: the theme's `text` where it reads, else black or
    white; a suggestion (`ghost`) is that colour faded toward the background as far as the contrast allows, at most
    to GHOST_ALPHA."""
    solid = text if contrast(text, background) >= MIN_CONTRAST else max(
        (_BLACK, _WHITE), key=lambda c: contrast(c, background))
    if not ghost:
        return solid
    alpha = GHOST_ALPHA
    while alpha < 1.0 and contrast(blend(solid, alpha, background), background) < MIN_CONTRAST:
        alpha = min(1.0, alpha + 0.02)
    return blend(solid, alpha, background)
