#!/usr/bin/env bash
# Make (once) a Debian 11 build root with CPython 3.11 built from source in /opt/python.
#
#   installer/linux/buildroot.sh DIR
#
# Everything the Linux bundle ships that is compiled (the Python interpreter, its stdlib
# extensions and the system libraries PyInstaller copies beside them) then comes from Debian 11,
# glibc 2.31, so the bundle starts on any x86_64 Linux with glibc >= 2.31 (Ubuntu 20.04+, Debian 11+,
# RHEL 9 / Rocky 9, Fedora 32+) whatever the build machine runs. Wheels are fetched for
# manylinux <= 2.31 by build.sh. Needs root (debootstrap, chroot, mount) and Debian's archive.
set -euo pipefail

root="${1:?usage: buildroot.sh DIR}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# CPython 3.11: the interpreter the CPU torch wheel is built for. The upstream source, as
# Debian's archive carries it (pinned by checksum).
py_version=3.11.2
py_source="$mirror/pool/main/p/python3.11/python3.11_${py_version}.orig.tar.gz"
py_sha256=2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
packages=libssl-dev,libffi-dev,zlib1g-dev,libbz2-dev,liblzma-dev,libsqlite3-dev,libexpat1-dev,uuid-dev,libgdbm-dev,libncurses-dev,libreadline-dev,binutils,xz-utils,ca-certificates,patchelf,pkg-config,curl

say() { printf 'buildroot: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "needs root (debootstrap and chroot)"; exit 3
fi
if [ ! -f "$root/.stylesteer-debootstrap" ]; then
  command -v debootstrap >/dev/null || { say "installing debootstrap"; apt-get install -y -qq debootstrap >/dev/null; }
  say "Debian 11 (bullseye) into $root (a few minutes)"
  mkdir -p "$root"
  debootstrap --variant=buildd --include="$packages" bullseye "$root" "$mirror" >&2
  touch "$root/.stylesteer-debootstrap"
fi

# /proc and a tmpfs /dev/shm inside the root: without /dev/shm, CPython's configure finds sem_open
# "not implemented" and builds multiprocessing without semaphores, which `import transformers` needs.
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mountpoint -q "$root/dev/shm" || { mkdir -p "$root/dev/shm"; mount -t tmpfs -o mode=1777 shm "$root/dev/shm"; }
trap 'umount "$root/dev/shm" "$root/proc" 2>/dev/null || true' EXIT
has_semaphores() { chroot "$root" /opt/python/bin/python3.11 -c 'from _multiprocessing import SemLock' 2>/dev/null; }

if [ ! -x "$root/opt/python/bin/python3.11" ] || ! has_semaphores; then
  src="$root/usr/src/python.tar.gz"
  if [ ! -f "$src" ] || ! echo "$py_sha256  $src" | sha256sum -c --quiet; then
    say "fetching the CPython $py_version source"
    curl -fsSL -o "$src" "$py_source"
    echo "$py_sha256  $src" | sha256sum -c --quiet
  fi
  say "building CPython $py_version against glibc 2.31 (5-10 minutes)"
  chroot "$root" /bin/bash -euo pipefail -c "
    rm -rf /opt/python && cd /usr/src && rm -rf Python-$py_version && tar xzf python.tar.gz && cd Python-$py_version
    ./configure -q --prefix=/opt/python --enable-shared LDFLAGS='-Wl,-rpath,/opt/python/lib' >/dev/null
    make -s -j\$(nproc) >/dev/null 2>make.log || { tail -40 make.log; exit 1; }
    make -s install >/dev/null 2>&1
    /opt/python/bin/python3.11 -c 'import ssl, ctypes, sqlite3, lzma, bz2, zlib, uuid, decimal, multiprocessing.synchronize'
  " >&2
fi
say "ready: $root/opt/python/bin/python3.11"
