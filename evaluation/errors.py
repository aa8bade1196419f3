"""Failures a user can cause or fix, each with a sentence (Chinese) and an exit code.

Every command of the CLI ends with one of these codes; `twomountains --help` lists them.
Library code raises a `UserError` subclass for a condition the user can act on (a locked
year, a read-only folder, a full disk, a stray folder, a server that does not answer);
the CLI prints its message, and nothing else, and exits with its code.
"""

from __future__ import annotations

import errno
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    REJECTED = 1  # data rejected or incomplete, a report not delivered
    USAGE = 2  # bad argument, invalid configuration, unreadable file
    BUSY = 3  # the year (or the distribution of a version) is held by another run
    PERMISSION = 4  # no permission to write, or a read-only file system
    DISK_FULL = 5
    STRAY = 6  # the reports folder holds something that is not an issued version
    UNREACHABLE = 7  # a server (SMTP, Prefect API, Dask scheduler, data source) does not answer
    UNCERTAIN = 8  # a delivery whose outcome is unknown; not resent without --resend-uncertain
    INTERRUPTED = 130


# For `--help`: one line per exit code, in the order above.
EXIT_CODES_ZH = {
    ExitCode.OK: "成功（或没有变化）",
    ExitCode.REJECTED: "数据未通过校验或不完整，或有报告未能送达",
    ExitCode.USAGE: "参数、配置或文件有误",
    ExitCode.BUSY: "该年度（或该版本的分发）正被另一运行占用",
    ExitCode.PERMISSION: "没有写入权限或文件系统只读",
    ExitCode.DISK_FULL: "磁盘空间不足",
    ExitCode.STRAY: "报告目录中有不完整的版本文件夹",
    ExitCode.UNREACHABLE: "服务器（邮件、Prefect、Dask 或数据源）无法连接",
    ExitCode.UNCERTAIN: "有邮件发送结果不确定（未重发）",
    ExitCode.INTERRUPTED: "被中断（Ctrl-C 或 SIGTERM）",
}


def exit_codes_help() -> str:
    """The exit-code table for a command's help text (click keeps a paragraph after "\\b" as written)."""
    return "退出码 / exit codes:\n\n\b\n" + "\n".join(f"{int(c):>3}  {text}" for c, text in EXIT_CODES_ZH.items())


class UserError(Exception):
    """A failure the user can fix; `str(error)` is one Chinese sentence, `code` the exit code."""

    code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __reduce__(self):  # survives pickling (Prefect states, Dask)
        return (type(self), (self.message, self.code))


class Busy(UserError):
    code = ExitCode.BUSY


class StrayFolder(UserError):
    code = ExitCode.STRAY


class Unreachable(UserError):
    code = ExitCode.UNREACHABLE


class StorageError(UserError):
    code = ExitCode.PERMISSION


_PERMISSION = {errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT}


def storage_error(exc: OSError, path: Path | str | None = None) -> UserError | None:
    """The sentence for a file-system failure a user can fix, or None for any other OSError."""
    where = str(path or exc.filename or "")
    if exc.errno in _PERMISSION:
        return StorageError(f"没有写入权限：{where}。请检查该目录的权限，或用 --out 指定可写的目录。", ExitCode.PERMISSION)
    if exc.errno == errno.EROFS:
        return StorageError(f"文件系统是只读的：{where}。请用 --out 指定可写的目录。", ExitCode.PERMISSION)
    if exc.errno in _FULL:
        return StorageError(f"磁盘空间不足{'，无法写入 ' + where if where else ''}。请清理磁盘或用 --out 指定其他目录后"
                            "重试；已出具的版本不受影响。", ExitCode.DISK_FULL)
    return None


# SQLite reports a full disk or a read-only folder as its own error, not as an OSError.
_SQLITE_ERRNO = {"database or disk is full": errno.ENOSPC, "attempt to write a readonly database": errno.EROFS,
                 "unable to open database file": errno.EACCES}


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The UserError behind an exception (itself, a cause, or a file-system failure a user can fix)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UserError):
            return exc
        if isinstance(exc, OSError):
            found = storage_error(exc)
            if found is not None:
                return found
        for text, number in _SQLITE_ERRNO.items():
            if text in str(exc) and type(exc).__name__ == "OperationalError":
                return storage_error(OSError(number, text), "台账数据库（ledger）")
        exc = exc.__cause__ or exc.__context__
    return None
