"""The portal's check, timed as a bureau clerk meets it: upload a table through HTTP to the app served by
uvicorn, be redirected, and have the page with the Chinese report in hand. At Longnan size (the sample's
生态环境局 table, 9 rows) and at national size (the synthetic 2,844-county table of benchmarks/national.py),
each against last year's accepted values in the ledger (the jump check runs, as in production)."""

from __future__ import annotations

import re
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PASSWORD = "bench-password-2024"


def _prepare(root: Path, config: Path, data: Path, department: str, year: int) -> Path:
    """A reports folder whose ledger holds `department`'s table of the year before, and a bureau account."""
    import datetime as dt

    from evaluation import operations
    from evaluation.accounts import Accounts
    from evaluation.catalogue import load_catalogue
    from evaluation.resources import open_ledger

    out = root / "reports"
    catalogue = load_catalogue(config)
    with open_ledger(out) as ledger:
        intakes = operations.check_folder(catalogue, data, year - 1, departments={department})
        operations.record(ledger, intakes, catalogue, "2024-03-01T00:00:00+00:00")
    with Accounts.at(out) as accounts:
        accounts.add("bench01", PASSWORD, "bureau", department=department, now=dt.datetime.now(dt.timezone.utc))
    return out


def _time_uploads(config: Path, data: Path, out: Path, department: str, year: int, repeat: int) -> dict:
    import httpx

    sys.path.insert(0, str(REPO / "tests"))
    from webtools import Workspace, served

    from evaluation.catalogue import load_catalogue

    catalogue = load_catalogue(config)
    source = catalogue.sources[department]
    table = (data / str(year) / source.file_name(year)).read_bytes()
    rows = table.count(b"\n")
    ws = Workspace(data, out, config, ())
    with served(ws) as (url, app):
        client = httpx.Client(base_url=url, timeout=300)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        page = client.post("/login", data={"username": "bench01", "password": PASSWORD, "csrf_token": token},
                           follow_redirects=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        seconds, statuses = [], []
        for i in range(repeat + 1):  # the first builds the GX context if the warm-up has not yet: not counted
            body = table + b"\n" * (i + 1)  # other bytes each time: a repeated file would be answered at once
            start = time.perf_counter()
            shown = client.post(f"/bureau/{department}/upload", data={"csrf_token": csrf, "year": str(year)},
                                files={"file": (source.file_name(year), body)}, follow_redirects=True)
            elapsed = time.perf_counter() - start
            if shown.status_code != 200 or "校验" not in shown.text:
                raise RuntimeError(f"the portal answered {shown.status_code}: {shown.text[:300]}")
            statuses.append("accepted" if "校验通过" in shown.text else "rejected")
            if i:
                seconds.append(elapsed)
    return {"rows": rows, "bytes": len(table), "uploads": repeat, "median_seconds": round(statistics.median(seconds), 3),
            "max_seconds": round(max(seconds), 3), "outcomes": sorted(set(statuses))}


def run(work: Path, *, national_counties: int = 2844, repeat: int = 5) -> dict:
    """{"longnan": ..., "national": ...}: upload to report page, seconds (median of `repeat`)."""
    import national

    results = {}
    longnan = work / "longnan"
    shutil.copytree(REPO / "data" / "sample", longnan / "data")
    out = _prepare(longnan, REPO / "config", longnan / "data", "eco", 2023)
    results["longnan"] = _time_uploads(REPO / "config", longnan / "data", out, "eco", 2023, repeat)
    print(f"[bench] portal check, Longnan: {results['longnan']['median_seconds']} s", flush=True)
    wide = work / "national"
    config, data = national.make(wide, national_counties)
    years = sorted(int(p.name) for p in data.iterdir() if p.name.isdigit())
    out = _prepare(wide, config, data, "eco", years[-1])
    results["national"] = _time_uploads(config, data, out, "eco", years[-1], repeat)
    print(f"[bench] portal check, {national_counties} counties: {results['national']['median_seconds']} s", flush=True)
    return results


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), ensure_ascii=False))
