"""Every report's context as issued, kept beside its PDF: the web workbench shows a scorecard from the
very dict WeasyPrint rendered, so the page and the PDF can never disagree.

A version folder holds `contexts.zip`: one JSON member per report, named by its county (or city) code
from the validated configuration. The archive is byte-identical for the same contexts (fixed member
dates, sorted members), and the manifest records its sha256. A report carried over unchanged from an
earlier version is read from that version's archive (the manifest's `editions`), since those are the
bytes its PDF was rendered from.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

FILE = "contexts.zip"
_CODE = re.compile(r"\d{6}")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def archive(contexts: dict[str, dict]) -> bytes:
    """{code: context} -> the zip's bytes (deterministic)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for code in sorted(contexts):
            if not _CODE.fullmatch(code):
                raise ValueError(f"not a county code: {code!r}")
            info = zipfile.ZipInfo(f"{code}.json", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, json.dumps(contexts[code], ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                                         default=str).encode("utf-8"), compresslevel=6)
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(folder: Path, sha256: str) -> bool:
    """Whether the version `folder`'s archive is the one its manifest recorded."""
    try:
        return digest((Path(folder) / FILE).read_bytes()) == sha256
    except OSError:
        return False


def read(folder: Path, code: str) -> dict | None:
    """The context of `code`'s report as issued in the version `folder` (None: the version keeps none,
    e.g. one issued before contexts were kept). Only the member is read, not the whole archive."""
    if not _CODE.fullmatch(code):
        return None
    try:
        with zipfile.ZipFile(Path(folder) / FILE) as zf:
            return json.loads(zf.read(f"{code}.json").decode("utf-8"))
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
