"""Typed access to the app's persistent settings (QSettings)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings

from engine.phrase_rules import PhraseRuleError, PhraseRules
from engine.types import DEFAULT_BUDGET_BITS, DEFAULT_LAM, DEFAULT_MODE, PRECISION_CHOICES
from styles.paths import ENV_VAR

ORGANIZATION = "StyleSteer"
APPLICATION = "StyleSteer"


def init_application_names() -> None:
    """Set organisation/application once at start-up so every QSettings() finds the same store."""
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setOrganizationDomain("stylesteer.invalid")
    QCoreApplication.setApplicationName(APPLICATION)


def settings_file() -> Path | None:
    """`$STYLESTEER_HOME/settings.ini` when that folder is set, so a throwaway data folder never
    touches the real settings; None means the platform's usual place."""
    home = os.environ.get(ENV_VAR)
    return Path(home).expanduser() / "settings.ini" if home else None


def open_qsettings() -> QSettings:
    path = settings_file()
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings()


# Keys whose meaning changed: the budget is now the JS a token may spend at λ = 1 (λ × it at λ), where it was a
# fixed per-token bound; a value saved under the old key would be far too small, so it is not read.
_RENAMED_KEYS = {"budget_bits": "budget_max_bits"}


def _steer_key(name: str) -> str:
    return f"steer/{_RENAMED_KEYS.get(name, name)}"


@dataclass
class SteerSettings:
    """What the steering and sampling controls hold; defaults keep the demo model readable."""

    lam: float = DEFAULT_LAM
    mode: str = DEFAULT_MODE
    budget_bits: float = DEFAULT_BUDGET_BITS
    greedy: bool = False
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.15
    seed: int = 0  # -1 means a fresh random seed each time
    max_new_tokens: int = 64
    context_limit: int = 0  # tokens the context may use at most; 0: the model's whole window


class Settings:
    """Typed reads with defaults over one QSettings; every key lives here."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._s = qsettings or open_qsettings()

    # --- generic typed helpers -------------------------------------------------
    def _get(self, key: str, default: Any, typ: type) -> Any:
        value = self._s.value(key, default)
        if value is None:
            return default
        try:
            if typ is bool:
                if isinstance(value, str):
                    return value.strip().lower() in ("1", "true", "yes", "on")
                return bool(value)
            return typ(value)
        except (TypeError, ValueError):
            return default

    def _set(self, key: str, value: Any) -> None:
        self._s.setValue(key, value)

    def sync(self) -> None:
        self._s.sync()

    # --- window layout -----------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, data: QByteArray) -> None:
        self._set("window/geometry", data)

    def window_state(self) -> QByteArray | None:
        value = self._s.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def set_window_state(self, data: QByteArray) -> None:
        self._set("window/state", data)

    # --- model and style ---------------------------------------------------------
    def model_spec(self) -> str | None:
        value = self._get("model/spec", "", str)
        return value or None

    def set_model_spec(self, spec: str | None) -> None:
        self._set("model/spec", spec or "")

    def device(self) -> str:
        return self._get("model/device", "auto", str)

    def set_device(self, device: str) -> None:
        self._set("model/device", device)

    def quantize(self) -> str:
        return self._get("model/quantize", "none", str)

    def set_quantize(self, q: str) -> None:
        self._set("model/quantize", q)

    def precision(self) -> str:
        """The weights' precision on the CPU (auto, fp32, bf16 or int8); fp32 unless chosen."""
        value = self._get("model/precision", "fp32", str)
        return value if value in PRECISION_CHOICES else "fp32"

    def set_precision(self, precision: str) -> None:
        self._set("model/precision", precision)

    def style(self) -> str | None:
        value = self._get("style/active", "", str)
        return value or None

    def set_style(self, name: str | None) -> None:
        self._set("style/active", name or "")

    # --- steering and sampling ---------------------------------------------------
    def steer(self) -> SteerSettings:
        defaults = SteerSettings()
        values = {}
        for f in fields(SteerSettings):
            default = getattr(defaults, f.name)
            values[f.name] = self._get(_steer_key(f.name), default, type(default))
        return SteerSettings(**values)

    def set_steer(self, steer: SteerSettings) -> None:
        for key, value in asdict(steer).items():
            self._set(_steer_key(key), value)

    # --- banned phrases and biases (the global list) ------------------------------
    def phrase_rules(self) -> PhraseRules:
        """The saved list; an unreadable one (edited by hand, another version) reads as empty."""
        try:
            return PhraseRules.from_json(json.loads(self._get("phrases/rules", "{}", str)))
        except (ValueError, PhraseRuleError):
            return PhraseRules()

    def set_phrase_rules(self, rules: PhraseRules) -> None:
        self._set("phrases/rules", json.dumps(rules.to_json(), ensure_ascii=False))

    # --- files and appearance ----------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self._s.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def set_recent_files(self, paths: list[str]) -> None:
        self._set("files/recent", list(paths))

    def last_dir(self) -> str:
        return self._get("files/last_dir", "", str)

    def set_last_dir(self, path: str) -> None:
        self._set("files/last_dir", path)

    def theme(self) -> str:
        """'system', 'light' or 'dark'."""
        value = self._get("view/theme", "system", str)
        return value if value in ("system", "light", "dark") else "system"

    def set_theme(self, theme: str) -> None:
        self._set("view/theme", theme)

    def show_tints(self) -> bool:
        return self._get("view/show_tints", True, bool)

    def set_show_tints(self, on: bool) -> None:
        self._set("view/show_tints", on)

    def tint_scale(self) -> str:
        """'suggestion' (each suggestion's tints on its own bits scale) or 'fixed' (all on one)."""
        value = self._get("view/tint_scale", "suggestion", str)
        return value if value in ("suggestion", "fixed") else "suggestion"

    def set_tint_scale(self, mode: str) -> None:
        self._set("view/tint_scale", mode)

    def spell_check(self) -> bool:
        return self._get("editor/spell_check", True, bool)

    def set_spell_check(self, on: bool) -> None:
        self._set("editor/spell_check", on)
