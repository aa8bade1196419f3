"""A version's manifest: the fingerprint of its inputs, and what it issued."""

from __future__ import annotations

from evaluation import __version__
from evaluation.catalogue import Catalogue
from evaluation.index.scoring import ScoreResult
from evaluation.pipeline.intake import Intake
from evaluation.validation import Finding


def input_fingerprint(intakes: list[Intake], catalogue: Catalogue, code_hash: str, *, allow_incomplete: bool,
                      history: dict | None = None) -> dict:
    """What a version was made from; equal fingerprints mean an identical version. `history`: the past years'
    accepted values the run reads (GEP growth, progress and trends depend on them), by digest, so a correction
    to last year's data re-issues this year's reports too."""
    from evaluation.pipeline.keys import frame_digest

    return {
        "history": {str(y): frame_digest(v) for y, v in sorted((history or {}).items())},
        "config_hash": catalogue.config_hash,
        "code_hash": code_hash,
        "code_version": __version__,
        "allow_incomplete": allow_incomplete,
        "inputs": [
            {"department": i.department, "file": i.file, "status": i.status,
             "submission_id": i.received.submission_id if i.received else None,
             "sha256": i.received.sha256 if i.received else None}
            for i in sorted(intakes, key=lambda i: i.department)
        ],
    }


def manifest_inputs(manifest: dict) -> dict[str, str | None]:
    """{department: submission id} of a version's inputs. Manifests written before submissions
    were identified by bureau, year and bytes hold the bare sha256; it is converted."""
    from evaluation.ingest import submission_id

    year = manifest.get("year")
    out = {}
    for i in manifest.get("inputs", []):
        sid = i.get("submission_id")
        if sid and "sha256" not in i and year is not None:
            sid = submission_id(i["department"], int(year), sid)
        out[i["department"]] = sid
    return out


def build_manifest(fingerprint: dict, *, year: int, version: int, run_date: str, sample: bool,
                   incomplete: bool, outputs: dict[str, str], result: ScoreResult,
                   findings: dict[str, list[Finding]], revisions: dict[str, tuple[str, ...]] | None = None,
                   content_keys: dict[str, str] | None = None, editions: dict[str, int] | None = None) -> dict:
    """What a version is: inputs, scores, outputs (sha256), per file its content key and the version
    whose rendering it is (`editions`: lower than `version` for a carried-over file), and the index
    engine's iData, iMeta, steps and build log (`index`), from which the scores can be computed again."""
    summary = result.summary()
    return {
        **fingerprint,
        "year": year,
        "version": version,
        "run_date": run_date,
        "sample_data": sample,
        "incomplete": incomplete,
        "outputs": dict(sorted(outputs.items())),
        "content_keys": dict(sorted((content_keys or {}).items())),
        "editions": {name: int((editions or {}).get(name, version)) for name in sorted(outputs)},
        "scores": [
            {"county_code": str(code), "overall": round(float(row["overall"]), 4), "grade": row["grade"],
             "rank": int(row["rank"]), "zone": row["zone"], "zone_rank": int(row["zone_rank"])}
            for code, row in summary.iterrows()
        ],
        "revisions": {code: list(lines) for code, lines in sorted((revisions or {}).items())},
        "index": result.engine_record(),
        "validation": {
            dept: [{"severity": f.severity, "rule": f.rule, "column": f.column, "rows": f.rows} for f in fs]
            for dept, fs in sorted(findings.items())
        },
    }
