"""Read a bureau's yearly table into a wide frame and a long fact table with provenance.

Two steps, so that what was received can be kept byte for byte:

- `receive` gets the bytes from the configured source (a file in the drop folder,
  an HTTP endpoint, or a SQL query whose result is serialised as canonical CSV);
- `parse` turns those bytes into a `Submission`.

Both are bounded by the source's `limits` (bytes; rows, columns and cells, checked while an
xlsx is streamed (`ingest.xlsx`) or a CSV is read (`ingest.text`)); only regular files are read
from the drop folder; a number is read only when it has one meaning (`ingest.cells`).

A submission is a bureau's bytes for a year: its id hashes the bureau, the year and the
sha256 of the bytes, so the same file sent twice is the same submission, the same file sent
for another year is another one, and every fact keeps the sheet and row it came from.

Modules: `files` (receiving), `tables` (parsing), `drop` (the drop folder), with `cells`, `text`,
`xlsx` (reading), `remote` (HTTP, SQL), `forms` (the bureaus' forms) and `model` (shared types).
"""

from evaluation.ingest.cells import (
    NOT_A_NUMBER, YEAR_HEADER, NumberFormError, Percent, cell_text, clip, clip_list, normalise_header, parse_cell,
    parse_number, stated_year,
)
from evaluation.ingest.drop import Expected, discover, others_notice
from evaluation.ingest.files import (
    LEGACY_FORMATS, TABLE_SUFFIXES, MissingFileError, legacy_message, receive, receive_bytes, receive_file, upload_name,
)
from evaluation.ingest.model import (
    FACT_COLUMNS, IngestError, Received, Submission, TransientSourceError, submission_id,
)
from evaluation.ingest.tables import parse, read_submission, table_from_rows

__all__ = [
    "FACT_COLUMNS", "Expected", "IngestError", "MissingFileError", "NumberFormError", "Received", "Submission",
    "TransientSourceError", "clip", "clip_list", "discover", "normalise_header", "others_notice", "parse",
    "parse_cell", "parse_number", "read_submission", "receive", "receive_bytes", "receive_file", "stated_year", "submission_id",
    "table_from_rows", "upload_name",
]
