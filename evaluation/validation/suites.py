"""GX expectation suites per bureau, generated from the catalogue and merged with the hand-written
rules of `expectations/rules.yaml`; committed as JSON under `expectations/gx/` (`make suites`)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from evaluation import gep
from evaluation.catalogue import Catalogue
from evaluation.fsutil import atomic_write
from evaluation.yamlsafe import load_yaml

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
COLUMNS_CHECK = "expect_table_columns_to_match_set"  # the table has every column of its bureau's variables
_ID_NAMESPACE = uuid.UUID("6f1d1c3e-7f0e-4d4a-9a39-2c6d2b0a2a51")


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
    variables = catalogue.department_variables(department)
    # one check of the table's columns, not one expect_column_to_exist per column: GX spends about 14 ms on any
    # expectation, and those were a fifth of them (a missing column is still reported by its header: checks.py)
    exps.append(_exp(COLUMNS_CHECK, {"column_set": [v.id for v in variables], "exact_match": False},
                     "必须有全部数据列", "、".join(f"列“{headers[v.id]}”" for v in variables)))
    for var in variables:
        header = headers[var.id]
        low, high = var.range
        if not var.optional:  # an optional cell may be blank (e.g. a quantity reported instead of computed)
            exps.append(_exp("expect_column_values_to_not_be_null", {"column": var.id}, var.blank_zh or "必须填写数值",
                             "数值"))
        exps.append(_exp("expect_column_values_to_be_between", {"column": var.id, "min_value": low, "max_value": high},
                         f"数值超出合理范围（{low:g} 至 {high:g} {var.unit}）", f"{low:g} ～ {high:g} {var.unit}"))
        if var.max_change is not None:
            exps.append(_exp(
                "expect_column_values_to_be_between",
                {"column": var.id + CHANGE, "min_value": -var.max_change, "max_value": var.max_change},
                f"较上年已采用数据变化超过 {var.max_change:g}%，请核实", f"较上年变化不超过 ±{var.max_change:g}%",
                severity="warning",
            ))
    for extra in gep.suite_expectations(catalogue, department):  # GEP accounts: areas, the price year
        exps.append(_exp(extra["type"], extra["kwargs"], extra["rule_zh"], extra["expected_zh"], extra["severity"]))
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
