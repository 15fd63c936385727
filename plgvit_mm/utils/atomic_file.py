"""Crash-safe file writes: a file is either absent, its old version, or its complete new version.

:func:`atomic_write_bytes` writes to a temporary file in the target's directory, flushes it to
disk (``fsync``), renames it over the target (``os.replace``, atomic on POSIX and Windows) and
syncs the directory so the rename itself survives a power loss. Standard library only: every
writer of the project (checkpoints, KITTI files, converters, generated datasets) uses it.
"""

from __future__ import annotations

import os
import os.path as osp
import stat
import tempfile
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def _fsync_directory(directory: str) -> None:
    """Persist a rename in ``directory`` (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode(path: str) -> int:
    """Permission bits for ``path``: those of the file it replaces, else what ``open`` would
    give a new file (0o666 minus the umask; the temporary file itself starts at 0o600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read from /proc on Linux (``os.umask`` can only read it by setting it,
    which would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` so that a crash at any moment leaves either the previous file
    or the complete new one, with the permissions a plain ``open(path, 'wb')`` would leave. The
    temporary file (``.NAME.XXXX.partial`` in the same directory) is removed on error; after a
    SIGKILL it may remain and is safe to delete."""
    path = osp.abspath(os.fspath(path))
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        prefix=f".{osp.basename(path)}.", suffix=PARTIAL_SUFFIX, dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _file_mode(path))
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_directory(directory)


def atomic_write_text(text: str, path: str | Path, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` for text."""
    atomic_write_bytes(text.encode(encoding), path)
