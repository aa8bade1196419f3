"""The analysts' workbench, timed as an analyst meets it: time to first byte and full page size of the year
page (map and ranking) and of a county's page, over HTTP to the app served by uvicorn, and the what-if
recomputation (every county re-scored and compared with the issued version), at Longnan size (the sample,
issued by the same operations as the run button) and at national size (benchmarks/national.py).

The national version is issued without its 2,845 PDFs (each file is a placeholder): the pages read the
manifest, the kept contexts and the ledger, never a PDF, and rendering is what P1 measures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PASSWORD = "bench-password-2024"
YEAR = 2023
RECEIVED = "2024-03-01T00:00:00+00:00"


def _issue(config: Path, data: Path, out: Path, *, pdfs: bool) -> None:
    from evaluation import operations, pipeline
    from evaluation.catalogue import load_catalogue
    from evaluation.resources import open_ledger
    from evaluation.versions import code_hash

    catalogue = load_catalogue(config)
    code = code_hash()
    with open_ledger(out) as ledger:
        if pdfs:  # as the run button does it without a server
            operations.annual(catalogue, data, out, YEAR, ledger=ledger, run_date="2024-03-01", received_at=RECEIVED,
                              code=code)
            return
        for year in (YEAR - 2, YEAR - 1):
            operations.record(ledger, operations.check_folder(catalogue, data, year), catalogue, RECEIVED)
        history = {y: pipeline.year_values(ledger, catalogue, y) for y in (YEAR - 2, YEAR - 1)}
        intakes = operations.check_folder(catalogue, data, YEAR, previous=history[YEAR - 1])
        operations.record(ledger, intakes, catalogue, RECEIVED)
        fingerprint = pipeline.input_fingerprint(intakes, catalogue, code, allow_incomplete=False)
        made = operations.evaluate(catalogue, intakes, YEAR, run_date="2024-03-01", history=history, sample=True,
                                   code=code)
        staged = operations.stage(out, YEAR, 1, made.plan, {}, None, run_date="2024-03-01",
                                  revisions=pipeline.Revisions())
        rendered = {}
        for report in staged.reports:
            body = f"placeholder for {report.file_name} (the dashboard bench renders no PDF)\n".encode()
            (staged.folder / report.file_name).write_bytes(body)
            rendered[report.file_name] = hashlib.sha256(body).hexdigest()
        operations.publish(staged, rendered, fingerprint, made, run_date="2024-03-01", sample=True, incomplete=False)


def _ttfb(client, path: str) -> tuple[float, float, int]:
    """(seconds to the first byte, seconds to the last, bytes) of one GET."""
    start = time.perf_counter()
    with client.stream("GET", path) as response:
        first = None
        size = 0
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            size += len(chunk)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
    return first or 0.0, time.perf_counter() - start, size


def _measure(config: Path, data: Path, out: Path, county: str, repeat: int) -> dict:
    import httpx

    sys.path.insert(0, str(REPO / "tests"))
    from webtools import Workspace, served

    from evaluation.accounts import Accounts
    from evaluation.catalogue import load_catalogue
    from evaluation.workbench import issued, whatif

    with Accounts.at(out) as accounts:
        accounts.add("analyst01", PASSWORD, "analyst", now=dt.datetime.now(dt.timezone.utc))
    catalogue = load_catalogue(config)
    pages = {"year_page": f"/analyst/{YEAR}", "county_page": f"/analyst/{YEAR}/county/{county}"}
    result: dict = {}
    with served(Workspace(data, out, config, ())) as (url, app):
        client = httpx.Client(base_url=url, timeout=600)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "analyst01", "password": PASSWORD, "csrf_token": token})
        for name, path in pages.items():
            cold = _ttfb(client, path)  # the first reads the version (and draws the map) once
            warm = [_ttfb(client, path) for _ in range(repeat)]
            result[name] = {"first_request_seconds": round(cold[1], 3),
                            "ttfb_seconds": round(statistics.median(w[0] for w in warm), 3),
                            "full_page_seconds": round(statistics.median(w[1] for w in warm), 3),
                            "bytes": warm[-1][2]}
        query = {"v": "1", "w.key_ecological.A": "0.05", "w.key_ecological.D": "0.6", "normalise": "minmax"}
        client.get(f"/analyst/{YEAR}/whatif", params=query)
        http = []
        for i in range(repeat):
            start = time.perf_counter()
            shown = client.get(f"/analyst/{YEAR}/whatif", params={**query, "w.key_ecological.B": str(0.3 + i / 100)})
            http.append(time.perf_counter() - start)
            if "个县区排名变化" not in shown.text:
                raise RuntimeError("the what-if page did not show its outcome")
    current = issued.load(out, YEAR, 1, catalogue)
    scenario = whatif.Scenario.from_form(current, query)
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = whatif.compare(current, catalogue, scenario)
        seconds.append(time.perf_counter() - start)
    result["whatif"] = {"recompute_seconds": round(statistics.median(seconds), 3),
                        "page_seconds": round(statistics.median(http), 3), "counties": len(outcome.table),
                        "rank_changed": outcome.moved}
    return result


def run(work: Path, *, national_counties: int = 2844, repeat: int = 5) -> dict:
    """{"longnan": ..., "national": ...} with the goals of issue 19 (what-if < 1 s Longnan, < 3 s national)."""
    import national

    results = {}
    longnan = work / "longnan"
    shutil.copytree(REPO / "data" / "sample", longnan / "data")
    shutil.copytree(REPO / "config", longnan / "config")
    _issue(longnan / "config", longnan / "data", longnan / "reports", pdfs=True)
    results["longnan"] = _measure(longnan / "config", longnan / "data", longnan / "reports", "621202", repeat)
    results["longnan"]["whatif"]["goal_seconds"] = 1.0
    print(f"[bench] workbench, Longnan: {results['longnan']}", flush=True)
    wide = work / "national"
    config, data = national.make(wide, national_counties)
    started = time.perf_counter()
    _issue(config, data, wide / "reports", pdfs=False)
    from evaluation.catalogue import load_catalogue

    first = sorted(c.code for c in load_catalogue(config).counties)[0]
    results["national"] = _measure(config, data, wide / "reports", first, repeat)
    results["national"]["counties"] = national_counties
    results["national"]["issue_without_pdfs_seconds"] = round(time.perf_counter() - started, 1)
    results["national"]["whatif"]["goal_seconds"] = 3.0
    for scale in results.values():
        scale["whatif"]["met"] = scale["whatif"]["page_seconds"] <= scale["whatif"]["goal_seconds"]
    print(f"[bench] workbench, {national_counties} counties: {results['national']}", flush=True)
    return results


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), national_counties=int(sys.argv[1]) if len(sys.argv) > 1 else 2844),
                         ensure_ascii=False))
