"""Rendered PDFs kept by what they were rendered from, so a run never renders the same report twice.

A report's key is the hash of everything that shapes its bytes: the whole context (edition
included), its attachments, the code hash (templates, styles, code) and WeasyPrint's version.
Rendering is deterministic, so a PDF found under its key is the PDF a render would make.

What it buys: a national run interrupted after rendering 2,000 of 2,845 reports (a kill, a
full disk, a power cut) renders only the other 845 when it is run again; a run repeated with
`refresh_cache` (or from a fresh task cache) takes the PDFs it already has.

Entries are hard links to the issued files where the filesystem allows (no second copy on
disk), else copies. Each entry's name carries its sha256, and a restored file is checked
against it, so a damaged entry is rendered again rather than issued.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from evaluation.fsutil import atomic_write, child
from evaluation.versions import sha256_file

_HEX = set("0123456789abcdef")


def _weasyprint_version() -> str:
    try:
        return metadata.version("weasyprint")
    except metadata.PackageNotFoundError:  # pragma: no cover - installed with the project
        return "?"


def input_digest(context: dict, attachments):
    """sha256 over a report's context and attachments (also the PDF's /ID, see reporting.pdf)."""
    digest = hashlib.sha256(json.dumps(context, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                                       default=str).encode("utf-8"))
    for filename, data, description in attachments:
        digest.update(b"\0attachment\0" + filename.encode("utf-8") + b"\0" + (description or "").encode("utf-8")
                      + b"\0" + hashlib.sha256(data).digest())
    return digest


def render_key(context: dict, attachments, code: str) -> str:
    """The hash of everything a report's bytes depend on."""
    return hashlib.sha256(b"render\0" + code.encode() + b"\0" + _weasyprint_version().encode() + b"\0"
                          + input_digest(context, attachments).digest()).hexdigest()


class RenderCache:
    """A folder of rendered PDFs named `<key>-<sha256>.pdf`; `folder=None` keeps nothing."""

    def __init__(self, folder: Path | None, code: str):
        self.folder = Path(folder) if folder is not None else None
        self.code = code
        self.restored = 0

    def resolved(self) -> "RenderCache":
        """The same cache named by an absolute path (for a worker with another working directory)."""
        if self.folder is None or self.folder.is_absolute():
            return self
        return RenderCache(self.folder.resolve(), self.code)

    def empty(self) -> bool:
        """Whether no PDF is kept here yet."""
        return self.folder is None or not self.folder.is_dir() or not any(self.folder.glob("*.pdf"))

    def key(self, report) -> str:
        return render_key(report.context, report.attachments, self.code)

    def restore(self, report, staged: Path) -> str | None:
        """Put the PDF rendered earlier for `report` into `staged`; its sha256, or None when there is none."""
        if self.folder is None or not self.folder.is_dir():
            return None
        key = self.key(report)
        for entry in self.folder.glob(f"{key}-*.pdf"):
            digest = entry.name[len(key) + 1:-4]
            if len(digest) != 64 or not set(digest) <= _HEX or entry.is_symlink():
                continue
            if sha256_file(entry) != digest:  # damaged: render again, and drop the entry
                entry.unlink(missing_ok=True)
                continue
            target = child(staged, report.file_name)
            if not self.link(entry, target):
                atomic_write(target, entry.read_bytes(), make_parents=False)
            self.restored += 1
            return digest
        return None

    def keep(self, report, data: bytes, digest: str) -> Path | None:
        """Keep a PDF just rendered; returns its entry (None when the cache cannot be written: no error)."""
        if self.folder is None:
            return None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            entry = self.folder / f"{self.key(report)}-{digest}.pdf"
            if not entry.exists():
                atomic_write(entry, data)
            return entry
        except OSError:
            return None

    @staticmethod
    def link(entry: Path, target: Path) -> bool:
        """Put a kept PDF at `target` as a hard link (no second copy on disk); False where links fail."""
        tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
        try:
            os.link(entry, tmp, follow_symlinks=False)
            os.replace(tmp, target)
            return True
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
