"""The drop folder: which file each bureau is expected to have put there for a year, and what else
is lying there that looks like it (a second file, a renamed one)."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from evaluation.catalogue import Catalogue, Source
from evaluation.ingest.cells import clip_list
from evaluation.ingest.files import LEGACY_FORMATS, TABLE_SUFFIXES


PORTAL_NAME = "报送门户"  # how a portal source's table is named where a file name would be


@dataclass(frozen=True)
class Expected:
    """A table the configuration expects from one bureau for one year."""

    department: str
    kind: str
    path: Path  # folder: the file (or a file in another format found instead); http/sql: a display name
    present: bool  # folder: something is there under the name (a symlink too); remote: assumed until fetched
    problem: str = ""  # folder: present but unusable (e.g. an .xls): why, for the bureau
    others: tuple[str, ...] = ()  # folder: other files that look like this bureau's table, not read


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder))
    except OSError:
        return []


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _alternative(listing: list[str], name: str) -> str | None:
    """A file with the configured name but another extension (an .xls first)."""
    stem = _fold(Path(name).stem)
    found = [n for n in listing if n != name and _fold(Path(n).stem) == stem and Path(n).suffix.lower() in TABLE_SUFFIXES]
    return min(found, key=lambda n: (Path(n).suffix.lower() != ".xls", n), default=None)


def _alternative_problem(alt: str, name: str) -> str:
    suffix = Path(alt).suffix.lower()
    target = "Excel 工作簿（.xlsx）" if Path(name).suffix.lower() in (".xlsx", ".xlsm") else "CSV（逗号分隔）"
    what = f"（{LEGACY_FORMATS[suffix]}文件，无法读取）" if suffix in LEGACY_FORMATS else ""
    return (f"文件夹中没有 {name}，只有 {alt}{what}。请打开它“另存为”{target}，文件名为 {name}，然后重新报送。")


def _same_bureau(file: str, source: Source, department_name: str) -> bool:
    """Whether a file in the year folder looks like this bureau's table: its name starts with the
    configured name's part before the year (统计局_), or, when that part is too short to tell,
    it contains the bureau's name. Lock files (~$…), hidden files and non-table files are not."""
    if file.startswith(("~$", ".")) or Path(file).suffix.lower() not in TABLE_SUFFIXES:
        return False
    prefix = (source.pattern or "").split("{year}", 1)[0]
    if len(prefix.strip(" _-.")) >= 2:
        return _fold(file).startswith(_fold(prefix))
    return _fold(department_name) in _fold(file)


def bureau_from_name(file: str, catalogue: Catalogue) -> str | None:
    """The one bureau whose name (统计局) a file name contains, for a self-check given no --department;
    None when none or several do. A name inside a longer one found too (环境局 in 生态环境局) yields to it."""
    found = {key: _fold(d.name) for key, d in catalogue.departments.items()
             if key in catalogue.sources and _fold(d.name) in _fold(file)}
    found = {key: text for key, text in found.items() if not any(text != other and text in other for other in found.values())}
    return next(iter(found)) if len(found) == 1 else None


def discover(data_dir: Path | str, year: int, catalogue: Catalogue) -> list[Expected]:
    """List each configured bureau's table for the year, whether or not it is there.

    A folder source's file counts as present when anything is there under its name (a symlink
    is present, and refused when read). When it is missing but the same name with another
    extension is there (an .xls), that file is present with a `problem`. Other files that look
    like the bureau's (see `_same_bureau`) are listed in `others`: they are never read.
    """
    ydir = Path(data_dir) / str(int(year))
    listing = _listing(ydir)
    configured = {s.file_name(year) for s in catalogue.sources.values() if s.kind == "folder"}
    found = []
    for dept, source in sorted(catalogue.sources.items()):
        if source.kind == "portal":  # the ledger holds it: present when the bureau has submitted (see receive_from_ledger)
            found.append(Expected(dept, "portal", Path(PORTAL_NAME), True))
            continue
        if source.kind != "folder":
            found.append(Expected(dept, source.kind, Path(f"{dept}_{year}.{source.format if source.kind == 'http' else 'csv'}"), True))
            continue
        name = source.file_name(year)
        path, present, problem = ydir / name, _lexists(ydir / name), ""
        if not present and (alt := _alternative(listing, name)):
            path, present, problem = ydir / alt, True, _alternative_problem(alt, name)
        dept_name = catalogue.departments[dept].name if dept in catalogue.departments else dept
        others = tuple(n for n in listing if n not in configured and n != path.name and _same_bureau(n, source, dept_name))
        found.append(Expected(dept, "folder", path, present, problem, others))
    return found


def others_notice(expected: Expected, department_name: str, year: int) -> str:
    """What to tell a bureau whose year folder holds more files that look like its table."""
    if not expected.others:
        return ""
    return (f"文件夹中还有 {clip_list(expected.others, '个文件')}，看来也是{department_name} {year} 年的数据，但未读取："
            f"每个部门每年只读取 {expected.path.name}。如需更正已报送的数据，请用 twomountains correct "
            f"--department {expected.department} --year {year} --reason 更正原因 更正后的文件 报送。")
