#!/usr/bin/env bash
# Smoke-test a built StyleSteer the way a user meets it, in a throwaway home with a fresh data folder.
#
#   installer/smoke.sh ARTIFACT [CORPUS]
#
# ARTIFACT: the Linux archive (StyleSteer-*-linux-x86_64.tar.gz: unpacked, ./install.sh, and at the
# end uninstall.sh), an installed or unpacked folder holding `stylesteer` or `stylesteer-cli.exe`
# (Windows), or StyleSteer.app (macOS). CORPUS: a text file or folder for `styles import`
# (default: ../shared/corpora/sherlock_holmes.txt, else README.md; a file is cut to its first 200 kB).
#
# Checks, in order, and prints how long each took:
#   --version; the GUI offscreen for 60 s (its window within 15 s, the demo model ready within 60 s
#   on this first run, no traceback); `generate --model demo --max-new-tokens 8`; `styles import`;
#   for the archive: a valid desktop entry, and after uninstall nothing left outside the data folder.
set -euo pipefail
artifact="${1:?usage: smoke.sh ARTIFACT [CORPUS]}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpus="${2:-$repo/../shared/corpora/sherlock_holmes.txt}"
[ -e "$corpus" ] || [ -n "${2:-}" ] || corpus="$repo/README.md"  # no sample corpora here: any prose will do
gui_seconds="${SMOKE_GUI_SECONDS:-60}"

work="$(mktemp -d "${TMPDIR:-/tmp}/stylesteer-smoke.XXXXXX")"
gui_pid=""
cleanup() { [ -n "$gui_pid" ] && kill "$gui_pid" 2>/dev/null; [ -n "${SMOKE_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
fail() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf 'smoke: %-34s %s\n' "$1" "$2"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# A throwaway home: the app's default data folder, settings and caches all land under it.
export HOME="$work/home"
mkdir -p "$HOME"
unset STYLESTEER_HOME STYLESTEER_MODELS XDG_DATA_HOME XDG_CONFIG_HOME XDG_CACHE_HOME XDG_BIN_HOME
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*) export LOCALAPPDATA="$work/localappdata" APPDATA="$work/appdata"; mkdir -p "$LOCALAPPDATA" "$APPDATA" ;;
esac

installed=0
t=$(now)
case "$artifact" in
  *.tar.gz)
    tar -xzf "$artifact" -C "$work"
    unpacked="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'StyleSteer-*' | head -1)"
    [ -n "$unpacked" ] || fail "no StyleSteer-* folder in $artifact"
    "$unpacked/install.sh" > "$work/install.log" || { cat "$work/install.log"; fail "install.sh failed"; }
    bin="$HOME/.local/bin/stylesteer"; gui=("$bin")
    installed=1
    ;;
  *.app|*.app/)
    bin="${artifact%/}/Contents/MacOS/stylesteer"; gui=("$bin")
    ;;
  *)
    if [ -f "$artifact/stylesteer-cli.exe" ]; then
      bin="$artifact/stylesteer-cli.exe"; gui=("$artifact/stylesteer-cli.exe")
    else
      bin="$artifact/stylesteer"; gui=("$bin")
    fi
    ;;
esac
[ -x "$bin" ] || fail "no executable at $bin"
step "unpack + install" "$(since "$t")"

# --- --version -------------------------------------------------------------------------------------
t=$(now)
version="$("$bin" --version)" || fail "--version exited $?"
[[ "$version" =~ ^stylesteer\ [0-9] ]] || fail "--version printed '$version'"
step "--version ($version)" "$(since "$t")"

# --- the GUI, offscreen, on a fresh data folder (the demo model's first conversion) ----------------
t=$(now)
QT_QPA_PLATFORM=offscreen STYLESTEER_STARTUP_LOG=1 "${gui[@]}" gui > "$work/gui.out" 2> "$work/gui.err" &
gui_pid=$!
window="" model=""
while :; do
  elapsed="$(awk -v a="$t" -v b="$(now)" 'BEGIN { print b - a }')"
  if [ -z "$window" ] && grep -q "stylesteer: window shown" "$work/gui.err"; then window="$elapsed"; fi
  if [ -z "$model" ] && grep -q "stylesteer: model ready" "$work/gui.err"; then model="$elapsed"; fi
  kill -0 "$gui_pid" 2>/dev/null || { cat "$work/gui.err" >&2; fail "the GUI exited early"; }
  awk -v e="$elapsed" -v s="$gui_seconds" 'BEGIN { exit !(e >= s) }' && break
  sleep 0.5
done
kill "$gui_pid" 2>/dev/null || true
wait "$gui_pid" 2>/dev/null || true
gui_pid=""
if grep -q "Traceback" "$work/gui.err" "$work/gui.out"; then cat "$work/gui.err" >&2; fail "a traceback in the GUI's output"; fi
step "GUI: main window shown" "$(printf '%.1f s' "${window:-999}")"
step "GUI: demo model ready (first run)" "$(printf '%.1f s' "${model:-999}")"
[ -n "$window" ] || { cat "$work/gui.err" >&2; fail "no main window within ${gui_seconds} s"; }
[ -n "$model" ] || { cat "$work/gui.err" >&2; fail "the demo model was not ready within ${gui_seconds} s"; }
awk -v w="$window" 'BEGIN { exit !(w <= 15) }' || fail "main window after ${window} s (limit 15 s)"
awk -v m="$model" 'BEGIN { exit !(m <= 60) }' || fail "demo model ready after ${model} s (limit 60 s)"
step "GUI: ran offscreen, no traceback" "${gui_seconds} s"

# --- generate --------------------------------------------------------------------------------------
t=$(now)
out="$("$bin" generate --model demo --max-new-tokens 8 "It was a dark night" 2> "$work/generate.err")" \
  || { cat "$work/generate.err" >&2; fail "generate exited non-zero"; }
[ -n "$out" ] || fail "generate printed nothing"
step "generate (8 tokens, demo)" "$(since "$t")"

# --- styles import ---------------------------------------------------------------------------------
sample="$corpus"
if [ -f "$corpus" ]; then sample="$work/smoke-sample.txt"; head -c 200000 "$corpus" > "$sample"; fi
[ -e "$sample" ] || fail "no corpus at $corpus"
t=$(now)
"$bin" styles import smoke "$sample" --model demo > "$work/import.out" 2>&1 || { cat "$work/import.out" >&2; fail "styles import failed"; }
"$bin" styles list | grep -q smoke || fail "the imported style is not listed"
step "styles import" "$(since "$t")"

# --- the desktop entry, then uninstall -------------------------------------------------------------
if [ "$installed" = 1 ]; then
  desktop="$HOME/.local/share/applications/stylesteer.desktop"
  [ -f "$desktop" ] || fail "no desktop entry at $desktop"
  if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$desktop" || fail "desktop-file-validate rejected $desktop"
    step "desktop-file-validate" "ok"
  else
    step "desktop-file-validate" "not installed; skipped"
  fi
  exec_bin="$(sed -n 's/^Exec=\(.*\) gui\( %[fF]\)\{0,1\}$/\1/p' "$desktop" | tr -d '"')"
  [ -x "$exec_bin" ] && [ ! -L "$exec_bin" ] || fail "the desktop entry's Exec is not the real binary: $exec_bin"
  [ -f "$HOME/.local/share/icons/hicolor/256x256/apps/stylesteer.png" ] || fail "no icon in the hicolor theme"

  "$HOME/.local/opt/StyleSteer/uninstall.sh" > "$work/uninstall.log" || fail "uninstall.sh failed"
  grep -q "kept $HOME/.local/share/StyleSteer" "$work/uninstall.log" || fail "uninstall did not list the data folder"
  left="$(cd "$HOME" && find . -iname '*stylesteer*' -not -path './.local/share/StyleSteer*' -not -path './.config/StyleSteer*')"
  [ -z "$left" ] || fail "left after uninstall: $left"
  step "uninstall (data folder kept)" "ok"
  # --purge removes the rest; reinstalling for it is quicker than a second archive.
  "$unpacked/install.sh" > /dev/null
  "$HOME/.local/opt/StyleSteer/uninstall.sh" --purge > "$work/purge.log" || fail "uninstall.sh --purge failed"
  left="$(cd "$HOME" && find . -iname '*stylesteer*')"
  [ -z "$left" ] || fail "left after uninstall --purge: $left"
  step "uninstall --purge (nothing left)" "ok"
fi
echo "smoke: all checks passed"
