#!/usr/bin/env bash
# Start the real app under Xvfb, import a corpus as a style, generate a steered completion and
# save screenshots of the main window, the compare view and the context viewer into docs/screenshots/
# (`--shots context` makes only the context viewer's; installer/screenshots.py also runs alone with QT_QPA_PLATFORM=offscreen).
#
#   installer/screenshots.sh                         (uses .venv/ if present, else the python on PATH)
#   installer/screenshots.sh --theme dark --suffix _dark
#
# The app runs with a throwaway data folder, so the user's styles and settings are untouched.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"; else PY="python3"; fi
fi

if ! command -v Xvfb >/dev/null 2>&1; then
  echo "Xvfb not found; installing it (apt-get install -y xvfb)…"
  SUDO=""
  [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  $SUDO apt-get install -y xvfb >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y xvfb >/dev/null; }
fi
# Qt's xcb platform plugin needs these on a bare system (harmless when present).
if command -v apt-get >/dev/null 2>&1 && ! (ldconfig -p 2>/dev/null | grep libxcb-cursor.so.0 >/dev/null); then
  echo "Installing the X libraries Qt's xcb plugin needs…"
  SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  $SUDO apt-get install -y libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 \
    libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 >/dev/null \
    || echo "warning: could not install them; the app may fail to start under Xvfb" >&2
fi

HOME_DIR="$(mktemp -d -t stylesteer-shots.XXXXXX)"
DISPLAY_NUM="${SCREENSHOT_DISPLAY:-:97}"
cleanup() {
  [[ -n "${XVFB_PID:-}" ]] && kill "$XVFB_PID" 2>/dev/null || true
  rm -rf "$HOME_DIR"
}
trap cleanup EXIT

Xvfb "$DISPLAY_NUM" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
XVFB_PID=$!
sleep 1

export DISPLAY="$DISPLAY_NUM"
export QT_QPA_PLATFORM=xcb
export STYLESTEER_HOME="$HOME_DIR"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
# Reuse a converted demo model when the tests left one (converting it again takes ~20 s).
if [[ -z "${STYLESTEER_MODELS:-}" && -d "$REPO/.test-cache/models" ]]; then
  export STYLESTEER_MODELS="$REPO/.test-cache/models"
fi
cd "$REPO"
"$PY" installer/screenshots.py --out "$REPO/docs/screenshots" "$@"
