#!/usr/bin/env bash
# Build a self-contained one-folder app in dist/StyleSteer with PyInstaller.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./installer/setup.sh env
. .venv/bin/activate
python -m pip install -q --disable-pip-version-check "pyinstaller>=6.0"
pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller installer/stylesteer.spec
echo "built: dist/StyleSteer/stylesteer"
