"""Fused CPU neighborhood-attention forward (C++, ``csrc/na2d_cpu.cpp``), built once per machine.

The kernel evaluates logits, softmax and the weighted sum of values for two query rows at a time
(vectorised across the queries of a row; the design is in the C++ file's header), reads q, k
and v straight from strided views of the qkv projection and writes the contiguous
(B, H, W, heads, head_dim) output, so the layer makes no permuted copies and no bias gathers. It
is forward only: calls that need gradients or attention dropout use the reference (CSR) path.

The extension is compiled with ``torch.utils.cpp_extension`` (g++ and ninja; ``-O3
-march=native``) into ``$PLGVIT_MM_CACHE/torch_extensions`` (default ``~/.cache/plgvit_mm``),
one build per torch version, Python and CPU feature set; ``tools/install.sh`` builds it, later
processes only load it. If the build fails the op warns once and the reference path serves.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor

EXTENSION_NAME = "plgvit_mm_na2d_cpu"
SOURCE = Path(__file__).with_name("csrc") / "na2d_cpu.cpp"
COMPILE_FLAGS = ("-O3", "-march=native", "-fopenmp")
"""``-fopenmp`` makes ``at::parallel_for`` use torch's OpenMP pool (libgomp is torch's own)."""


def _cpu_signature() -> str:
    """Short hash of the CPU model and feature flags (``-march=native`` builds are per CPU)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "\n".join(sorted({ln for ln in lines if ln.startswith(("flags", "model name"))}))
    except OSError:
        text = platform.processor()
    return hashlib.sha1(f"{platform.machine()}\n{text}".encode()).hexdigest()[:10]


def build_directory() -> Path:
    """Where the extension is built: one folder per torch version, Python and CPU."""
    cache = Path(os.environ.get("PLGVIT_MM_CACHE", Path.home() / ".cache" / "plgvit_mm"))
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    torch_version = torch.__version__.split("+")[0]
    return cache / "torch_extensions" / f"{python}-torch{torch_version}-{_cpu_signature()}"


def build_extension() -> None:
    """Compile (if needed) and load the kernel into ``torch.ops.plgvit_mm``; raises on failure."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA" notice
    from torch.utils import cpp_extension

    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), path])  # venv ninja
    try:
        cpp_extension.load(
            name=EXTENSION_NAME,
            sources=[str(SOURCE)],
            extra_cflags=list(COMPILE_FLAGS),
            extra_ldflags=["-fopenmp"],
            build_directory=str(directory),
            is_python_module=False,
            verbose=False,
        )
    finally:
        os.environ["PATH"] = path


@functools.lru_cache(maxsize=1)
def extension_error() -> str | None:
    """None once the kernel is loaded, else why it is unavailable (warned about once)."""
    try:
        build_extension()
    except (RuntimeError, OSError, ImportError) as err:
        reason = str(err).strip().splitlines()
        message = reason[-1] if reason else type(err).__name__
        warnings.warn(
            f"fused CPU neighborhood-attention kernel unavailable ({message}); NAT layers use "
            "the slower reference path. Build it with: python -c 'from plgvit_mm.ops.na2d_cpu "
            "import build_extension; build_extension()'",
            RuntimeWarning,
            stacklevel=2,
        )
        return f"extension build failed: {message}"
    return None


def unsupported_reason(q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool) -> str | None:
    """Why the fused CPU kernel cannot serve a call (``grad``: gradients needed), or None."""
    if q.device.type != "cpu":
        return f"device {q.device.type} (CPU only)"
    if q.dtype not in (torch.float32, torch.float64):
        return f"dtype {q.dtype} (float32/float64 only)"
    if attn_drop > 0.0:
        return "attention dropout"
    if grad:
        return "gradients needed (forward-only kernel)"
    return extension_error()


def na2d_cpu(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    attn_drop: float = 0.0,
) -> Tensor:
    """Neighborhood attention on validated inputs (see :func:`plgvit_mm.ops.na2d`), no dropout.

    q, k, v: (B, H, W, heads, head_dim) CPU float32/float64, any strides; rpb:
    (heads, 2*ky-1, 2*kx-1) or None. Returns a contiguous (B, H, W, heads, head_dim) tensor.
    """
    if attn_drop > 0.0:
        raise ValueError("the fused CPU kernel has no attention dropout")
    return torch.ops.plgvit_mm.na2d_cpu_forward(
        q, k, v, rpb, list(kernel_size), list(dilation), float(scale)
    )
