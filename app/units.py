"""Sizes as people read them; shared by the CLI and the GUI."""

from __future__ import annotations


def format_bytes(n: int) -> str:
    """1536 -> '2 KiB', 5 * 2**20 -> '5.0 MiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
