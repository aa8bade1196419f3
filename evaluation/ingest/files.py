"""Receiving a bureau's bytes: from its configured source (drop folder, HTTP, SQL) or a file handed in;
only regular files are read, within the source's byte limit, and every refusal is a sentence."""

from __future__ import annotations

import errno
import os
import stat

from pathlib import Path

from evaluation.catalogue import Source

from evaluation.ingest.model import IngestError, Received


def receive(source: Source, year: int, data_dir: Path | str | None = None, *, retries: int | None = None) -> Received:
    """Fetch a bureau's table for the year from its configured source (no parsing).

    retries: for remote sources, how often to retry a transient failure here (default: the
    source's `retries`). An orchestrator that retries by itself passes 0 and gets a
    `TransientSourceError` to act on.
    """
    if source.kind == "folder":
        path = Path(data_dir or ".") / str(int(year)) / source.file_name(year)
        return receive_file(path, source, year)
    if source.kind == "portal":  # kept in the ledger: see evaluation.pipeline.receive_from_ledger
        raise MissingFileError("该部门的数据通过报送门户提交，从报送台账读取。")
    if source.kind == "http":
        from evaluation.ingest.remote import fetch_http

        return fetch_http(source, year, retries=retries)
    from evaluation.ingest.remote import fetch_sql

    return fetch_sql(source, year, retries=retries)


class MissingFileError(IngestError):
    """The configured file is not there: the table is missing, not unreadable."""


# Spreadsheet formats that are not xlsx: a bureau must save the table again.
LEGACY_FORMATS = {".xls": "旧版 Excel（.xls）", ".et": "WPS 表格（.et）", ".xlsb": "Excel 二进制工作簿（.xlsb）",
                  ".ods": "OpenDocument 表格（.ods）", ".numbers": "Numbers 表格（.numbers）"}
TABLE_SUFFIXES = {".xlsx", ".xlsm", ".csv", ".txt", ".json", *LEGACY_FORMATS}


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(n, 1) / 1024:.0f} KB"


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "文件夹"
    if stat.S_ISFIFO(mode):
        return "管道（FIFO）"
    if stat.S_ISSOCK(mode):
        return "套接字"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "设备文件"
    return "特殊文件"


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "没有读取权限"
    if exc.errno == errno.EISDIR:
        return "这是文件夹"
    return f"系统错误（{errno.errorcode.get(exc.errno or 0, exc.errno)}）"


def legacy_message(name: str) -> str | None:
    """What to say about a spreadsheet saved in a format other than xlsx (None for other files)."""
    suffix = Path(name).suffix.lower()
    if suffix not in LEGACY_FORMATS:
        return None
    return (f"{name} 是{LEGACY_FORMATS[suffix]}文件，无法读取；请在 Excel 或 WPS 中“另存为”"
            "Excel 工作簿（.xlsx）后再提交。")


def receive_file(path: Path | str, source: Source, year: int) -> Received:
    """Read a bureau's file: a regular file only (never a symlink, device or FIFO), at most `max_bytes`."""
    path = Path(path)
    name = path.name
    limit = source.limits.max_bytes
    link = f"{name} 是符号链接（快捷方式），不是普通文件，拒绝读取；请把数据文件本身放入文件夹。"
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            raise IngestError(link)
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{name} 不是普通文件（是{_kind_of(info.st_mode)}），拒绝读取。")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingFileError(f"找不到文件 {name}。") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IngestError(link) from None
        raise IngestError(f"无法读取文件 {name}：{_os_reason(exc)}") from None
    try:
        info = os.fstat(fd)  # what was opened, not what the name pointed to a moment ago
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{name} 不是普通文件（是{_kind_of(info.st_mode)}），拒绝读取。")
        too_big = f"文件 {name} 超过 {_size(limit)} 上限，请只提交本部门的填报表。"
        if info.st_size > limit:
            raise IngestError(f"文件 {name} 有 {_size(info.st_size)}，超过 {_size(limit)} 上限，请只提交本部门的填报表。")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise IngestError(too_big)
        data = b"".join(chunks)
    except OSError as exc:
        raise IngestError(f"无法读取文件 {name}：{_os_reason(exc)}") from None
    finally:
        os.close(fd)
    legacy = legacy_message(name)
    if legacy:
        raise IngestError(legacy)
    fmt = source.format
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        fmt = "xlsx"
    elif path.suffix.lower() == ".csv":
        fmt = "csv"
    return Received(source.department, int(year), "folder", str(path), path.name, data, fmt)


# What a portal upload may be, by the suffix of the name the browser sent.
UPLOAD_FORMATS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".txt": "csv"}


def upload_name(name: str) -> str:
    """A file name a browser sent, made fit to show and keep: its last path part, without control
    characters, at most 120 characters. It is never used as a path."""
    import unicodedata

    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in last if unicodedata.category(c)[0] != "C").strip().lstrip(".")
    if len(clean) > 120:
        stem, dot, suffix = clean.rpartition(".")
        clean = (stem[:110] + "…." + suffix) if dot and len(suffix) <= 8 else clean[:120]
    return clean or "未命名文件"


def receive_bytes(data: bytes, name: str, source: Source, year: int, *, kind: str = "portal",
                  location: str = "") -> Received:
    """A table handed in as bytes (a portal upload). `name` (see `upload_name`) tells the format and is
    shown to people; nothing is read from or written to a path built from it."""
    limit = source.limits.max_bytes
    if not data:
        raise IngestError(f"《{name}》是空文件（0 字节），请选择填好数据的填报表。")
    if len(data) > limit:
        raise IngestError(f"《{name}》有 {_size(len(data))}，超过 {_size(limit)} 上限，请只提交本部门的填报表。")
    legacy = legacy_message(name)
    if legacy:
        raise IngestError(legacy)
    fmt = UPLOAD_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise IngestError(f"《{name}》不是 Excel 工作簿（.xlsx）或 CSV 文件，无法读取；请上传下载的填报表（.xlsx）"
                          "或按原格式导出的 CSV 文件。")
    if fmt == "xlsx" and not data.startswith(b"PK"):
        raise IngestError(f"《{name}》的扩展名是 {Path(name).suffix}，但内容不是 Excel 工作簿；"
                          "请在 Excel 或 WPS 中“另存为”Excel 工作簿（.xlsx）后再上传。")
    return Received(source.department, int(year), kind, location or "portal", name, data, fmt)
