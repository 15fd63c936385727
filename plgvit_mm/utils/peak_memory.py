"""Peak memory of one call, above what was resident before it, on CUDA or on a Linux CPU.

CUDA: ``torch.cuda.max_memory_allocated`` during the call minus the allocation before it.
CPU: growth of the process resident set (``VmHWM`` after a reset through
``/proc/self/clear_refs``, once ``malloc_trim`` returned freed heap memory to the OS) during the
call. Either way the result is the call's activations, temporaries and new allocations in MiB;
what was resident before (weights, optimizer state) is excluded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

import torch

__all__ = ["peak_memory_mib"]


def peak_memory_mib(call: Callable[[], object], device: torch.device) -> float | None:
    """Run ``call()`` once and return its peak memory in MiB above the level before it.

    ``None`` on a CPU where the resident-set peak cannot be reset (not Linux).
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if not _reset_cpu_peak():
        return None
    base = _proc_status_kib("VmRSS")
    _reset_cpu_peak()
    call()
    return (_proc_status_kib("VmHWM") - base) / 1024


def _proc_status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")


def _reset_cpu_peak() -> bool:
    """Return freed heap memory to the OS and reset VmHWM to VmRSS; False where impossible."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None and hasattr(libc := ctypes.CDLL(libc_name), "malloc_trim"):
        libc.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True
