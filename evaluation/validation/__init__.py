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

Modules: `suites` (generation, drift), `gate` (the GX context and checkpoints), `checks`
(`validate_submission` and the derived columns), `report` (findings and the report).
"""

from evaluation.validation.checks import (
    SAME_AS_PREVIOUS, name_year, validate_submission, with_changes, with_county_checks,
)
from evaluation.validation.gate import Gate, default_gate
from evaluation.validation.report import NOT_FOR_DOCUMENTS, Finding, ValidationReport
from evaluation.validation.suites import (
    CHANGE, COUNTY_COLUMNS, EXPECTATIONS_DIR, KNOWN, LISTED, PREVIOUS, RULES_FILE, SUITES_DIR, build_suite_dict,
    load_rules, load_suite_dict, suite_drift, suite_for, suite_name, write_suites,
)

__all__ = [
    "CHANGE", "COUNTY_COLUMNS", "EXPECTATIONS_DIR", "Finding", "Gate", "KNOWN", "LISTED", "NOT_FOR_DOCUMENTS",
    "PREVIOUS", "RULES_FILE", "SAME_AS_PREVIOUS", "SUITES_DIR", "ValidationReport", "build_suite_dict",
    "default_gate", "load_rules", "load_suite_dict", "name_year", "suite_drift", "suite_for", "suite_name",
    "validate_submission", "with_changes", "with_county_checks", "write_suites",
]
