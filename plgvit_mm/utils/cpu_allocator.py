"""Keep freed CPU memory in the process (glibc malloc), so tensors do not page-fault every pass.

glibc serves an allocation above its mmap threshold (adaptive, at most 32 MiB on 64-bit Linux)
with fresh ``mmap`` pages and gives freed heap memory above its trim threshold back to the OS.
The next allocation of that size then pays a page fault per 4 KiB page (the kernel zeroes each
page on first touch), on every forward. Dense prediction allocates many such tensors per pass
(LW-PLG-ViT-A at 768x2560: 71 MB stride-4 FFN maps), so the fault time appears once tensors
cross the threshold and grows faster than the pixel count; smaller tensors can hit the same
churn through trimming, when freed memory is returned to the OS between passes.

PyTorch's CPU launcher (``python -m torch.backends.xeon.run_cpu``) preloads jemalloc or tcmalloc
for the same reason; :func:`retain_freed_memory` is the glibc-only equivalent (no extra library):
``mallopt(M_MMAP_MAX, 0)`` serves every allocation from the heap and
``mallopt(M_TRIM_THRESHOLD, INT_MAX)`` keeps freed heap memory for reuse. The cost is that the
process keeps its peak heap size until exit (``malloc_trim`` still releases it on request).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["ALLOCATOR_MODES", "cpu_allocator_mode", "retain_freed_memory", "set_cpu_allocator"]

ALLOCATOR_MODES = ("retain", "system")
"""'retain': :func:`retain_freed_memory`; 'system': the C library's defaults, untouched."""

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_MAX = -4
INT_MAX = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse (process-wide, for the rest of the process).

    Returns True when both settings were applied, False where the C library is not glibc (no
    ``gnu_get_libc_version``) or refused them; then nothing was changed.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, INT_MAX))


def set_cpu_allocator(mode: str) -> str:
    """Apply an :data:`ALLOCATOR_MODES` mode; returns the mode in effect afterwards.

    'retain' falls back to 'system' where the C library is not glibc; 'system' changes nothing,
    so it stays 'retain' once :func:`retain_freed_memory` ran in this process (it cannot be
    undone). Raises ValueError for an unknown mode.
    """
    if mode not in ALLOCATOR_MODES:
        raise ValueError(f"CPU allocator mode must be one of {ALLOCATOR_MODES}, got {mode!r}")
    if mode == "retain":
        retain_freed_memory()
    return cpu_allocator_mode()


def cpu_allocator_mode() -> str:
    """'retain' once :func:`retain_freed_memory` succeeded in this process, else 'system'."""
    applied = retain_freed_memory.cache_info().currsize and retain_freed_memory()
    return "retain" if applied else "system"
