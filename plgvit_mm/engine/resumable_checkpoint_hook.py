"""``CheckpointHook`` for crash-safe checkpoints and exact resumption.

Differences from mmengine's ``CheckpointHook`` (all other arguments and behaviour unchanged):

1. Atomic files: checkpoints go through the ``'atomic_local'`` file backend (temporary file,
   ``fsync``, ``os.replace``), so a checkpoint file is never partial.
2. Safe order: the new checkpoint is complete before ``work_dir/last_checkpoint`` points to it
   (itself replaced atomically), and checkpoints beyond ``max_keep_ckpts`` are deleted only
   after that (mmengine deletes first, so a crash while saving can leave no checkpoint).
3. Random states: every checkpoint stores each rank's python/numpy/torch(/CUDA) generator
   states (``checkpoint['meta']['rng_states']``, one entry per rank). On resume they are
   restored right before the first new batch is fetched, i.e. after mmengine's
   ``IterBasedTrainLoop`` has replayed the already-trained batches (that replay runs the data
   pipeline and would otherwise advance the generators a second time).
4. Validation leaves the training generators untouched (state saved at ``before_val``,
   restored at ``after_val``), so a run that validates after a checkpoint and a run resumed
   from that checkpoint continue with the same random numbers.

With a fixed ``randomness.seed`` the resumed run then reproduces the uninterrupted one.
"""

from __future__ import annotations

import os.path as osp
import warnings
from collections.abc import Iterator
from typing import Any

from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.fileio.io import _parse_uri_prefix
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..utils.atomic_file import atomic_write_text
from .rng_state import RNGState, capture_rng_state, gather_rng_states, restore_rng_state

RNG_META_KEY = "rng_states"


class _RestoreBeforeFetch:
    """Wraps a train-loop iterator: passes ``num_skipped`` batches through, then restores
    ``state`` and puts the original iterator back before fetching the next batch."""

    def __init__(self, loop: Any, num_skipped: int, state: RNGState) -> None:
        self._loop = loop
        self._iterator: Iterator = loop.dataloader_iterator
        self._remaining = num_skipped
        self._state = state

    def __iter__(self) -> _RestoreBeforeFetch:
        return self

    def __next__(self) -> Any:
        if self._remaining == 0:
            restore_rng_state(self._state)
            self._loop.dataloader_iterator = self._iterator
        self._remaining -= 1
        return next(self._iterator)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """mmengine ``CheckpointHook`` with atomic, correctly ordered saves and saved/restored
    random states (see the module docstring). Accepts the same arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        out_dir_is_local = self.out_dir is None or _parse_uri_prefix(str(self.out_dir)) == ""
        if self.backend_args is None and self.file_client_args is None and out_dir_is_local:
            self.backend_args = dict(backend="atomic_local")
        self._resumed_state: RNGState | None = None
        self._state_before_val: RNGState | None = None

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: dict) -> None:
        """Save ``filename_tmpl.format(step)``, then point ``last_checkpoint`` at it, then
        delete the checkpoints that fell out of ``max_keep_ckpts``."""
        outdated: list[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        meta = dict(meta, **{RNG_META_KEY: gather_rng_states()})  # collective: all ranks
        runner.save_checkpoint(  # writes on the main process only
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        atomic_write_text(self.last_ckpt, osp.join(runner.work_dir, "last_checkpoint"))
        for old_step in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints are directories
                self.file_backend.rmtree(path)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Keep this rank's saved random state for :meth:`before_train` (resume only)."""
        states = checkpoint.get("meta", {}).get(RNG_META_KEY)
        if not getattr(runner, "_resume", False) or states is None:
            return
        if len(states) != get_world_size():
            warnings.warn(
                f"The checkpoint holds random states of {len(states)} processes but this run "
                f"has {get_world_size()}; every process continues with rank 0's state, so the "
                "run will not repeat the uninterrupted one exactly.",
                stacklevel=2,
            )
            self._resumed_state = states[0]
        else:
            self._resumed_state = states[get_rank()]

    def before_train(self, runner: Any) -> None:
        """Schedule the restore of the resumed random state before the first new batch."""
        super().before_train(runner)
        if self._resumed_state is None:
            return
        loop = runner.train_loop
        if hasattr(loop, "dataloader_iterator") and loop.iter > 0:  # IterBasedTrainLoop replay
            loop.dataloader_iterator = _RestoreBeforeFetch(loop, loop.iter, self._resumed_state)
        else:  # EpochBasedTrainLoop resumes at an epoch boundary, without replay
            restore_rng_state(self._resumed_state)
        self._resumed_state = None

    def before_val(self, runner: Any) -> None:
        self._state_before_val = capture_rng_state()

    def after_val(self, runner: Any) -> None:
        if self._state_before_val is not None:
            restore_rng_state(self._state_before_val)
            self._state_before_val = None
