"""StyleSteer's front end: the `stylesteer` CLI and the Qt GUI."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def _version() -> str:
    """The version in pyproject.toml, the one place it is written.

    Read from the file where it sits beside the package (a checkout, or a frozen build, which
    bundles it), else from the installed distribution's metadata.
    """
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    try:
        text = (base / "pyproject.toml").read_text(encoding="utf-8")
        match = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.MULTILINE | re.DOTALL)
        if match:
            return match.group(1)
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stylesteer")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
