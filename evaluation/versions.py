"""Versioned report folders: reports/<year>/v<N>/ with a manifest.json.

An issued version is never overwritten. A version is built in a hidden temporary
folder beside it and renamed into place, so a reader (or a crash) never sees half
of one.
"""

from __future__ import annotations

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
        if m and (child / MANIFEST).is_file():
            found.append(int(m.group(1)))
    return sorted(found)


def latest(out_dir: Path, year: int) -> tuple[int, dict] | None:
    found = versions(out_dir, year)
    if not found:
        return None
    n = found[-1]
    manifest = json.loads((year_dir(out_dir, year) / f"v{n}" / MANIFEST).read_text(encoding="utf-8"))
    return n, manifest


def stage(out_dir: Path, year: int, version: int) -> Path:
    """A fresh temporary folder for building version N (left-overs of a crash are cleared)."""
    ydir = year_dir(out_dir, year)
    ydir.mkdir(parents=True, exist_ok=True)
    tmp = ydir / f".v{version}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def publish(tmp: Path, out_dir: Path, year: int, version: int, manifest: dict) -> Path:
    """Write the manifest into the staged folder, then rename it to v<N> atomically."""
    final = year_dir(out_dir, year) / f"v{version}"
    if final.exists():
        raise FileExistsError(f"{final} already exists; an issued version is never overwritten")
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


def code_hash(root: Path | None = None) -> str:
    """A hash of the code, validation suites and templates that shape the output (part of every manifest)."""
    root = root or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    files = sorted(
        p for pattern in ("evaluation/**/*.py", "templates/**/*", "expectations/**/*.json", "expectations/*.yaml")
        for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts
    )
    for p in files:
        digest.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()
