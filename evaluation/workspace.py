"""The workspace: where a command reads bureau tables and writes reports when it is not told.

Found, in this order:
1. `TWOMOUNTAINS_HOME`: that folder (its `twomountains.yaml`, if any, is read);
2. the nearest `twomountains.yaml` in the current folder or a folder above it;
3. otherwise the current folder.

Within it: `data/` (the drop folder, with one sub-folder per year), `reports/` (versions, the ledger, the
outbox), `config/` when it holds an `indicators.yaml` (else the bundled catalogue), and the ledger in
`reports/ledger/` unless `TWOMOUNTAINS_LEDGER_URL` names a database. `twomountains.yaml` may move any of
them (paths relative to its folder):

    data: data/sample
    reports: reports
    config: config
    ledger: postgresql+psycopg://evaluation@db/ledger

The checkout has one (data: data/sample), so `make demo` and the README's commands work from it; a command
typed in another folder writes there, never into the checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evaluation.errors import ExitCode, UserError

LEDGER_ENV = "TWOMOUNTAINS_LEDGER_URL"  # a ledger database URL for every command (else the SQLite file)

FILE = "twomountains.yaml"
ENV = "TWOMOUNTAINS_HOME"
KEYS = ("data", "reports", "config", "ledger")


@dataclass(frozen=True)
class Workspace:
    root: Path
    data: Path
    reports: Path
    config: Path | None  # None: the bundled catalogue (config/ of the checkout)
    ledger: str | None  # None: TWOMOUNTAINS_LEDGER_URL, else <reports>/ledger/ledger.sqlite
    found_by: str  # "TWOMOUNTAINS_HOME", the twomountains.yaml it read, or "当前目录"

    def describe(self) -> str:
        return f"工作区 {self.root}（{self.found_by}）"


def _settings(path: Path) -> dict:
    from evaluation.yamlsafe import load_yaml

    try:
        settings = load_yaml(path.read_bytes()) or {}
    except OSError as exc:
        raise UserError(f"无法读取工作区配置 {path}：{exc.strerror or exc}", ExitCode.USAGE) from None
    except Exception as exc:  # noqa: BLE001 - YAML errors of every kind, in one sentence
        raise UserError(f"工作区配置 {path} 不是有效的 YAML：{str(exc).splitlines()[0]}", ExitCode.USAGE) from None
    if not isinstance(settings, dict):
        raise UserError(f"工作区配置 {path} 应为“键: 值”的形式（{'、'.join(KEYS)}）", ExitCode.USAGE)
    unknown = sorted(str(k) for k in settings if k not in KEYS)
    if unknown:
        raise UserError(f"工作区配置 {path} 中有未知的设置：{'、'.join(unknown)}（可用：{'、'.join(KEYS)}）",
                        ExitCode.USAGE)
    bad = [k for k, v in settings.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise UserError(f"工作区配置 {path} 中 {'、'.join(bad)} 应为文字（路径或数据库地址）", ExitCode.USAGE)
    return settings


def find(cwd: Path | None = None) -> Workspace:
    """The workspace for a command started in `cwd` (default: the current folder)."""
    here = Path(cwd or Path.cwd()).resolve()
    home = os.environ.get(ENV, "").strip()
    if home:
        root, found_by = Path(home).expanduser().resolve(), ENV
        file = root / FILE
        settings = _settings(file) if file.is_file() else {}
    else:
        file = next((folder / FILE for folder in (here, *here.parents) if (folder / FILE).is_file()), None)
        if file is not None:
            root, found_by, settings = file.parent, str(file), _settings(file)
        else:
            root, found_by, settings = here, "当前目录", {}

    def path(key: str, default: str) -> Path:
        return (root / (settings.get(key) or default)).resolve()

    config = path("config", "config") if settings.get("config") else None
    if config is None and (root / "config" / "indicators.yaml").is_file():
        config = (root / "config").resolve()
    return Workspace(root=root, data=path("data", "data"), reports=path("reports", "reports"), config=config,
                     ledger=settings.get("ledger") or None, found_by=found_by)
