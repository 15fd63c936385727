"""Training-engine parts for reliable runs (registered in mmengine's root registries; torch and
mmengine only):

- :class:`ResumableCheckpointHook` (``HOOKS``): atomic checkpoints, ``last_checkpoint`` written
  after the file is complete, random states saved and restored for exact resumption.
- :class:`CPUAmpOptimWrapper` (``OPTIM_WRAPPERS``): bfloat16 autocast training on CPUs.
- ``'atomic_local'`` file backend (:class:`AtomicLocalBackend`).
- :class:`EvalProgressHook` (``HOOKS``): val/test progress lines (images done, ETA).
- :class:`QuietConsoleRunner` (``RUNNERS``): the full config and hook table go to the log file,
  not the console.
"""

from .atomic_local_backend import AtomicLocalBackend
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .eval_progress_hook import EvalProgressHook
from .quiet_console_runner import QuietConsoleRunner
from .resumable_checkpoint_hook import ResumableCheckpointHook
from .rng_state import capture_rng_state, gather_rng_states, restore_rng_state

__all__ = [
    "AtomicLocalBackend",
    "CPUAmpOptimWrapper",
    "EvalProgressHook",
    "QuietConsoleRunner",
    "ResumableCheckpointHook",
    "capture_rng_state",
    "gather_rng_states",
    "restore_rng_state",
]
