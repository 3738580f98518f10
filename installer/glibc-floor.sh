#!/usr/bin/env bash
# Print the highest GLIBC (and GLIBCXX) symbol version any ELF file under DIR needs; fail above the floor.
#
#   installer/glibc-floor.sh DIR [MAX]     MAX defaults to 2.31 (Debian 11, Ubuntu 20.04)
#
# An archive (.tar.gz) is unpacked to a temporary folder first. Exit status: 0 at or under MAX,
# 1 above it (the files that need more are listed), 2 on bad usage.
set -euo pipefail
target="${1:?usage: glibc-floor.sh DIR|ARCHIVE [MAX]}"
max="${2:-2.31}"
command -v readelf >/dev/null || { echo "glibc-floor: readelf (binutils) is needed" >&2; exit 2; }
if [ -f "$target" ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$target" -C "$tmp"; target="$tmp"
fi
[ -d "$target" ] || { echo "glibc-floor: no such folder: $target" >&2; exit 2; }

needs="$(mktemp)"; trap 'rm -f "$needs"; [ -n "${tmp:-}" ] && rm -rf "$tmp"' EXIT
count=0
while IFS= read -r -d '' f; do
  [ "$(head -c4 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue
  count=$((count + 1))
  readelf --version-info --wide "$f" 2>/dev/null \
    | grep -oE 'Name: GLIBC(XX)?_[0-9.]+' | sed "s|Name: ||; s|\$| ${f#"$target"/}|" >> "$needs" || true
done < <(find "$target" -type f -print0)

top() { { grep -E "^$1_[0-9]" "$needs" || true; } | sed "s/^$1_//" | sort -t' ' -k1,1V | tail -1; }
glibc="$(top GLIBC | cut -d' ' -f1)"; glibcxx="$(top GLIBCXX | cut -d' ' -f1)"
echo "ELF files: $count"
echo "GLIBC floor: ${glibc:-none} (needed by $(top GLIBC | cut -d' ' -f2-))"
[ -n "$glibcxx" ] && echo "GLIBCXX floor: $glibcxx (needed by $(top GLIBCXX | cut -d' ' -f2-); from the system's libstdc++)"
if [ -n "$glibc" ] && [ "$(printf '%s\n%s\n' "$glibc" "$max" | sort -V | tail -1)" != "$max" ]; then
  echo "above $max:" >&2
  grep -E '^GLIBC_[0-9]' "$needs" | sed 's/^GLIBC_//' | while read -r v f; do
    [ "$(printf '%s\n%s\n' "$v" "$max" | sort -V | tail -1)" != "$max" ] && echo "  GLIBC_$v  $f"
  done | sort -u -k2 | sort -rV | head -30 >&2
  exit 1
fi
echo "ok: at or under glibc $max"
