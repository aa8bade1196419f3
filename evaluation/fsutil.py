"""Small file-system helpers: writes that never leave a partial file behind."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write(out_path: Path, data: bytes) -> None:
    """Write ``data`` to ``out_path`` so that no partial file ever exists there."""
    out_path = Path(out_path)
    directory = out_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    tmp_path = directory / f".{out_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, out_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Persist a rename inside `directory` (best effort where directories cannot be opened)."""
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
