"""Small file-system helpers: writes that never leave a partial file behind."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path


def atomic_write(out_path: Path, data: bytes, *, make_parents: bool = True) -> None:
    """Write ``data`` to ``out_path`` so that no partial file ever exists there.

    The data goes to a new temporary file (never through an existing file or symlink) that is
    renamed over ``out_path``: an existing symlink there is replaced, its target untouched.
    make_parents=False: the folder must exist (a staging folder that was cleared is not recreated).
    """
    out_path = Path(out_path)
    directory = out_path.parent
    if make_parents:
        directory.mkdir(parents=True, exist_ok=True)
    tmp_path = directory / f".{out_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, out_path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.filename is None:  # say which file could not be written (a full disk names none)
            raise OSError(exc.errno, exc.strerror, str(out_path)) from exc
        raise
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


_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def child(folder: Path, name: str) -> Path:
    """``folder / name`` for a plain file name (no separator, not hidden, not ``..``); ValueError otherwise."""
    if not name or name.startswith(".") or _UNSAFE_NAME.search(name) or len(name.encode("utf-8")) > 255:
        raise ValueError(f"not a plain file name: {name!r}")
    return Path(folder) / name
