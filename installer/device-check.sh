#!/usr/bin/env bash
# Check StyleSteer on a Linux machine with one NVIDIA GPU, offline, in a few minutes.
#
#   installer/device-check.sh [OUT_DIR]        (default: ./device-check-out)
#
# Expects Python with PyTorch (a CUDA build) and transformers installed; never reaches the network.
# Stages, each timed and bounded by `timeout`; a failed stage is recorded and the next one runs:
#   env          python, torch, transformers and bitsandbytes versions, torch.cuda.is_available(), the GPU's
#                name and memory, the nvidia-smi line
#   install      pip install --no-index --find-links WHEELS -e .[test] (WHEELS: $STYLESTEER_WHEELS, else
#                wheels/ beside this script; if that fails, install-core: -e . alone); without wheels,
#                --no-deps -e . when torch and transformers are present
#   model        ../shared/tinyllama-like/make.py: a TinyLlama-shaped model (22 layers; $DEVICE_CHECK_LAYERS)
#   styles       `stylesteer styles import` of ../shared/corpora/sherlock_holmes.txt, tokenized for that model,
#                into a throwaway STYLESTEER_HOME
#   bench-bf16   `stylesteer bench --model DIR --device cuda --json` at the GPU's default dtype (bf16, else fp16)
#   bench-8bit   the same with --quantize 8bit (bitsandbytes)
#   bench-4bit   the same with --quantize 4bit (bitsandbytes, nf4)
#   gpu-tests    pytest -m gpu
# and writes OUT_DIR/device-check.json (installer/device_check.py: every stage's status ok/failed/skipped,
# seconds, the parsed bench results) with each stage's output in OUT_DIR/STAGE.log, and a summary on stdout.
# Exit status 0 when no stage failed.
#
# Settings (environment):
#   PYTHON                     the interpreter (default: python3)
#   STYLESTEER_WHEELS          folder of wheels for the install stage (default: installer/wheels)
#   STYLESTEER_SHARED          the shared folder (default: ../shared beside the checkout)
#   DEVICE_CHECK_LAYERS        layers of the TinyLlama-shaped model (default 22; 2 for a quick run)
#   DEVICE_CHECK_TOKENS        bench --tokens (default 64)     DEVICE_CHECK_REPEATS   bench --repeats (default 2)
#   DEVICE_CHECK_CONTEXT       bench --context (default 512)
#   DEVICE_CHECK_BUDGET        seconds for all stages together (default 450); a stage gets what is left
#   DEVICE_CHECK_DEVICE        the bench device (default cuda; cpu runs the bench stages on the CPU, for testing)
#   DEVICE_CHECK_DRY_RUN=1     skip the CUDA stages (bench, gpu tests) whatever the machine has
#   DEVICE_CHECK_SKIP_INSTALL=1  skip the install stage (the checkout is already installed)
#   DEVICE_CHECK_KEEP=1        keep the temporary folder (model, style library)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="${1:-device-check-out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

PY="${PYTHON:-python3}"
wheels="${STYLESTEER_WHEELS:-$here/wheels}"
shared="${STYLESTEER_SHARED:-$repo/../shared}"
shared="$(cd "$shared" 2>/dev/null && pwd || printf %s "$shared")"
layers="${DEVICE_CHECK_LAYERS:-22}"
tokens="${DEVICE_CHECK_TOKENS:-64}"
repeats="${DEVICE_CHECK_REPEATS:-2}"
context="${DEVICE_CHECK_CONTEXT:-512}"
budget="${DEVICE_CHECK_BUDGET:-450}"
device="${DEVICE_CHECK_DEVICE:-cuda}"
dry_run="${DEVICE_CHECK_DRY_RUN:-0}"
skip_install="${DEVICE_CHECK_SKIP_INSTALL:-0}"

work="$(mktemp -d "${TMPDIR:-/tmp}/stylesteer-device-check.XXXXXX")"
cleanup() { [ "${DEVICE_CHECK_KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
state="$work/state.json"
model="$work/tinyllama-like"

# Offline and self-contained: the style library and caches in the throwaway folder.
export STYLESTEER_HOME="$work/home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
t0="$(now)"

record() {  # STAGE STATUS SECONDS [FILE] [NOTE]; a failure here is said and the script goes on
  "$PY" "$here/device_check.py" record "$state" "$@" || echo "device-check: could not record stage $1" >&2
}

skip() {  # STAGE NOTE
  printf 'device-check: %-12s skipped: %s\n' "$1" "$2"
  record "$1" skipped 0 "" "$2"
}

# run_stage NAME LIMIT COMMAND...: run it under `timeout` with what is left of the budget, stdout and
# stderr into OUT/NAME.log (stderr first, so a bench's JSON is the file's end); record ok or failed.
run_stage() {
  local name="$1" limit="$2" left start rc=0 secs status note=""
  shift 2
  left="$(awk -v b="$budget" -v s="$(elapsed "$t0")" 'BEGIN { printf "%d", b - s }')"
  if [ "$left" -lt 10 ]; then
    skip "$name" "out of time (budget ${budget} s)"
    return 1
  fi
  [ "$left" -lt "$limit" ] && limit="$left"
  printf 'device-check: %-12s running (at most %d s)\n' "$name" "$limit"
  start="$(now)"
  timeout --kill-after=10 "$limit" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  secs="$(elapsed "$start")"
  cat "$work/$name.err" "$work/$name.out" >"$out/$name.log"
  if [ "$rc" -eq 0 ]; then
    status=ok
  else
    status=failed
    note="exit status $rc"
    { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && note="timed out after $limit s"
  fi
  printf 'device-check: %-12s %s in %s s%s\n' "$name" "$status" "$secs" "${note:+ ($note)}"
  record "$name" "$status" "$secs" "$out/$name.log" "$note"
  return "$rc"
}

# 1. environment ----------------------------------------------------------------------------------
cuda=0
if run_stage env 60 "$PY" "$here/device_check.py" env && grep -q '"cuda_available": true' "$out/env.log"; then
  cuda=1
fi

# 2. install --------------------------------------------------------------------------------------
have_core() { "$PY" -c 'import torch, transformers' >/dev/null 2>&1; }
if [ "$skip_install" = 1 ]; then
  skip install "DEVICE_CHECK_SKIP_INSTALL=1"
elif [ -d "$wheels" ] && compgen -G "$wheels/*.whl" >/dev/null; then
  if ! run_stage install 240 "$PY" -m pip install --no-index --find-links "$wheels" --no-build-isolation \
         -e ".[test]"; then  # the test extras' wheels may be missing: the app alone, recorded apart
    run_stage install-core 180 "$PY" -m pip install --no-index --find-links "$wheels" --no-build-isolation -e . || true
  fi
elif have_core; then
  echo "device-check: no wheels at $wheels (set STYLESTEER_WHEELS); installing with --no-deps, the other" \
       "dependencies must already be installed" >&2
  run_stage install 240 "$PY" -m pip install --no-index --no-deps --no-build-isolation -e . || true
else
  echo "device-check: no wheels at $wheels and torch/transformers are missing: cannot install" >&2
  skip install "no wheels at $wheels, and torch/transformers are not installed"
fi

# 3. the TinyLlama-shaped model -------------------------------------------------------------------
model_ok=0
if [ ! -f "$shared/tinyllama-like/make.py" ]; then
  skip model "$shared/tinyllama-like/make.py not found (set STYLESTEER_SHARED)"
elif run_stage model 240 "$PY" "$shared/tinyllama-like/make.py" "$model" --layers "$layers"; then
  model_ok=1
fi

# 4. a style from the sample corpus ---------------------------------------------------------------
corpus="$shared/corpora/sherlock_holmes.txt"
if [ "$model_ok" != 1 ]; then
  skip styles "no model"
elif [ ! -f "$corpus" ]; then
  skip styles "$corpus not found"
else
  run_stage styles 180 "$PY" -m app styles import sherlock "$corpus" --model "$model" --json || true
fi

# 5. bench on the GPU: its default dtype, 8-bit and 4-bit ------------------------------------------
bench() {  # NAME [--quantize Q]
  local name="$1"
  shift
  run_stage "$name" 150 "$PY" -m app bench --model "$model" --device "$device" --json --tokens "$tokens" \
    --repeats "$repeats" --context "$context" --precisions none --skip-styles "$@" || true
}
cuda_reason=""
if [ "$dry_run" = 1 ]; then
  cuda_reason="DEVICE_CHECK_DRY_RUN=1"
elif [ "$device" != cpu ] && [ "$cuda" != 1 ]; then
  cuda_reason="no CUDA GPU (torch.cuda.is_available() is false)"
fi
for spec in "bench-bf16:" "bench-8bit:8bit" "bench-4bit:4bit"; do
  name="${spec%%:*}" quant="${spec#*:}"
  if [ -n "$cuda_reason" ]; then
    skip "$name" "$cuda_reason"
  elif [ "$model_ok" != 1 ]; then
    skip "$name" "no model"
  elif [ -n "$quant" ]; then
    bench "$name" --quantize "$quant"
  else
    bench "$name"
  fi
done

# 6. the tests marked gpu -------------------------------------------------------------------------
if [ -n "$cuda_reason" ] || [ "$cuda" != 1 ]; then
  skip gpu-tests "${cuda_reason:-no CUDA GPU (torch.cuda.is_available() is false)}"
else
  run_stage gpu-tests 180 "$PY" -m pytest -m gpu -q -p no:cacheprovider tests || true
fi

# 7. the summary ----------------------------------------------------------------------------------
"$PY" "$here/device_check.py" summary "$state" "$out/device-check.json"
