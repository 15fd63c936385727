"""mmengine ``Runner`` whose console shows a pointer to the config instead of its full text.

mmengine logs the whole config (hundreds of lines for a detector) and the hook table before a
run's first own line. :class:`QuietConsoleRunner` keeps both in the work dir's log file (the
config is also dumped to ``WORK_DIR/CONFIG_NAME.py``) and prints one line in their place on the
console. tools/train.py and tools/test.py use it unless ``--print-config`` is given.
"""

from __future__ import annotations

import logging
import os.path as osp

from mmengine.logging import MMLogger
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

FILE_ONLY_PREFIXES = ("Config:\n", "Hooks will be executed in the following order")


class _FileOnlyRecords(logging.Filter):
    """Keeps the config and hook-table records off a console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(FILE_ONLY_PREFIXES)


@RUNNERS.register_module()
class QuietConsoleRunner(Runner):
    """``Runner`` that writes the full config and hook table to the log file only."""

    def build_logger(self, log_level: int | str = "INFO", log_file: str | None = None, **kwargs):
        logger: MMLogger = super().build_logger(log_level, log_file, **kwargs)
        consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]  # not files
        for handler in consoles:
            handler.addFilter(_FileOnlyRecords())
        if consoles:
            name = osp.basename(self.cfg.filename) if self.cfg.filename else f"{self.timestamp}.py"
            logger.info(
                f"Config: {osp.join(self.work_dir, name)} (full text and hook order in the log "
                "file; --print-config shows them here)"
            )
        return logger
