"""Progress lines for validation and test runs of any length.

mmengine's ``LoggerHook`` logs every ``interval`` batches, which is tuned for training: an
evaluation shorter than ``interval`` batches (ImageNet val on 8 GPUs: 49 batches per process)
prints nothing until its metrics. :class:`EvalProgressHook` logs about ``num_lines`` lines per
evaluation, each with the images done, the total and the ETA (the ``eta`` that mmengine's
``IterTimerHook`` keeps)::

    val: 1600/6272 images (25%), eta 0:00:41
"""

from __future__ import annotations

import datetime
import math

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class EvalProgressHook(Hook):
    """Log evaluation progress about ``num_lines`` times per val/test run (see module doc)."""

    priority = "BELOW_NORMAL"  # after IterTimerHook (NORMAL) has updated the ETA

    def __init__(self, num_lines: int = 10) -> None:
        if num_lines < 1:
            raise ValueError(f"EvalProgressHook: num_lines must be >= 1, got {num_lines}")
        self.num_lines = num_lines

    def _log(self, runner, mode: str, batch_idx: int) -> None:
        loader = runner.val_dataloader if mode == "val" else runner.test_dataloader
        batches = len(loader)
        step = max(1, math.ceil(batches / self.num_lines))
        done = batch_idx + 1
        if done % step and done != batches:
            return
        per_batch = (getattr(loader, "batch_size", None) or 1) * get_world_size()
        images = min(done * per_batch, len(loader.dataset))  # all processes together
        eta = runner.message_hub.get_info("eta")
        eta_text = f", eta {datetime.timedelta(seconds=int(eta))}" if eta is not None else ""
        runner.logger.info(
            f"{mode}: {images}/{len(loader.dataset)} images ({100 * done // batches}%){eta_text}"
        )

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._log(runner, "val", batch_idx)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._log(runner, "test", batch_idx)
