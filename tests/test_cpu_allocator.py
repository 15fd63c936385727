"""CPU allocator setting: freed memory is reused without page faults, modes are reported."""

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plgvit_mm.utils.cpu_allocator import set_cpu_allocator

REPO = Path(__file__).resolve().parents[1]

# minor page faults of each of 20 allocate-fill-free passes over a 64 MiB tensor (above glibc's
# largest mmap threshold, 32 MiB), in a fresh process, per allocator mode
FAULTS_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from plgvit_mm.utils.cpu_allocator import set_cpu_allocator
    mode = set_cpu_allocator(sys.argv[1])
    def faults_of_one_pass():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.empty(16 * 2**20, dtype=torch.float32)  # 64 MiB
        t.fill_(1.0)
        del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(mode, *[faults_of_one_pass() for _ in range(20)])
""")


def _faults(mode: str) -> tuple[str, list[int]]:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT, mode],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[0], [int(n) for n in out[1:]]


@pytest.mark.slow
@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)
def test_retain_reuses_freed_memory_without_page_faults():
    pages = 64 * 2**20 // 4096
    system_mode, system_faults = _faults("system")
    retain_mode, retain_faults = _faults("retain")
    assert (system_mode, retain_mode) == ("system", "retain")
    # the default allocator maps fresh pages for every 64 MiB tensor: one fault per page
    assert min(system_faults) > pages // 2, system_faults
    # retained: after a few passes (the heap settles; measured: at most 3 passes fault) the
    # freed block is reused
    assert max(retain_faults[10:]) < pages // 50, retain_faults


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="retain"):
        set_cpu_allocator("jemalloc")
