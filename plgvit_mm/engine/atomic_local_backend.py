"""mmengine file backend with crash-safe writes.

:class:`AtomicLocalBackend` is mmengine's ``LocalBackend`` whose writes go through
:func:`plgvit_mm.utils.atomic_file.atomic_write_bytes`; it is registered as the file backend
``'atomic_local'`` (select it with ``backend_args=dict(backend='atomic_local')``), so
``mmengine.runner.save_checkpoint`` writes checkpoints atomically through it.
"""

from __future__ import annotations

from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend

from plgvit_mm.utils.atomic_file import atomic_write_bytes, atomic_write_text

__all__ = ["AtomicLocalBackend"]


@register_backend("atomic_local")
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put``/``put_text`` replace the target file atomically."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = "utf-8") -> None:
        atomic_write_text(obj, filepath, encoding)
