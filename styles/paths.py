"""Where StyleSteer keeps a user's data: the per-user data folder, or $STYLESTEER_HOME."""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

ENV_VAR = "STYLESTEER_HOME"


def user_dir() -> Path:
    """The data folder (created on first use); `$STYLESTEER_HOME` overrides the platform default."""
    override = os.environ.get(ENV_VAR)
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir("StyleSteer", "StyleSteer"))
    path.mkdir(parents=True, exist_ok=True)
    return path


MODELS_ENV_VAR = "STYLESTEER_MODELS"


def models_dir() -> Path:
    """Cache of converted models (safetensors): `$STYLESTEER_MODELS`, else inside the data folder."""
    override = os.environ.get(MODELS_ENV_VAR)
    path = Path(override).expanduser() if override else user_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_path() -> Path:
    """The SQLite style store."""
    return user_dir() / "styles.db"


def slug(name: str) -> str:
    """A style name as a safe file or folder name (e.g. for per-style output): letters, digits, '.', '_'
    and '-', never starting or ending with one of those three (so never '..' or a hidden name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "style"
