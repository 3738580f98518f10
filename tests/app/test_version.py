"""The version: written once in pyproject.toml, shown by `stylesteer --version`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import app

REPO = Path(__file__).resolve().parents[2]


def test_version_comes_from_pyproject():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert app.__version__ == re.search(r'^version = "([^"]+)"', text, re.MULTILINE).group(1)


def test_version_flag_prints_it_and_exits_0():
    out = subprocess.run([sys.executable, "-m", "app", "--version"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"stylesteer {app.__version__}"
