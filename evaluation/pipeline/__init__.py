"""The annual evaluation's steps as plain functions over plain data; `evaluation.operations` composes
them into what the CLI, the flows, the tests and the benchmarks call.

One idea per module:

- `intake`: receive a bureau's table (folder, HTTP, SQL; the portal's from the ledger) and check it (parse, GX gate) -> `Intake`;
- `history`: the ledger's side: corrections in force, recording, past years' accepted values;
- `keys`: content keys of cached steps and of issued reports;
- `plan`: accepted values -> scores, analysis, report contexts and content keys -> rendered PDFs;
- `revision`: the 修订说明 against the previous version;
- `manifest`: a version's input fingerprint and manifest.

The order a run takes (flows/annual.py): receive_one -> current_for -> check_one -> record_one ->
completeness -> input_fingerprint -> assemble_values -> score -> analyse -> report_plan ->
split_plan -> revisions -> render_one -> build_manifest. The names below are the public face.
"""

from evaluation.pipeline.intake import (
    NAME_CAP, SAMPLE_MARKER, STATUS_LABEL, Intake, check_one, completeness, ingest_one, is_sample, parse_one,
    receive_one, unreachable, validate_one, warning_notes,
)
from evaluation.pipeline.keys import (
    CONTENT_FACT_COLUMNS, EDITION_KEYS, check_key, content_key, facts_digests, frame_digest, hash_key, values_key,
)
from evaluation.pipeline.history import (
    accepted_values, backfill_needed, current_for, past_years, receive_from_ledger, record_one, same_bytes_notice,
    year_values,
)
from evaluation.pipeline.manifest import build_manifest, input_fingerprint, manifest_inputs
from evaluation.pipeline.revision import REASON_CAP, Revisions, revisions
from evaluation.reporting.planned import render_one
from evaluation.pipeline.plan import (
    PlannedReport, analyse, assemble_values, complete_previous, gep_account, ranking_csv, report_facts,
    report_plan, reuse_rendered, run_info, score, split_plan, with_edition,
)

__all__ = [
    "CONTENT_FACT_COLUMNS", "EDITION_KEYS", "NAME_CAP", "REASON_CAP", "SAMPLE_MARKER", "STATUS_LABEL", "Intake",
    "PlannedReport", "accepted_values", "analyse", "assemble_values", "gep_account", "backfill_needed", "build_manifest",
    "check_key", "check_one", "complete_previous", "completeness", "content_key", "current_for", "facts_digests",
    "frame_digest", "hash_key", "ingest_one", "input_fingerprint", "is_sample", "manifest_inputs", "parse_one", "past_years", "receive_from_ledger",
    "ranking_csv", "receive_one", "record_one", "render_one", "report_facts", "report_plan", "reuse_rendered", "Revisions", "revisions",
    "run_info", "same_bytes_notice", "score", "split_plan", "unreachable", "validate_one", "values_key",
    "warning_notes", "with_edition", "year_values",
]
