"""What a check found, in words a bureau can act on: findings and the validation report (text and HTML)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Findings about the delivery rather than the figures: kept in the validation report (and the
# ledger), never put on a scorecard, so they neither clutter nor re-issue the counties' reports.
NOT_FOR_DOCUMENTS = frozenset({"extra_column", "other_file"})


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
