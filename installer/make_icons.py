"""Make the Windows .ico and the macOS .icns from resources/stylesteer.png (Pillow), at build time."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "stylesteer.png"


def make_icons(out: Path) -> dict[str, Path]:
    """Write stylesteer.ico and stylesteer.icns into `out`; return their paths by suffix."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    image = Image.open(SOURCE).convert("RGBA")
    ico, icns = out / "stylesteer.ico", out / "stylesteer.icns"
    image.save(ico, sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    image.save(icns)
    return {".ico": ico, ".icns": icns}


if __name__ == "__main__":
    for path in make_icons(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "icons")).values():
        print(path)
