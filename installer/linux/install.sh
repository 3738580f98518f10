#!/usr/bin/env bash
# Install StyleSteer for this user, no root needed: run it from the unpacked archive.
#
#   ./install.sh            the app in ~/.local/opt/StyleSteer, `stylesteer` in ~/.local/bin,
#                           a menu entry and the icon in ~/.local/share
#   ~/.local/opt/StyleSteer/uninstall.sh [--purge]     removes it again
#
# STYLESTEER_PREFIX, XDG_DATA_HOME and XDG_BIN_HOME move those places. Installing over an
# earlier version replaces it; your styles, models and settings are kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${STYLESTEER_PREFIX:-$HOME/.local/opt/StyleSteer}"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
bin_dir="${XDG_BIN_HOME:-$HOME/.local/bin}"
say() { printf 'install: %s\n' "$*"; }

[ -x "$here/StyleSteer/stylesteer" ] || { echo "install: run this from the unpacked StyleSteer archive" >&2; exit 2; }
case "$prefix" in /*) ;; *) echo "install: STYLESTEER_PREFIX must be an absolute path" >&2; exit 2 ;; esac

# The bundle: copied beside the old one, then swapped in, so a failed copy leaves the old install working.
mkdir -p "$(dirname "$prefix")"
rm -rf "$prefix.new"
cp -a "$here/StyleSteer" "$prefix.new"
cp "$here/uninstall.sh" "$prefix.new/uninstall.sh"
chmod +x "$prefix.new/uninstall.sh"
if [ -d "$prefix" ]; then
  [ -f "$prefix/.stylesteer-manifest" ] || [ -x "$prefix/stylesteer" ] \
    || { echo "install: $prefix exists and is not a StyleSteer install; not touching it" >&2; rm -rf "$prefix.new"; exit 2; }
  rm -rf "$prefix"
fi
mv "$prefix.new" "$prefix"

# What lies outside the bundle: the manifest lets uninstall.sh remove exactly these.
launcher="$bin_dir/stylesteer"
desktop="$data_home/applications/stylesteer.desktop"
icon_png="$data_home/icons/hicolor/256x256/apps/stylesteer.png"
icon_svg="$data_home/icons/hicolor/scalable/apps/stylesteer.svg"
mkdir -p "$bin_dir" "$(dirname "$desktop")" "$(dirname "$icon_png")" "$(dirname "$icon_svg")"

ln -sfn "$prefix/stylesteer" "$launcher"
cp "$prefix/_internal/resources/stylesteer.png" "$icon_png"
cp "$prefix/_internal/resources/stylesteer.svg" "$icon_svg"
version="$("$prefix/stylesteer" --version | awk '{print $2}')"
exec_path="$prefix/stylesteer"
case "$exec_path" in *[[:space:]\"\'\\\$\`]*) exec_path="\"$(printf '%s' "$exec_path" | sed 's/[\"`$\\]/\\\\&/g')\"" ;; esac
cat > "$desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Version=1.0
Name=StyleSteer
GenericName=Writing assistant
Comment=Steer a local language model toward your own writing style
Exec=$exec_path gui %f
TryExec=$prefix/stylesteer
Icon=stylesteer
Terminal=false
Categories=Office;WordProcessor;Qt;
MimeType=text/plain;text/markdown;
Keywords=writing;style;language model;prose;
StartupWMClass=StyleSteer
X-StyleSteer-Version=$version
DESKTOP
printf '%s\n' "$launcher" "$desktop" "$icon_png" "$icon_svg" > "$prefix/.stylesteer-manifest"

# Menu and icon caches are refreshed only where the desktop keeps them (the tools are optional).
if [ -f "$data_home/applications/mimeinfo.cache" ] && command -v update-desktop-database >/dev/null; then
  update-desktop-database -q "$data_home/applications" 2>/dev/null || true
fi
if [ -f "$data_home/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null; then
  gtk-update-icon-cache -q -t "$data_home/icons/hicolor" 2>/dev/null || true
fi

say "StyleSteer $version installed in $prefix"
say "start it from the applications menu, or run: stylesteer"
case ":$PATH:" in *":$bin_dir:"*) ;; *) say "note: $bin_dir is not on your PATH; add it, or run $launcher" ;; esac
say "remove it with: $prefix/uninstall.sh   (add --purge to delete your styles and settings too)"
