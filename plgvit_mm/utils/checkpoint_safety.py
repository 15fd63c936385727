"""Safe checkpoint loading on torch >= 2.6 (``torch.load(weights_only=True)`` by default).

mmengine 0.10.7 writes numpy scalars/arrays, its message hub (``HistoryBuffer``) and dataset
meta into checkpoints, which torch's weights-only unpickler rejects, so ``resume=True`` breaks.
:func:`install` (called once by ``import plgvit_mm``) fixes this without giving up safety:

- it allow-lists exactly the globals mmengine writes (:data:`MMENGINE_SAFE_GLOBALS`), and
- it replaces mmengine's local-file checkpoint loader by one that always loads with
  ``weights_only=True`` and, for a file that needs any other global, raises
  :class:`UntrustedCheckpointError` naming the explicit opt-in: ``--trust-checkpoint`` on the
  tools, or the environment variable ``PLGVIT_MM_TRUST_CHECKPOINT=1`` for library use. Only then
  is the file fully unpickled (which can run arbitrary code), with a warning.
"""

from __future__ import annotations

import os
import os.path as osp
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

TRUST_ENV_VAR = "PLGVIT_MM_TRUST_CHECKPOINT"


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside the allow-list; loading it could execute code."""


def _numpy_globals() -> list[Any]:
    """Globals numpy arrays and scalars pickle to (numpy 1.x and 2.x spellings)."""
    core = getattr(np, "_core", None) or np.core
    found: list[Any] = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes as instances of per-type classes (np.dtypes.Float64DType, ...)
    dtypes_module = getattr(np, "dtypes", None)
    if dtypes_module is not None:
        found += [
            getattr(dtypes_module, name)
            for name in dir(dtypes_module)
            if name.endswith("DType") and isinstance(getattr(dtypes_module, name), type)
        ]
    return found


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling: the message hub pickles
    ``HistoryBuffer._statistics_methods`` as ``getattr(HistoryBuffer, 'min')`` etc. A general
    ``getattr`` would let a pickle reach any module's globals, so only public methods of
    ``HistoryBuffer`` are served."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and not name.startswith("_") and callable(getattr(obj, name, None)):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f"getattr({obj!r}, {name!r}) is not allowed while loading a checkpoint"
    )


def _mmengine_globals() -> list[Any]:
    """mmengine objects that appear in its runner checkpoints (message hub state)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, (_history_buffer_getattr, "builtins.getattr")]


MMENGINE_SAFE_GLOBALS: list[Any] = []


def trust_requested() -> bool:
    """True when the user explicitly opted in to full unpickling of checkpoints."""
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


def safe_torch_load(filename: str, map_location: Any = None) -> Any:
    """``torch.load`` with the allow-list; untrusted pickles need the explicit opt-in.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UntrustedCheckpointError: the file needs globals outside the allow-list and the user
            has not opted in.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_requested():
            raise UntrustedCheckpointError(
                f"Refusing to load checkpoint '{filename}': it contains Python objects outside "
                "the allow-list of safe types (tensors, containers, numpy arrays/scalars, mmengine "
                "message hub), and unpickling them can execute arbitrary code. If you trust this "
                "file, pass --trust-checkpoint to the tools or set "
                f"{TRUST_ENV_VAR}=1 for library use.\nDetails from torch: {err}"
            ) from err
        warnings.warn(
            f"{TRUST_ENV_VAR} is set: fully unpickling '{filename}' (this can execute code).",
            stacklevel=2,
        )
        return torch.load(filename, map_location=map_location, weights_only=False)


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths, routed through the allow-list."""
    return safe_torch_load(filename, map_location)


_load_from_local.__name__ = "load_from_local"  # mmengine logs name[10:] as the backend name

_installed = False


def install() -> None:
    """Allow-list mmengine's checkpoint types and route mmengine's local loads through
    :func:`safe_torch_load`. Idempotent."""
    global _installed
    if _installed:
        return
    from mmengine.runner.checkpoint import CheckpointLoader

    MMENGINE_SAFE_GLOBALS[:] = _numpy_globals() + _mmengine_globals()
    torch.serialization.add_safe_globals(MMENGINE_SAFE_GLOBALS)
    loader: Callable[[str, Any], Any] = _load_from_local
    CheckpointLoader.register_scheme(prefixes="", loader=loader, force=True)
    _installed = True
