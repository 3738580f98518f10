"""The architecture contract in pyproject.toml: app -> engine -> styles, and only app imports Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], check=False, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("Only the app's GUI and job runner import Qt", "The CLI and the GUI are independent",
                 "Nothing in the product imports test code"):
        assert f"{name} KEPT" in result.stdout
    assert "Contracts: 5 kept, 0 broken" in result.stdout


def test_engine_and_styles_import_without_qt():
    code = ("import sys, engine.decode, engine.metrics, engine.sweep, styles.store, styles.importer, styles.prior; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, timeout=300).returncode == 0
