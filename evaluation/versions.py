"""Versioned report folders: reports/<year>/v<N>/ with a manifest.json.

An issued version is never overwritten. A version is built in a hidden temporary
folder beside it and renamed into place, so a reader (or a crash) never sees half
of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from evaluation.fsutil import atomic_write, fsync_dir

_VERSION_DIR = re.compile(r"^v(\d+)$")
MANIFEST = "manifest.json"


def year_dir(out_dir: Path, year: int) -> Path:
    return Path(out_dir) / str(int(year))


def versions(out_dir: Path, year: int) -> list[int]:
    ydir = year_dir(out_dir, year)
    if not ydir.is_dir():
        return []
    found = []
    for child in ydir.iterdir():
        m = _VERSION_DIR.match(child.name)
        if m and not child.is_symlink() and (child / MANIFEST).is_file():
            found.append(int(m.group(1)))
    return sorted(found)


def read_manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def latest(out_dir: Path, year: int) -> tuple[int, dict] | None:
    found = versions(out_dir, year)
    if not found:
        return None
    n = found[-1]
    return n, read_manifest(year_dir(out_dir, year) / f"v{n}")


@contextlib.contextmanager
def year_lock(out_dir: Path, year: int, *, wait: float = 0.0, what: str = ""):
    """Hold the year's lock while recording submissions or deciding on, building and publishing a version.

    Two runs for the same year then never build the same version number at once, and two
    corrections never leave two current submissions. Waits at most `wait` seconds, then
    raises `Busy` naming the holder. Re-entrant within a process; the kernel drops the lock
    when its holder dies (even by SIGKILL), so a crash never leaves the year locked.
    """
    from evaluation.locks import describe_holder, file_lock

    def busy(holder: dict) -> str:
        return f"{int(year)} 年度正被{describe_holder(holder)}使用（评价、更正或登记数据），请等它结束后再试。"

    with file_lock(year_dir(out_dir, year) / ".lock", wait=wait, what=what, busy=busy):
        yield


def clean_partials(out_dir: Path, year: int) -> list[Path]:
    """Remove the half-built versions a crashed run left behind (call under `year_lock`)."""
    ydir = year_dir(out_dir, year)
    removed = []
    for tmp in sorted(ydir.glob(".v*.partial")) if ydir.is_dir() else []:
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


def clear_strays(out_dir: Path, year: int) -> list[Path]:
    """Deal with `v<N>` folders that are not issued versions (no manifest; call under `year_lock`).

    An empty one (someone's mkdir, a copy that never started) is removed and returned; one
    with content is left alone and refused with `StrayFolder`, so nothing of anyone's is lost.
    """
    from evaluation.errors import StrayFolder

    ydir = year_dir(out_dir, year)
    removed = []
    for child in sorted(ydir.iterdir()) if ydir.is_dir() else []:
        if not _VERSION_DIR.match(child.name) or (child / MANIFEST).is_file():
            continue
        if child.is_symlink() or not child.is_dir():
            raise StrayFolder(f"{child} 不是本系统出具的版本（是文件或链接），请移走或删除它后再运行。")
        try:
            child.rmdir()
        except OSError:
            raise StrayFolder(f"{child} 不是完整的版本（没有 manifest.json），但里面有文件。请检查后把它移走或删除，"
                              "然后重新运行；本系统不会删除它。") from None
        removed.append(child)
    return removed


def stage(out_dir: Path, year: int, version: int) -> Path:
    """A fresh temporary folder for building version N (left-overs of a crash are cleared)."""
    ydir = year_dir(out_dir, year)
    ydir.mkdir(parents=True, exist_ok=True)
    tmp = ydir / f".v{version}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def carry(out_dir: Path, year: int, from_version: int, name: str, staged: Path, sha256: str) -> str:
    """Put an unchanged report of issued version `from_version` into the staged one, byte for byte
    (a hard link where the filesystem allows, else a copy).

    The file is checked against the sha256 its manifest recorded, so a damaged or
    tampered file is never carried forward.
    """
    from evaluation.fsutil import child

    source = child(year_dir(out_dir, year) / f"v{from_version}", name)
    if source.is_symlink() or sha256_file(source) != sha256:
        raise ValueError(f"{source} does not match its manifest's sha256; refusing to carry it over")
    try:  # issued files are never modified in place, so versions may share them
        os.link(source, child(staged, name), follow_symlinks=False)
    except OSError:
        atomic_write(child(staged, name), source.read_bytes(), make_parents=False)
    return sha256


def publish(tmp: Path, out_dir: Path, year: int, version: int, manifest: dict) -> Path:
    """Write the manifest into the staged folder, then rename it to v<N> atomically."""
    final = year_dir(out_dir, year) / f"v{version}"
    if final.exists() or final.is_symlink():
        from evaluation.errors import StrayFolder

        raise StrayFolder(f"{final} 已存在，已出具的版本不会被覆盖。请检查它是否是误放的文件夹，移走后重新运行。")
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    atomic_write(tmp / MANIFEST, text.encode("utf-8"))
    os.rename(tmp, final)
    fsync_dir(final.parent)
    return final


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Code that never shapes a report: changing how reports are mailed must not re-issue them.
_NOT_IN_REPORTS = ("evaluation/distribution/", "evaluation/workbench/", "templates/email/")


def code_hash(root: Path | None = None) -> str:
    """A hash of the code, validation suites and templates that shape the output (part of every manifest)."""
    root = root or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    files = sorted(
        p for pattern in ("evaluation/**/*.py", "templates/**/*", "expectations/**/*.json", "expectations/*.yaml")
        for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts
        and not any(p.relative_to(root).as_posix().startswith(skip) for skip in _NOT_IN_REPORTS)
    )
    for p in files:
        digest.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()
