"""The JS-divergence tint: a colour-blind-safe sequential palette (viridis) and its bits scale."""

from __future__ import annotations

import math

from PySide6.QtGui import QColor

# viridis from yellow (low) to blue (high); the darkest purple is left out so text stays legible.
_STOPS = ("#fde725", "#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989")
JS_MAX_BITS = 0.25  # the top of the scale; anything above is drawn at full strength
JS_ZERO_BITS = 1e-4  # below this a token is drawn without a tint (the style changed nothing)
LEGEND_TICKS = (0.0, 0.01, 0.05, 0.1, 0.25)


def scale(js_bits: float) -> float:
    """0..1 position on the legend: a square-root scale, because useful JS values are small."""
    if not js_bits or js_bits <= 0 or math.isnan(js_bits):
        return 0.0
    return min(1.0, math.sqrt(js_bits / JS_MAX_BITS))


def ramp(t: float) -> QColor:
    """Interpolate the palette at t in [0, 1]."""
    t = min(1.0, max(0.0, t))
    x = t * (len(_STOPS) - 1)
    i = min(int(x), len(_STOPS) - 2)
    f = x - i
    a, b = QColor(_STOPS[i]), QColor(_STOPS[i + 1])
    return QColor(round(a.red() + (b.red() - a.red()) * f), round(a.green() + (b.green() - a.green()) * f),
                  round(a.blue() + (b.blue() - a.blue()) * f))


def tint(js_bits: float, dark: bool = False) -> QColor | None:
    """The background for a token, or None when its JS is negligible."""
    if js_bits is None or js_bits < JS_ZERO_BITS:
        return None
    t = scale(js_bits)
    color = ramp(t)
    # Semi-transparent so the text keeps its contrast on both themes.
    color.setAlphaF(0.35 + 0.4 * t if not dark else 0.45 + 0.35 * t)
    return color
