"""The data gate: a Great Expectations 1.x suite per bureau, run on each submission.

Suites are generated from the catalogue and kept as JSON under
`expectations/suites/<department>.json` (committed, so a reviewer can read exactly
what is checked; a test keeps them in sync with the catalogue). Each expectation
carries GX's own severity: `critical` rejects the whole submission, `warning`
lets it through and is printed on the scorecard. Its `meta.rule_zh` is the rule
in plain Chinese for the bureau.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.ingest import Submission

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations" / "suites"

_lock = threading.Lock()
_context = None


# -- suite generation ---------------------------------------------------------


def _exp(type_: str, kwargs: dict, rule_zh: str, severity: str = "critical") -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"rule_zh": rule_zh}, "severity": severity}


def build_suite_dict(catalogue: Catalogue, department: str) -> dict:
    """The expectation suite for one bureau's table, as plain JSON-able data."""
    codes = sorted(c.code for c in catalogue.counties)
    source = catalogue.sources[department]
    headers = {m.var: h for h, m in source.columns.items()}
    exps = [
        _exp("expect_column_values_to_not_be_null", {"column": "county_code"},
             f"县区列“{source.county_column}”不能为空"),
        _exp("expect_column_values_to_be_in_set", {"column": "county_code", "value_set": codes},
             "县区必须是陇南市所辖县区（代码、全称或简称）"),
        _exp("expect_column_values_to_be_unique", {"column": "county_code"},
             "每个县区只能填报一行"),
        _exp("expect_column_distinct_values_to_contain_set", {"column": "county_code", "value_set": codes},
             "必须包含全部县区"),
    ]
    for var in catalogue.department_variables(department):
        header = headers[var.id]
        low, high = var.range
        exps += [
            _exp("expect_column_to_exist", {"column": var.id}, f"必须有“{header}”列"),
            _exp("expect_column_values_to_not_be_null", {"column": var.id}, f"“{header}”必须填写数值"),
            _exp("expect_column_values_to_be_between",
                 {"column": var.id, "min_value": low, "max_value": high},
                 f"“{header}”应在 {low:g} 至 {high:g} {var.unit} 之间"),
        ]
    return {
        "name": f"{department}_submission",
        "meta": {"department": department, "generated_from": "config/indicators.yaml, zones.yaml, sources.yaml"},
        "expectations": exps,
    }


def write_suites(catalogue: Catalogue, out_dir: Path = SUITES_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for dept in sorted(catalogue.sources):
        path = out_dir / f"{dept}.json"
        path.write_text(suite_json(catalogue, dept), encoding="utf-8")
        paths.append(path)
    return paths


def suite_json(catalogue: Catalogue, department: str) -> str:
    return json.dumps(build_suite_dict(catalogue, department), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def load_suite_dict(department: str, suites_dir: Path = SUITES_DIR) -> dict:
    path = suites_dir / f"{department}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no expectation suite for {department}: run `twomountains suites` to generate {path}") from None


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

    def describe(self) -> str:
        where = f"第 {'、'.join(str(r) for r in self.rows[:10])} 行" if self.rows else "整表"
        found = f"；实际值：{'、'.join(self.found[:10])}" if self.found else ""
        label = "错误" if self.severity == "error" else "警告"
        return f"[{label}] {where}，列“{self.column}”：{self.rule}{found}"


@dataclass
class ValidationReport:
    department: str
    department_name: str
    file: str
    sheet: str
    submission_id: str
    findings: list[Finding]

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
        head = f"{self.department_name}《{self.file}》校验{status}：{len(self.errors)} 个错误，{len(self.warnings)} 个警告。"
        return "\n".join([head] + ["  " + f.describe() for f in self.findings])


def _gx_context():
    global _context
    if _context is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        _context = ctx
    return _context


def run_suite(frame: pd.DataFrame, suite: dict) -> list[dict]:
    """Run a suite dict against a DataFrame with GX 1.x; return each expectation's outcome."""
    import great_expectations as gx

    with _lock:  # GX's ephemeral context is not thread-safe
        ctx = _gx_context()
        name = suite["name"]
        try:
            source = ctx.data_sources.get("submissions")
        except (KeyError, ValueError):
            source = ctx.data_sources.add_pandas("submissions")
        try:
            asset = source.get_asset(name)
        except LookupError:
            asset = source.add_dataframe_asset(name)
        try:
            batch_def = asset.get_batch_definition("whole")
        except (KeyError, LookupError):
            batch_def = asset.add_batch_definition_whole_dataframe("whole")
        try:
            ctx.suites.delete(name)
        except Exception:  # not there yet
            pass
        gx_suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=suite["expectations"], meta=suite.get("meta")))
        try:
            ctx.validation_definitions.delete(name)
        except Exception:
            pass
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=gx_suite))
        result = vd.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        outcomes.append({
            "type": cfg.type,
            "kwargs": dict(cfg.kwargs),
            "meta": dict(cfg.meta or {}),
            "severity": str(getattr(cfg, "severity", "critical")).split(".")[-1].lower(),
            "success": bool(r.success),
            "index": list((r.result or {}).get("unexpected_index_list") or []),
            "values": list((r.result or {}).get("unexpected_list") or []),
            "exception": (r.exception_info or {}).get("raised_exception", False),
        })
    return outcomes


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "（空）"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def validate_submission(sub: Submission, catalogue: Catalogue, suites_dir: Path = SUITES_DIR) -> ValidationReport:
    """Check one submission at the boundary; nothing raises for bad data, it becomes a finding."""
    source = catalogue.sources[sub.department]
    headers = {m.var: h for h, m in source.columns.items()}
    headers["county_code"] = source.county_column
    suite = load_suite_dict(sub.department, suites_dir)
    frame = sub.table.drop(columns=["_county_raw"]).copy()
    findings: list[Finding] = []
    for row, header, raw, reason in sub.unparsed:
        findings.append(Finding("error", f"“{header}”{reason}", header, [row], [raw], "parse_cell"))
    for header in sub.extra_columns:
        findings.append(Finding("warning", "未配置的列，已忽略", header, [], [], "extra_column"))
    for outcome in run_suite(frame, suite):
        if outcome["success"]:
            continue
        column = outcome["kwargs"].get("column", "")
        rows: list[int] = []
        found: list[str] = []
        for idx in outcome["index"]:
            if isinstance(idx, int) and 0 <= idx < len(sub.table):
                rows.append(int(sub.table["_row"].iloc[idx]))
                raw_col = "_county_raw" if column == "county_code" else column
                found.append(_fmt(sub.table[raw_col].iloc[idx]))
        if outcome["type"] == "expect_column_distinct_values_to_contain_set":
            present = set(frame["county_code"].dropna())
            names = [catalogue.county(c).name for c in outcome["kwargs"]["value_set"] if c not in present]
            found = [f"缺少：{'、'.join(names)}"]
        if outcome["type"] == "expect_column_values_to_not_be_null" and column in catalogue.variables:
            # a cell that failed to parse is already reported with its raw text
            unparsed_rows = {r for r, h, _, _ in sub.unparsed if h == headers.get(column)}
            keep = [(r, v) for r, v in zip(rows, found) if r not in unparsed_rows]
            if not keep and rows:
                continue
            rows, found = [r for r, _ in keep], [v for _, v in keep]
        severity = "warning" if outcome["severity"] in ("warning", "info") else "error"
        findings.append(Finding(severity, outcome["meta"].get("rule_zh", outcome["type"]),
                                headers.get(column, column), rows, found, outcome["type"]))
    findings.sort(key=lambda f: (f.severity != "error", f.rows[:1] or [0], f.column))
    return ValidationReport(
        department=sub.department,
        department_name=catalogue.departments[sub.department].name,
        file=sub.path.name,
        sheet=sub.sheet,
        submission_id=sub.submission_id,
        findings=findings,
    )
