"""Give back the resident pages of a memory-mapped checkpoint once its tensors have been copied.

transformers maps a safetensors file privately and hands out tensors that are views of that
mapping. Converting such a weight (to fp32, int8 or a column-major layout) reads every page of it,
and the kernel keeps those pages in the process's resident set until the whole file is unmapped,
which happens only when the last weight of the file is gone. Loading a bf16 checkpoint as fp32 so
held the checkpoint and the fp32 model at once: 1.5x the weights. `release` drops the pages of a
tensor that was just replaced, so the peak is the converted model plus one tensor.

Only pages of a *file* mapping of a `.safetensors` file, wholly inside the tensor's bytes, are
dropped: `MADV_DONTNEED` on a private file mapping reverts them to the file's contents, which are
the tensor's values (nothing writes to a loaded weight), so a stray reader still sees the right
numbers. Anonymous memory is never touched. Elsewhere than Linux this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import torch

MADV_DONTNEED = 4
CHECKPOINT_SUFFIX = ".safetensors"
COPY_ROWS = 256  # a block that stays in cache: 3x faster than one transposing copy of the whole


@lru_cache(maxsize=1)
def _madvise() -> Callable[[int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    func = libc.madvise
    func.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    func.restype = ctypes.c_int
    return func


def checkpoint_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's mappings of safetensors files, from /proc/self/maps."""
    try:
        lines = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].endswith(CHECKPOINT_SUFFIX) and fields[4] != "0":
            start, _, end = fields[0].partition("-")
            found.append((int(start, 16), int(end, 16)))
    return found


def _span(tensor: torch.Tensor) -> tuple[int, int]:
    """The byte range [start, end) the tensor's elements occupy."""
    if tensor.numel() == 0:
        return 0, 0
    start = tensor.data_ptr()
    reach = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True))
    return start, start + (reach + 1) * tensor.element_size()


def release(tensors: Iterable[torch.Tensor], mappings: list[tuple[int, int]] | None = None) -> int:
    """Drop the resident checkpoint pages wholly inside each CPU tensor's bytes; -> bytes given back.

    Call it on tensors that have just been replaced. `mappings` (from `checkpoint_mappings()`) saves
    re-reading /proc/self/maps when releasing many tensors at once.
    """
    madvise = _madvise()
    if madvise is None:
        return 0
    spans = [_span(t) for t in tensors if t.device.type == "cpu"]
    if not spans:
        return 0
    mappings = checkpoint_mappings() if mappings is None else mappings
    page = mmap.PAGESIZE
    released = 0
    for start, end in spans:
        first = -(-start // page) * page  # whole pages only: a neighbour's bytes stay
        last = end // page * page
        if last <= first or not any(lo <= first and last <= hi for lo, hi in mappings):
            continue
        if madvise(first, last - first, MADV_DONTNEED) == 0:
            released += last - first
    return released


def converted(old: torch.Tensor, dtype: torch.dtype, column_major: bool = False,
              mappings: list[tuple[int, int]] | None = None) -> torch.Tensor:
    """A copy of `old` in `dtype` (a 2-D one column-major: the transpose of a contiguous matrix), made
    COPY_ROWS rows at a time, each block's checkpoint pages given back once copied: the old and the new
    tensor are never whole in memory at once."""
    mappings = checkpoint_mappings() if mappings is None else mappings
    shape = old.shape
    fresh = (torch.empty(shape[1], shape[0], dtype=dtype).t() if column_major
             else torch.empty(shape, dtype=dtype))
    if old.dim() == 0:
        return fresh.copy_(old)
    for rows in range(0, shape[0], COPY_ROWS):
        block = old[rows:rows + COPY_ROWS]
        fresh[rows:rows + COPY_ROWS].copy_(block)
        release([block], mappings)
    return fresh


def resident_checkpoint_bytes() -> int:
    """Resident bytes of this process's safetensors mappings (Rss in /proc/self/smaps), for tests."""
    try:
        text = Path("/proc/self/smaps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    total, inside = 0, False
    for line in text.splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            inside = len(fields) == 6 and fields[5].endswith(CHECKPOINT_SUFFIX)
        elif inside and fields[:1] == ["Rss:"]:
            total += int(fields[1]) * 1024
    return total
