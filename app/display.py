"""How sizes and tokenizer names are shown; shared by the CLI and the GUI."""

from __future__ import annotations


def format_bytes(n: int) -> str:
    """1536 -> '2 KiB', 5 * 2**20 -> '5.0 MiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def short_tokenizer_name(name: str) -> str:
    """A tokenizer's source (a hub id or a long local path) shortened to what identifies it."""
    parts = [p for p in str(name).replace("\\", "/").split("/") if p]
    if len(parts) > 2:
        return "/".join(parts[-2:])
    return str(name)
