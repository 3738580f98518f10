"""Name the missing X libraries Qt's xcb plugin needs, before Qt aborts with a misleading message."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

# soname -> (Debian/Ubuntu package, Fedora/RHEL package). Qt's xcb platform plugin links all of
# these; when one is missing, Qt 6 only says "xcb-cursor0 or libxcb-cursor0 is needed", whichever it is.
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
}


def uses_xcb(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will pick its xcb (X11) platform plugin on this system."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return False
    return True


def missing(libraries: Mapping[str, tuple[str, str]] = XCB_LIBRARIES) -> list[str]:
    """The sonames among `libraries` that the dynamic loader cannot open."""
    absent = []
    for soname in libraries:
        try:
            ctypes.CDLL(soname)
        except OSError:
            absent.append(soname)
    return absent


def missing_message(environ: Mapping[str, str] | None = None,
                    libraries: Mapping[str, tuple[str, str]] = XCB_LIBRARIES) -> str | None:
    """One line naming the packages to install, or None when the GUI can start (or is not on X)."""
    if not uses_xcb(environ):
        return None
    absent = missing(libraries)
    if not absent:
        return None
    debian = " ".join(dict.fromkeys(libraries[name][0] for name in absent))
    fedora = " ".join(dict.fromkeys(libraries[name][1] for name in absent))
    return (f"the X11 libraries {', '.join(absent)} are missing; install them with "
            f"`sudo apt install {debian}` (Debian, Ubuntu) or `sudo dnf install {fedora}` (Fedora, RHEL)")
