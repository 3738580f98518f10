#!/usr/bin/env bash
# Remove StyleSteer as install.sh put it: the bundle, the `stylesteer` launcher, the menu entry, the icons.
#
#   uninstall.sh            keeps your data folder and settings, and says where they are
#   uninstall.sh --purge    deletes them too
set -euo pipefail
purge=0
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  *) echo "usage: uninstall.sh [--purge]" >&2; exit 2 ;;
esac
prefix="${STYLESTEER_PREFIX:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
config_home="${XDG_CONFIG_HOME:-$HOME/.config}"
say() { printf 'uninstall: %s\n' "$*"; }
# Menu and icon caches are refreshed only where the desktop keeps them (the tools are optional).
refresh_caches() {
  if [ -f "$data_home/applications/mimeinfo.cache" ] && command -v update-desktop-database >/dev/null; then
    update-desktop-database -q "$data_home/applications" 2>/dev/null || true
  fi
  if [ -f "$data_home/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null; then
    gtk-update-icon-cache -q -t "$data_home/icons/hicolor" 2>/dev/null || true
  fi
}

[ -f "$prefix/.stylesteer-manifest" ] || { echo "uninstall: no StyleSteer install in $prefix" >&2; exit 2; }
while IFS= read -r path; do
  [ -n "$path" ] || continue
  # The launcher is removed only while it is still ours (a link into this install).
  if [ -L "$path" ] && [ "$(readlink "$path")" != "$prefix/stylesteer" ]; then continue; fi
  rm -f "$path"
  # Folders left empty under the icon theme (256x256/apps, scalable/apps) go too; nothing above it.
  dir="$(dirname "$path")"
  while [ "${dir#"$data_home/icons/hicolor/"}" != "$dir" ] && rmdir "$dir" 2>/dev/null; do dir="$(dirname "$dir")"; done
done < "$prefix/.stylesteer-manifest"
rm -rf "$prefix"
rmdir "$(dirname "$prefix")" 2>/dev/null || true  # ~/.local/opt, when StyleSteer was all it held
refresh_caches
say "removed $prefix, the launcher, the menu entry and the icons"

data="${STYLESTEER_HOME:-$data_home/StyleSteer}"
settings="$config_home/StyleSteer"
for path in "$data" "$settings"; do
  [ -e "$path" ] || continue
  if [ "$purge" = 1 ]; then
    rm -rf "$path"; say "deleted $path"
  else
    say "kept $path ($(du -sh "$path" 2>/dev/null | cut -f1)); delete it yourself or run again with --purge"
  fi
done
