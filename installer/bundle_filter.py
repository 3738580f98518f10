"""What the PyInstaller build leaves out: GPU libraries in a CPU build, developer files, desktop libraries."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Never needed at run time: torch's C++ tests and test libraries, command-line tools (but torch_shm_manager,
# which `import torch` looks for), headers, CMake files, static libraries.
# zstandard's cffi backend too: the app imports its C backend (zstandard.backend_c).
DEVELOPER_FILES = re.compile(r"^torch/(test|include|share)/|^torch/bin/(?!torch_shm_manager$)|^torch/.*\.(h|hpp|cuh)$"
                             r"|\.(a|lib|pyi)$|^zstandard/_cffi"
                             r"|^torch/lib/lib(jitbackend_test|torchbind_test|aoti_custom_ops|backend_with_compiler)\.")

# Only a GPU build uses these: bitsandbytes' CUDA/ROCm/XPU/MPS kernels (its CPU library stays), and any
# GPU runtime PyInstaller would otherwise copy from the build machine.
GPU_FILES = re.compile(r"^bitsandbytes/libbitsandbytes_(?!cpu)|"
                       r"(^|/)lib(cudart|cuda|nvrtc|nvJitLink|nvToolsExt|cublas|cublasLt|cudnn|cufft|curand|cusolver|"
                       r"cusparse|nccl|amdhip64|hiprtc|rocblas|hipblas|MIOpen|sycl|ze_loader)[^/]*$")

# Linux: libraries of the user's desktop that must match its X server, GPU driver and fonts, so they
# come from the system (as in AppImage's exclude list). app/xlibs.py names any that are missing.
# libstdc++ and libgcc_s too: a bundled older one would break the system's GL driver, which needs its own.
LINUX_SYSTEM_LIBRARIES = re.compile(
    r"(^|/)lib(GL|EGL|GLX|GLdispatch|OpenGL|GLESv2|gbm|drm|xcb|X11|Xext|Xrender|Xi|Xfixes|Xau|Xdmcp|Xcursor|"
    r"Xrandr|xkbcommon|fontconfig|freetype|dbus-1|glib-2\.0|gobject-2\.0|gio-2\.0|gmodule-2\.0|gthread-2\.0|"
    r"wayland-|vulkan|asound|pulse|stdc\+\+|gcc_s)[^/]*\.so[^/]*$")

# A wheel's own copies, renamed by auditwheel (pillow.libs/libxcb-9065bb12.so.1.1.0): only that wheel's
# extensions load them, by that name, so they never clash with the desktop's; without them PIL (and so
# the tune panel's plots) cannot import.
VENDORED = re.compile(r"(^|/)[^/]+\.libs/[^/]+$")


def dropped(dest: str, *, cpu_build: bool, platform: str) -> bool:
    """Whether a file at `dest` (its path inside the bundle) is left out."""
    dest = dest.replace("\\", "/")
    if DEVELOPER_FILES.search(dest):
        return True
    if cpu_build and GPU_FILES.search(dest):
        return True
    return platform.startswith("linux") and bool(LINUX_SYSTEM_LIBRARIES.search(dest)) and not VENDORED.search(dest)


def keep(entries: Iterable[tuple], *, cpu_build: bool, platform: str) -> list[tuple]:
    """The TOC entries (dest, source, kind) that stay in the bundle."""
    return [entry for entry in entries if not dropped(entry[0], cpu_build=cpu_build, platform=platform)]
