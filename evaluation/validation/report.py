"""What a check found, in words a bureau can act on: findings and the validation report (text and HTML)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Findings about the delivery rather than the figures: kept in the validation report (and the
# ledger), never put on a scorecard, so they neither clutter nor re-issue the counties' reports.
NOT_FOR_DOCUMENTS = frozenset({"extra_column", "other_file"})
ROW_LINES = 30  # rows of one finding listed one per line; more are listed on one line


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
    counties: list[str] = field(default_factory=list)  # the county of each row, as named in the table

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

        return render_template("validation_report.html", self.html_context())

    def html_context(self) -> dict:
        """What the HTML report shows (the web portal renders the same rows in its own page)."""
        return {
            "department": self.department_name, "file": self.file, "sheet": self.sheet, "year": self.year,
            "submission_id": self.submission_id, "accepted": self.accepted,
            "status": "通过" if self.accepted else "未通过（整表退回）",
            "counts": f"{len(self.errors)} 个错误，{len(self.warnings)} 个警告", "findings": self.lines(),
        }

    def lines(self, per_finding: int = ROW_LINES) -> list[dict]:
        """One line per row a finding names (file row, county, value found), up to `per_finding` rows;
        a finding over more rows is one line listing them."""
        out = []
        for f in self.findings:
            base = {"severity": f.severity, "label": "错误" if f.severity == "error" else "警告", "column": f.column,
                    "rule": f.rule, "expected": f.expected}
            if f.rows and len(f.rows) <= per_finding:
                for i, row in enumerate(f.rows):
                    out.append({**base, "rows": str(row), "county": f.counties[i] if i < len(f.counties) else "",
                                "found": f.found[i] if i < len(f.found) and len(f.found) == len(f.rows) else
                                "、".join(f.found)})
                continue
            rows = "、".join(map(str, f.rows[:50])) + (f" 等 {len(f.rows)} 行" if len(f.rows) > 50 else "")
            counties = [c for c in f.counties[:50] if c]
            out.append({**base, "rows": rows or "整表",
                        "county": "、".join(counties) + (" 等" if len(f.counties) > 50 else ""),
                        "found": "、".join(f.found[:50]) + (" …" if len(f.found) > 50 else "")})
        return out
