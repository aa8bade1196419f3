"""Advisory file locks that say who holds them.

`file_lock` takes an exclusive `flock` on a file, waiting at most `wait` seconds, and
raises `Busy` with a Chinese sentence naming the holder (pid, what it is doing, since
when) when it cannot. The kernel drops the lock when its holder dies, even by SIGKILL,
so a crash never leaves anything locked.

Locks are re-entrant within a process: a flow that holds a year's lock may call library
code (in any of its threads) that takes the same lock. Two processes always exclude each
other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from evaluation.errors import Busy, storage_error

_guard = threading.Lock()
_held: dict[str, list] = {}  # real path -> [file descriptor, depth]


def _holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    """“进程 1234（annual-evaluation，开始于 2024-03-01 09:00:01）” or “另一进程”."""
    pid = holder.get("pid")
    if not pid:
        return "另一进程"
    details = "，".join(str(x) for x in (holder.get("what"), f"开始于 {holder['since']}" if holder.get("since") else None) if x)
    return f"进程 {pid}" + (f"（{details}）" if details else "")


@contextlib.contextmanager
def file_lock(path: Path | str, *, wait: float = 0.0, what: str = "",
              busy: Callable[[dict], str] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing, never through a symlink).

    busy(holder) gives the message of the `Busy` raised after `wait` seconds; holder is
    the dict the holding process wrote (pid, what, since).
    """
    path = Path(path)
    key = os.path.realpath(path)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield
        finally:
            with _guard:
                entry[1] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise (storage_error(exc, path) or exc) from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    raise Busy(busy(holder) if busy else f"{path} 正被{describe_holder(holder)}占用，请稍后再试。") from None
                time.sleep(0.1)
        since = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "what": what, "since": since},
                                     ensure_ascii=False).encode("utf-8"), 0)
        except OSError:
            pass  # the lock holds without the note (e.g. a full disk)
        with _guard:
            _held[key] = [fd, 1]
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
