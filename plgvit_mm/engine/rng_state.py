"""Capture and restore the random number generator states a training process consumes.

A state is a dict of plain types that torch's ``weights_only`` loader accepts (tuples of ints,
numpy arrays, tensors): ``python`` (``random.getstate()``), ``numpy``
(``np.random.get_state()``), ``torch`` (CPU generator, uint8 tensor) and ``cuda`` (one uint8
tensor per visible GPU, only when CUDA is initialised).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size

RNGState = dict[str, Any]


def capture_rng_state() -> RNGState:
    """The current python, numpy, torch (and CUDA) generator states of this process."""
    state: RNGState = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: RNGState) -> None:
    """Set every generator named in ``state`` (from :func:`capture_rng_state`).

    Raises:
        ValueError: ``state`` is not a dict with at least the python, numpy and torch entries.
    """
    missing = {"python", "numpy", "torch"} - set(state if isinstance(state, dict) else ())
    if missing:
        raise ValueError(
            f"RNG state misses {sorted(missing)}; expected a dict from "
            "capture_rng_state() with keys python, numpy, torch[, cuda]"
        )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


def gather_rng_states() -> list[RNGState]:
    """Every rank's :func:`capture_rng_state`, indexed by rank (a collective: call on all
    ranks; without a process group it is just ``[capture_rng_state()]``)."""
    state = capture_rng_state()
    if get_world_size() == 1:
        return [state]
    return all_gather_object(state)
