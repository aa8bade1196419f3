"""The data gate: a Great Expectations 1.x suite per bureau, run on each submission.

Suites live in a GX file context under `expectations/gx/` (committed JSON, readable
by any GX 1.x user). They are generated from the catalogue (required columns,
non-null, known counties (on derived columns), one row per county, ranges and units, a year-on-year jump
check per variable) and merged with the hand-written rules of `expectations/rules.yaml`
(cross-field checks). `make suites` regenerates them; a test keeps them in sync.

Each expectation carries GX's own severity: `critical` rejects the whole
submission, `warning` lets it through and is printed on the county's scorecard.
`meta.rule_zh` / `meta.expected_zh` are the rule and the expected value in plain
Chinese for the bureau.

At run time the suites are loaded into an ephemeral context (nothing written into
the repository); when a Data Docs folder is given, each validation goes through a
GX Checkpoint that updates the Data Docs site there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.yamlsafe import load_yaml
from evaluation.fsutil import atomic_write
from evaluation.ingest import Submission, clip, clip_list, stated_year

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
SUITES_DIR = EXPECTATIONS_DIR / "gx" / "expectations"
RULES_FILE = EXPECTATIONS_DIR / "rules.yaml"
CHANGE = "__change_pct"  # suffix of the derived year-on-year change columns
PREVIOUS = "__previous"
# Derived county columns. The county list is checked on these rather than with a value_set of
# every county code: GX re-serialises an expectation's kwargs many times per validation, so a
# value_set of 2,844 codes made each table cost about 1 s at national scale (0.2 s this way).
KNOWN = "county_code__known"  # True where the county is one of the catalogue's
LISTED = "county_code__listed"  # the code where known, else empty (its distinct count must be all counties)
COUNTY_COLUMNS = ("county_code", KNOWN, LISTED)
# Findings about the delivery rather than the figures: kept in the validation report (and the
# ledger), never put on a scorecard, so they neither clutter nor re-issue the counties' reports.
NOT_FOR_DOCUMENTS = frozenset({"extra_column", "other_file"})
SAME_AS_PREVIOUS = "全部数值与上年已采用数据完全相同，疑似误报上年数据"
_ID_NAMESPACE = uuid.UUID("6f1d1c3e-7f0e-4d4a-9a39-2c6d2b0a2a51")

_lock = threading.Lock()
_travelled: dict = {}  # docs folder -> the gate unpickled first in this process


# -- suite generation ---------------------------------------------------------


def suite_name(department: str) -> str:
    return f"{department}_submission"


def _exp(type_: str, kwargs: dict, rule_zh: str, expected_zh: str, severity: str = "critical") -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"rule_zh": rule_zh, "expected_zh": expected_zh},
            "severity": severity}


def load_rules(path: Path = RULES_FILE) -> dict[str, list[dict]]:
    if not path.is_file():
        return {}
    return load_yaml(path.read_text(encoding="utf-8")) or {}


def build_suite_dict(catalogue: Catalogue, department: str, rules: dict[str, list[dict]] | None = None) -> dict:
    """The expectation suite for one bureau's table, as GX-format plain data (deterministic ids)."""
    n = len(catalogue.counties)
    city = catalogue.city.name
    source = catalogue.sources[department]
    headers = {m.var: h for h, m in source.columns.items()}
    exps = [
        _exp("expect_column_values_to_not_be_null", {"column": "county_code"},
             f"县区列“{source.county_column}”不能为空", "县区代码或名称"),
        _exp("expect_column_values_to_be_in_set", {"column": KNOWN, "value_set": [True]},
             f"县区必须是{city}所辖县区（代码、全称或简称）", f"{city}所辖 {n} 个县区之一"),
        _exp("expect_column_values_to_be_unique", {"column": "county_code"},
             "每个县区只能填报一行", "每个县区一行"),
        _exp("expect_column_unique_value_count_to_be_between", {"column": LISTED, "min_value": n, "max_value": n},
             "必须包含全部县区", f"全部 {n} 个县区"),
    ]
    for var in catalogue.department_variables(department):
        header = headers[var.id]
        low, high = var.range
        exps += [
            _exp("expect_column_to_exist", {"column": var.id}, f"必须有“{header}”列", f"列“{header}”"),
            _exp("expect_column_values_to_not_be_null", {"column": var.id}, "必须填写数值", "数值"),
            _exp("expect_column_values_to_be_between", {"column": var.id, "min_value": low, "max_value": high},
                 f"数值超出合理范围（{low:g} 至 {high:g} {var.unit}）", f"{low:g} ～ {high:g} {var.unit}"),
        ]
        if var.max_change is not None:
            exps.append(_exp(
                "expect_column_values_to_be_between",
                {"column": var.id + CHANGE, "min_value": -var.max_change, "max_value": var.max_change},
                f"较上年已采用数据变化超过 {var.max_change:g}%，请核实", f"较上年变化不超过 ±{var.max_change:g}%",
                severity="warning",
            ))
    for rule in (rules if rules is not None else load_rules()).get(department, []):
        exps.append({"type": rule["type"], "kwargs": dict(rule["kwargs"]), "meta": dict(rule.get("meta", {})),
                     "severity": rule.get("severity", "critical")})
    name = suite_name(department)
    for i, exp in enumerate(exps):
        exp["id"] = str(uuid.uuid5(_ID_NAMESPACE, f"{name}:{i}:{exp['type']}:{json.dumps(exp['kwargs'], sort_keys=True)}"))
    return {
        "name": name,
        "id": str(uuid.uuid5(_ID_NAMESPACE, name)),
        "meta": {"department": department, "generated_from": "config/*.yaml + expectations/rules.yaml"},
        "expectations": exps,
    }


def write_suites(catalogue: Catalogue, project_dir: Path = EXPECTATIONS_DIR) -> list[Path]:
    """Write every bureau's suite into the GX file context under `project_dir/gx/`."""
    import great_expectations as gx

    ctx = gx.get_context(mode="file", project_root_dir=str(project_dir))
    rules = load_rules(project_dir / "rules.yaml")
    paths = []
    for dept in sorted(catalogue.sources):
        spec = build_suite_dict(catalogue, dept, rules)
        try:
            ctx.suites.delete(spec["name"])
        except Exception:  # not there yet
            pass
        ctx.suites.add(gx.ExpectationSuite(**spec))
        path = project_dir / "gx" / "expectations" / f"{spec['name']}.json"
        # GX escapes non-ASCII; rewrite the same JSON readably so reviewers can read the Chinese rules
        doc = json.loads(path.read_text(encoding="utf-8"))
        # GX assigns fresh random ids on add; keep ours so regenerating changes nothing
        doc["id"] = spec["id"]
        for written, wanted in zip(doc["expectations"], spec["expectations"], strict=True):
            written["id"] = wanted["id"]
        atomic_write(path, (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        paths.append(path)
    return paths


def suite_for(catalogue: Catalogue, department: str, suites_dir: Path = SUITES_DIR) -> dict:
    """The suite to run: the committed one in `expectations/` when it is what this catalogue
    generates (the repo's own config), else one built from the loaded catalogue (another
    `--config`, e.g. a province's county list), so a different config is never checked
    against Longnan's county list."""
    if (suites_dir / f"{suite_name(department)}.json").is_file() and not suite_drift(catalogue, department, suites_dir):
        return load_suite_dict(department, suites_dir)
    return build_suite_dict(catalogue, department)


def load_suite_dict(department: str, suites_dir: Path = SUITES_DIR) -> dict:
    path = suites_dir / f"{suite_name(department)}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no expectation suite for {department}: run `make suites` to generate {path}") from None


# -- running ------------------------------------------------------------------


@dataclass
class Finding:
    """One failed expectation, in words a bureau can act on."""

    severity: str  # "error" or "warning"
    rule: str  # plain Chinese
    column: str  # the header as the bureau wrote it
    rows: list[int] = field(default_factory=list)  # spreadsheet row numbers
    found: list[str] = field(default_factory=list)
    expectation: str = ""
    expected: str = ""

    def describe(self) -> str:
        where = f"第 {'、'.join(str(r) for r in self.rows[:10])} 行" if self.rows else "整表"
        if len(self.rows) > 10:
            where += f" 等 {len(self.rows)} 行"
        found = f"；实际值：{'、'.join(self.found[:10])}" if self.found else ""
        expected = f"；应为：{self.expected}" if self.expected else ""
        label = "错误" if self.severity == "error" else "警告"
        column = f"，列“{self.column}”" if self.column else ""
        return f"[{label}] {where}{column}：{self.rule}{found}{expected}"


@dataclass
class ValidationReport:
    department: str
    department_name: str
    file: str
    sheet: str
    submission_id: str
    findings: list[Finding]
    year: int | None = None

    @property
    def accepted(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def summary_zh(self) -> str:
        status = "通过" if self.accepted else "未通过（整表退回）"
        sheet = f"工作表“{self.sheet}”" if self.sheet else ""
        head = f"{self.department_name}《{self.file}》{sheet}校验{status}：{len(self.errors)} 个错误，{len(self.warnings)} 个警告。"
        return "\n".join([head] + ["  " + f.describe() for f in self.findings])


    def html(self) -> str:
        """The report as a standalone HTML page (autoescaped Jinja2 template)."""
        from evaluation.reporting.pdf import render_template

        rows = [{
            "severity": f.severity, "label": "错误" if f.severity == "error" else "警告",
            "rows": "、".join(map(str, f.rows)) or "整表", "column": f.column, "rule": f.rule,
            "found": "、".join(f.found), "expected": f.expected,
        } for f in self.findings]
        return render_template("validation_report.html", {
            "department": self.department_name, "file": self.file, "sheet": self.sheet, "year": self.year,
            "submission_id": self.submission_id, "accepted": self.accepted,
            "status": "通过" if self.accepted else "未通过（整表退回）",
            "counts": f"{len(self.errors)} 个错误，{len(self.warnings)} 个警告", "findings": rows,
        })


class Gate:
    """A GX ephemeral context holding the suites; optionally writing Data Docs to a folder."""

    def __init__(self, docs_dir: Path | None = None, *, docs_each_run: bool = False):
        """docs_each_run: update the Data Docs site after every validation (about 0.25 s each, growing
        with the site). Otherwise they are written once by `build_docs()`, after the last one; a
        gate that travelled to another process (a Dask worker) updates them itself, as nobody
        else holds its results."""
        self.docs_dir = Path(docs_dir).resolve() if docs_dir else None
        self.docs_each_run = docs_each_run
        self.validated = 0
        self._ctx = None
        self._checkpoints: dict[str, object] = {}

    @property
    def ctx(self):
        """The GX context, created on first use (about 1.5 s), so a run whose checks all hit the cache never pays for it."""
        if self._ctx is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            self.source = ctx.data_sources.add_pandas("submissions")
            if self.docs_dir:
                self.docs_dir.mkdir(parents=True, exist_ok=True)
                ctx.add_data_docs_site(site_name="run", site_config={
                    "class_name": "SiteBuilder", "show_how_to_buttons": False,
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                })
            self._ctx = ctx
        return self._ctx

    def __getstate__(self):
        # A gate travels with task parameters; the GX context stays behind and is rebuilt on demand
        # (once per process: see __setstate__).
        return {"docs_dir": self.docs_dir, "docs_each_run": True, "validated": 0, "_ctx": None, "_checkpoints": {}}

    def __setstate__(self, state):
        self.__dict__.update(state)
        with _lock:  # one context per process and docs folder, not one per task
            home = _travelled.setdefault(self.docs_dir, self)
        if home is not self:
            self.__dict__ = home.__dict__

    def build_docs(self) -> Path | None:
        """Write the Data Docs site for the validations run here; returns its index (None when none ran)."""
        if self.docs_dir is None or self._ctx is None or not self.validated or self.docs_each_run:
            return self.docs_index if self.docs_index and self.docs_index.exists() else None
        with _lock:
            self._ctx.build_data_docs(site_names=["run"])
        return self.docs_index

    @property
    def docs_index(self) -> Path | None:
        return self.docs_dir / "index.html" if self.docs_dir else None

    def _checkpoint(self, suite: dict):
        import great_expectations as gx

        # A gate may meet two suites of the same name (two catalogues in one process): key on content too.
        digest = hashlib.sha256(json.dumps(suite["expectations"], sort_keys=True, default=str).encode()).hexdigest()[:10]
        key = (suite["name"], digest)
        if key not in self._checkpoints:
            self.ctx  # noqa: B018 - creates the context and its pandas source
            taken = any(k[0] == suite["name"] for k in self._checkpoints)
            name = f"{suite['name']}_{digest}" if taken else suite["name"]
            asset = self.source.add_dataframe_asset(name)
            batch = asset.add_batch_definition_whole_dataframe("whole")
            gx_suite = self.ctx.suites.add(gx.ExpectationSuite(
                name=name, expectations=suite["expectations"], meta=suite.get("meta")))
            vd = self.ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
            each = self.docs_dir and self.docs_each_run
            actions = [gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["run"])] if each else []
            self._checkpoints[key] = self.ctx.checkpoints.add(gx.Checkpoint(
                name=f"{name}_checkpoint", validation_definitions=[vd], actions=actions,
                result_format={"result_format": "COMPLETE"}))
        return self._checkpoints[key]

    def run(self, frame: pd.DataFrame, suite: dict) -> list[dict]:
        """Run a suite against a DataFrame; return each expectation's outcome as plain data."""
        with _lock:  # GX contexts are not thread-safe
            result = self._checkpoint(suite).run(batch_parameters={"dataframe": frame})
            self.validated += 1
        (validation,) = result.run_results.values()
        outcomes = []
        for r in validation.results:
            cfg = r.expectation_config
            details = r.result or {}
            outcomes.append({
                "type": cfg.type,
                "kwargs": dict(cfg.kwargs),
                "meta": dict(cfg.meta or {}),
                "severity": str(getattr(cfg, "severity", "critical")).split(".")[-1].lower(),
                "success": bool(r.success),
                "index": list(details.get("unexpected_index_list") or []),
                "values": list(details.get("unexpected_list") or []),
                "exception": bool((r.exception_info or {}).get("raised_exception", False)),
            })
        return outcomes


_default_gate: Gate | None = None


def default_gate() -> Gate:
    global _default_gate
    with _lock:
        if _default_gate is None:
            _default_gate = Gate()
    return _default_gate


def _fmt(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "（空）"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def with_changes(table: pd.DataFrame, catalogue: Catalogue, department: str,
                 previous: pd.DataFrame | None) -> pd.DataFrame:
    """Add, per variable, last year's accepted value and the change on it in % (NaN when unknown)."""
    frame = table.drop(columns=["_county_raw"]).copy()
    for var in catalogue.department_variables(department):
        if var.max_change is None:
            continue
        prev = pd.Series(np.nan, index=frame.index)
        if previous is not None and var.id in previous.columns and var.id in frame.columns:
            prev = frame["county_code"].astype(object).map(previous[var.id].to_dict()).astype("float64")
        current = frame[var.id] if var.id in frame.columns else pd.Series(np.nan, index=frame.index)
        base = prev.where(prev != 0)
        frame[var.id + PREVIOUS] = prev
        frame[var.id + CHANGE] = ((current - base) / base.abs() * 100).astype("float64")
    return frame


def with_county_checks(frame: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Add the derived county columns the suites check (KNOWN, LISTED)."""
    frame = frame.copy()
    known = frame["county_code"].isin({c.code for c in catalogue.counties})
    frame[KNOWN] = known.astype(bool)
    frame[LISTED] = frame["county_code"].where(known).astype(object)
    return frame


_NAME_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def name_year(file_name: str) -> int | None:
    """The year a file name states (统计局_2023年….xlsx -> 2023), if exactly one is stated."""
    years = set(_NAME_YEAR.findall(file_name))
    return int(years.pop()) if len(years) == 1 else None


def validate_submission(sub: Submission, catalogue: Catalogue, *, previous: pd.DataFrame | None = None,
                        gate: Gate | None = None, suites_dir: Path = SUITES_DIR) -> ValidationReport:
    """Check one submission at the boundary; bad data becomes findings, never an exception.

    Besides the GX suite: cells that are not numbers in one meaning, a year column stating another
    year, last year's figures sent again (every value of the variables with a year-on-year check
    equal to `previous`: an error, see `_same_as_previous`), ignored columns and delivery notices
    (warnings that stay out of documents: `NOT_FOR_DOCUMENTS`). Bureau text is clipped.

    previous: last year's accepted values (county code x variable id) for the jump check.
    """
    gate = gate or default_gate()
    source = catalogue.sources[sub.department]
    headers = {m.var: h for h, m in source.columns.items()}
    for column in COUNTY_COLUMNS:
        headers[column] = source.county_column
    for var in catalogue.department_variables(sub.department):
        headers[var.id + CHANGE] = headers.get(var.id, var.name)
    suite = suite_for(catalogue, sub.department, suites_dir)
    frame = with_county_checks(with_changes(sub.table, catalogue, sub.department, previous), catalogue)
    findings: list[Finding] = []
    for row, header, raw, reason in sub.unparsed:
        findings.append(Finding("error", reason, header, [row], [clip(raw)], "parse_cell", "数值"))
    if sub.extra_columns:
        findings.append(Finding("warning", "表中有未配置的列，已忽略", clip_list(sub.extra_columns, "列"), [], [],
                                "extra_column"))
    for notice in sub.notices:
        findings.append(Finding("warning", notice, "", [], [], "other_file"))
    stated = sub.stated_years
    other_years = [(row, text) for row, text in stated if stated_year(text) != sub.year] if sub.year else []
    if other_years:
        findings.append(Finding("error", f"表中的年度与报送年度 {sub.year} 年不符", sub.year_column,
                                [r for r, _ in other_years], [clip(t) for _, t in other_years], "year_column",
                                str(sub.year)))
    if previous is not None and _same_as_previous(frame, catalogue, sub.department):
        findings.append(Finding("error", SAME_AS_PREVIOUS, "", [], [], "same_as_previous",
                                f"{sub.year} 年的数据" if sub.year else "本年度的数据"))
    # a column the table lacks is reported once, by expect_column_to_exist, not by every rule on it
    absent = {v.id for v in catalogue.department_variables(sub.department) if v.id not in sub.table.columns}
    for outcome in gate.run(frame, suite):
        if outcome["success"]:
            continue
        kwargs = outcome["kwargs"]
        column = kwargs.get("column") or kwargs.get("column_A", "")
        involved = {str(kwargs.get(k, "")).removesuffix(CHANGE) for k in ("column", "column_A", "column_B")}
        if outcome["type"] != "expect_column_to_exist" and involved & absent:
            continue
        rows: list[int] = []
        found: list[str] = []
        for idx in outcome["index"]:
            if not (isinstance(idx, (int, np.integer)) and 0 <= idx < len(sub.table)):
                continue
            rows.append(int(sub.table["_row"].iloc[idx]))
            if column in COUNTY_COLUMNS:
                found.append(clip(_fmt(sub.table["_county_raw"].iloc[idx])))
            elif column.endswith(CHANGE):
                var = column.removesuffix(CHANGE)
                found.append(f"{_fmt(frame[var].iloc[idx])}（上年 {_fmt(frame[var + PREVIOUS].iloc[idx])}，"
                             f"{frame[column].iloc[idx]:+.0f}%）")
            elif "column_B" in kwargs:
                found.append(f"{_fmt(frame[column].iloc[idx])} 与 {_fmt(frame[kwargs['column_B']].iloc[idx])}")
            else:
                found.append(_fmt(frame[column].iloc[idx]) if column in frame.columns else "")
        if column == LISTED:
            present = set(frame["county_code"].dropna())
            names = [c.name for c in catalogue.counties if c.code not in present]
            found = [f"缺少：{'、'.join(names)}"]
        if outcome["type"] == "expect_column_values_to_not_be_null" and column in catalogue.variables:
            # a cell that failed to parse is already reported with its raw text
            unparsed_rows = {r for r, h, _, _ in sub.unparsed if h == headers.get(column)}
            keep = [(r, v) for r, v in zip(rows, found) if r not in unparsed_rows]
            if rows and not keep:
                continue
            rows, found = [r for r, _ in keep], [v for _, v in keep]
        if outcome["exception"] and outcome["type"] != "expect_column_to_exist":
            if column not in frame.columns:
                continue  # the missing column is reported once, by expect_column_to_exist
        severity = "warning" if outcome["severity"] in ("warning", "info") else "error"
        header = headers.get(column, column)
        if "column_B" in kwargs:
            header = f"{header}、{headers.get(kwargs['column_B'], kwargs['column_B'])}"
        findings.append(Finding(severity, outcome["meta"].get("rule_zh", outcome["type"]), header, rows, found,
                                outcome["type"], outcome["meta"].get("expected_zh", "")))
    stated = name_year(sub.path.name)
    if sub.year and stated is not None and stated != sub.year:
        findings.append(Finding("error", f"文件名显示为 {stated} 年数据，与报送年度 {sub.year} 年不符", "（文件名）",
                                [], [sub.path.name], "year", f"{sub.year} 年的数据"))
    findings.sort(key=lambda f: (f.severity != "error", f.rows[:1] or [0], f.column))
    return ValidationReport(
        department=sub.department,
        department_name=catalogue.departments[sub.department].name,
        file=sub.path.name,
        sheet=sub.sheet,
        submission_id=sub.submission_id,
        findings=findings,
        year=sub.year,
    )


def _same_as_previous(frame: pd.DataFrame, catalogue: Catalogue, department: str) -> bool:
    """Whether every value of the variables with a year-on-year check (`max_change`) equals last
    year's accepted value for its county (at least two values compared): last year's file sent again."""
    compared = 0
    for var in catalogue.department_variables(department):
        if var.max_change is None or var.id not in frame.columns or var.id + PREVIOUS not in frame.columns:
            continue
        current, prev = frame[var.id], frame[var.id + PREVIOUS]
        mask = current.notna() & frame[KNOWN].astype(bool)
        if not mask.any():
            continue
        if prev[mask].isna().any():
            return False
        if not np.allclose(current[mask].to_numpy(float), prev[mask].to_numpy(float), rtol=1e-9, atol=0.0):
            return False
        compared += int(mask.sum())
    return compared >= 2


def suite_drift(catalogue: Catalogue, department: str, suites_dir: Path = SUITES_DIR) -> list[str]:
    """Differences between the committed suite and what the catalogue generates (empty when in sync)."""
    want = build_suite_dict(catalogue, department)
    have = load_suite_dict(department, suites_dir)
    problems = []
    if have.get("name") != want["name"]:
        problems.append(f"name {have.get('name')!r} != {want['name']!r}")
    keys = ("id", "type", "kwargs", "meta", "severity")
    got = [{k: e.get(k) for k in keys} for e in have.get("expectations", [])]
    exp = [{k: e.get(k) for k in keys} for e in want["expectations"]]
    if got != exp:
        problems.append(f"expectations differ ({len(got)} committed, {len(exp)} generated)")
    return problems
