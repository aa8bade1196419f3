"""The analysts' workbench: the year at a glance with its map and ranking, a county's scorecard as a web
page with every figure traced to its file, what-if weights, versions and their differences, runs and
distribution. Analyst accounts only: any other account gets 403 and an audit line on every page here.

Handlers authorise, read the request and pick a page; what they show comes from `evaluation.workbench`
(read only: nothing here writes to `reports/` or a ledger, except the runs and distributions an analyst
starts, which go through the same operations as the command line).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from evaluation import versions
from evaluation.fsutil import child
from evaluation.reporting import pages
from evaluation.workbench import delivery, diff, issued as issued_mod, provenance, whatif
from web.jobs import Busy

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Cached:
    key: tuple
    issued: issued_mod.Issued


def install(app: FastAPI, h: SimpleNamespace) -> None:
    """Add the workbench's routes to the portal `app`; `h` holds the portal's helpers and resources."""
    settings, catalogue, ledger, reissuer = h.settings, h.catalogue, h.ledger, h.reissuer
    out_dir = Path(settings.out_dir)
    config_dir = Path(settings.config_dir) if settings.config_dir else None
    cache: dict[tuple[int, int], Cached] = {}
    cache_lock = threading.Lock()
    zones = {z: t.name for z, t in catalogue.zone_types.items()}
    dims = [(d.id, d.name) for d in catalogue.dimensions]
    counties = {c.code: c for c in catalogue.counties}
    indicator_names = {i.id: i.name for i in catalogue.indicators}

    def analyst(request: Request):
        account, csrf = h.signed_in(request)
        if account.role != "analyst":
            h.audit(request, account.username, "denied", f"{request.method} {request.url.path}", "denied",
                    f"{account.role} account asked for an analyst page")
            raise h.Denied("无权访问：评价工作台只对分析人员开放。")
        return account, csrf

    def year_ok(year: int) -> int:
        if not 1990 <= int(year) <= 2100:
            raise h.Denied("没有这个年度。", 404)
        return int(year)

    def load(year: int, version: int | None = None) -> issued_mod.Issued | None:
        """An issued version (default the latest), read once and kept while its manifest is unchanged."""
        found = versions.versions(out_dir, year)
        if not found:
            return None
        n = found[-1] if version is None else int(version)
        if n not in found:
            raise h.Denied(f"{year} 年度没有第 {n} 版。", 404)
        manifest = versions.year_dir(out_dir, year) / f"v{n}" / versions.MANIFEST
        stat = manifest.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        with cache_lock:
            hit = cache.get((year, n))
            if hit is not None and hit.key == key:
                return hit.issued
        loaded = issued_mod.load(out_dir, year, n, catalogue)
        with cache_lock:
            cache[(year, n)] = Cached(key, loaded)
        return loaded

    maps: dict[tuple, tuple[bytes, list[str]]] = {}

    def drawn_map(current: issued_mod.Issued, by: str) -> tuple[bytes, list[str]]:
        """The version's map coloured `by`, drawn once (at national scale drawing takes a second or more)."""
        key = (current.year, current.version, id(current), by)
        if key not in maps:
            if len(maps) > 32:
                maps.clear()
            maps[key] = issued_mod.map_svg(current, catalogue, by, lambda c: county_url(current.year, c))
        return maps[key]

    def version_of(request: Request) -> int | None:
        raw = request.query_params.get("v", "")
        return int(raw) if raw.isdigit() and 0 < int(raw) < 10000 else None

    def county_url(year: int, code: str, version: int | None = None) -> str:
        return f"/analyst/{year}/county/{quote(code)}" + (f"?v={version}" if version else "")

    def page(request, template, account, csrf, **context):
        return h.page(request, template, account=account, csrf=csrf, zones=zones, dims=dims, **context)

    # -- the year at a glance: map, ranking, tables, run ----------------------------------------

    @app.get("/analyst")
    def analyst_home(request: Request):
        analyst(request)
        return RedirectResponse(f"/analyst/{h.year_of(request)}", status_code=303)

    @app.get("/analyst/{year}")
    def year_page(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        q = request.query_params
        states = [(k, name, h.table_state(k, year)) for k, name in h.departments.items()]
        job = reissuer.refresh(reissuer.status(year))
        current = load(year)
        context = dict(year=year, years=h.years_shown(year), states=states, job=job, issued=current,
                       message=q.get("message", "")[:200])
        if current is not None:
            by = q.get("by", "grade")
            by = by if by in ("grade", "overall", *[d for d, _ in dims]) else "grade"
            svg, missing = drawn_map(current, by)
            zone, grade, query = q.get("zone", ""), q.get("grade", ""), q.get("q", "").strip()[:20]
            sort, desc = q.get("sort", "rank"), q.get("desc", "") == "1"
            page_no = int(q["page"]) if q.get("page", "").isdigit() else 1
            rows, matching, pages_n = issued_mod.ranking(current, zone=zone if zone in zones else "",
                                                         grade=grade, query=query, sort=sort, descending=desc,
                                                         page=page_no)
            history = h.history(year)
            latest = history.versions[-1] if history.versions else None
            filters = {"by": by, "zone": zone, "grade": grade, "q": query, "sort": sort, "desc": "1" if desc else ""}

            def link(**change) -> str:
                merged = {k: v for k, v in {**filters, **change}.items() if v}
                return f"/analyst/{year}?" + urlencode(merged)

            context.update(map_svg=Markup(svg.decode("utf-8")), missing=missing, by=by, rows=rows, matching=matching,
                           pages=pages_n, page_no=min(max(1, page_no), pages_n), filters=filters, link=link,
                           latest=latest, grades=[g.name for g in sorted(catalogue.grades, key=lambda g: -g.min)],
                           revisions=current.manifest.get("revisions", {}),
                           city_code=catalogue.city.code, county_url=county_url)
        return page(request, "analyst_year.html", account, csrf, **context)

    @app.post("/analyst/{year}/run")
    async def run(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        form = await h.small_form(request)
        h.check_csrf(csrf, form.get("csrf_token"), request, account.username)
        def run_locally(job):
            from evaluation import operations
            from evaluation.resources import today, utc_now
            from evaluation.versions import code_hash

            job.lines.append(f"开始 {year} 年度评价（本机运行）")
            # the GX context is not thread-safe: uploads wait while the year's tables are checked
            done = operations.annual(catalogue, settings.data_dir, out_dir, year, ledger=ledger,
                                     run_date=today().isoformat(), received_at=utc_now(), gate=h.gate(),
                                     code=code_hash(), say=job.lines.append, checking=h.check_lock)
            job.version = done.version

        try:
            job = await run_in_threadpool(reissuer.run, year, account.username, run_locally)
        except Busy as exc:
            return RedirectResponse(f"/analyst/{year}?message={quote(str(exc))}", status_code=303)
        except Exception as exc:  # noqa: BLE001 - e.g. the Prefect server is down: said, and audited
            h.audit(request, account.username, "run", str(year), "failed", f"{type(exc).__name__}: {exc}"[:500])
            return RedirectResponse(f"/analyst/{year}?message={quote('未能启动评价：' + type(exc).__name__)}",
                                    status_code=303)
        h.audit(request, account.username, "run", str(year), detail=f"via {job.via}"
                + (f"; flow run {job.flow_run_id}" if job.flow_run_id else ""))
        return RedirectResponse(f"/analyst/{year}", status_code=303)  # no fragment: a refresh to it would not reload

    # -- a county --------------------------------------------------------------------------------

    def known_county(code: str) -> str:
        if code not in counties and code != catalogue.city.code:
            raise h.Denied("没有这个县区。", 404)
        return code

    def context_of(current: issued_mod.Issued, code: str) -> tuple[dict | None, int]:
        """The context `code`'s PDF in this version was rendered from, and the version whose bytes it is."""
        name = next((f for f in current.manifest["outputs"] if f.startswith(code + "_")), None)
        if name is None:
            return None, current.version
        edition = int(current.manifest.get("editions", {}).get(name, current.version))
        folder = versions.year_dir(out_dir, current.year) / f"v{edition}"
        return pages.read(folder, code), edition

    @app.get("/analyst/{year}/county/{code}")
    def county_page(request: Request, year: int, code: str):
        account, csrf = analyst(request)
        year, code = year_ok(year), known_county(code)
        current = load(year, version_of(request))
        if current is None:
            raise h.Denied(f"{year} 年度尚未出具评价报告。", 404)
        context, edition = context_of(current, code)
        charts = {}
        if context is not None:
            from evaluation.reporting import charts as chart_mod

            if context["kind"] == "county":
                charts = {"radar": Markup(chart_mod.radar_svg(context["radar"]).decode("utf-8")),
                          "trend": Markup(chart_mod.trend_svg(context["trend"]).decode("utf-8"))}
        history = h.history(year, code if code != catalogue.city.code else None)
        return page(request, "analyst_county.html", account, csrf, year=year, code=code, issued=current, c=context,
                    edition=edition, charts=charts, reports=history.reports,
                    name=counties[code].name if code in counties else catalogue.city.name,
                    all_versions=versions.versions(out_dir, year))

    @app.get("/analyst/{year}/county/{code}/figure/{indicator}")
    def figure_page(request: Request, year: int, code: str, indicator: str):
        account, csrf = analyst(request)
        year, code = year_ok(year), known_county(code)
        if indicator not in indicator_names:
            raise h.Denied("没有这个指标。", 404)
        current = load(year, version_of(request))
        if current is None:
            raise h.Denied(f"{year} 年度尚未出具评价报告。", 404)
        sources = provenance.figure(ledger, catalogue, current.manifest, code, indicator)
        ind = next(i for i in catalogue.indicators if i.id == indicator)
        return page(request, "analyst_figure.html", account, csrf, year=year, code=code, issued=current,
                    name=counties[code].name if code in counties else code, indicator=ind, sources=sources,
                    department_names=h.all_departments)

    @app.get("/analyst/submissions/{submission_id}/file")
    def submission_file(request: Request, submission_id: str):
        account, _ = analyst(request)
        found = ledger.submission(submission_id[:64])
        if found is None:
            raise h.Denied("没有这个报送记录。", 404)
        return h.submitted_file(request, account, found)

    # -- versions --------------------------------------------------------------------------------

    def issued_file(year: int, version: int, code: str | None) -> tuple[Path, str]:
        folder = versions.year_dir(out_dir, year) / f"v{int(version)}"
        if int(version) not in versions.versions(out_dir, year):
            raise h.Denied("没有这个版本。", 404)
        manifest = versions.read_manifest(folder)
        if code is None:
            name = (manifest.get("workbook") or {}).get("file")
        else:
            name = next((f for f in manifest["outputs"] if f.startswith(known_county(code) + "_")), None)
        if not name:
            raise h.Denied("该版本没有这个文件。", 404)
        return child(folder, name), name  # the name is the manifest's, and child() refuses one that leaves the folder

    @app.get("/analyst/{year}/v/{version}/report/{code}")
    def report_pdf(request: Request, year: int, version: int, code: str):
        account, _ = analyst(request)
        path, name = issued_file(year_ok(year), version, code)
        h.audit(request, account.username, "download-report", f"{year} v{version} {name}")
        return h.download(path.read_bytes(), name, "application/pdf")

    @app.get("/analyst/{year}/v/{version}/workbook")
    def workbook(request: Request, year: int, version: int):
        account, _ = analyst(request)
        path, name = issued_file(year_ok(year), version, None)
        h.audit(request, account.username, "download-report", f"{year} v{version} {name}")
        return h.download(path.read_bytes(), name, XLSX)

    @app.get("/analyst/{year}/versions")
    def versions_page(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        found = versions.versions(out_dir, year)
        history = h.history(year)
        q = request.query_params
        compared = None
        if len(found) >= 2:
            a = int(q["a"]) if q.get("a", "").isdigit() and int(q["a"]) in found else found[-2]
            b = int(q["b"]) if q.get("b", "").isdigit() and int(q["b"]) in found else found[-1]
            if a != b:
                compared = diff.between(ledger, catalogue, out_dir, year, min(a, b), max(a, b))
        manifests = {n: versions.read_manifest(versions.year_dir(out_dir, year) / f"v{n}") for n in found}
        return page(request, "analyst_versions.html", account, csrf, year=year, years=h.years_shown(year),
                    found=found, history=history, compared=compared, manifests=manifests,
                    department_names=h.all_departments, city_code=catalogue.city.code, county_url=county_url,
                    names={**{c: county.name for c, county in counties.items()}, catalogue.city.code: catalogue.city.name})

    # -- what-if ---------------------------------------------------------------------------------

    def scenario_from(current, params) -> whatif.Scenario:
        form = {k: params.get(k) for k in params.keys() if k != "drop"}
        form["drop"] = list(params.getlist("drop")) if hasattr(params, "getlist") else params.get("drop", "")
        return whatif.Scenario.from_form(current, form)

    @app.get("/analyst/{year}/whatif")
    def whatif_page(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        current = load(year, version_of(request))
        if current is None:
            raise h.Denied(f"{year} 年度尚未出具评价报告，无法做假设分析。", 404)
        q = request.query_params
        error, outcome = "", None
        asked = "normalise" in q
        try:
            scenario = scenario_from(current, q) if asked else whatif.Scenario.issued(current)
        except whatif.ScenarioError as exc:
            error, scenario = str(exc), whatif.Scenario.issued(current)
        if asked and not error:
            outcome = whatif.compare(current, catalogue, scenario)
            if q.get("format") == "xlsx":  # not audited: a what-if writes nothing to the ledgers
                return h.download(whatif.xlsx(outcome, current), f"{year}年度第{current.version}版_假设分析.xlsx", XLSX)
        moved_only = q.get("moved") == "1"
        page_no = int(q["page"]) if q.get("page", "").isdigit() else 1
        shown, pages_n = whatif.rows(outcome, moved_only=moved_only, page=page_no) if outcome else (None, 1)
        params = [(k, v) for k, v in q.multi_items() if k not in ("page", "format", "moved")]

        def link(**change) -> str:
            extra = [(k, v) for k, v in change.items() if v]
            return f"/analyst/{year}/whatif?" + urlencode(params + extra)

        return page(request, "analyst_whatif.html", account, csrf, year=year, issued=current, scenario=scenario,
                    outcome=outcome, shown=shown, pages=pages_n, page_no=min(max(1, page_no), pages_n),
                    moved_only=moved_only, error=error, link=link, params=params,
                    indicators=[(i.id, i.name, i.dimension) for i in catalogue.indicators
                                if i.id in current.spec.indicators.index],
                    normalise_names=whatif.NORMALISE, aggregate_names=whatif.AGGREGATE,
                    saved=q.get("saved", "")[:200], county_url=county_url)

    @app.post("/analyst/{year}/whatif/proposal")
    async def save_proposal(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > 64 * 1024:
            raise h.Denied("表单内容过长。", 413)
        form_data = await request.form(max_files=0, max_fields=200)
        h.check_csrf(csrf, form_data.get("csrf_token"), request, account.username)
        current = load(year, int(form_data["v"]) if str(form_data.get("v", "")).isdigit() else None)
        if current is None:
            raise h.Denied(f"{year} 年度尚未出具评价报告。", 404)
        try:
            scenario = scenario_from(current, form_data)
            outcome = whatif.compare(current, catalogue, scenario)
            from evaluation.catalogue import default_config_dir

            path = whatif.save_proposal(config_dir or default_config_dir(), str(form_data.get("name", "")), outcome,
                                        current, catalogue, author=account.username, now=dt.datetime.now().astimezone())
        except whatif.ScenarioError as exc:
            return RedirectResponse(f"/analyst/{year}/whatif?saved={quote('未保存：' + str(exc))}", status_code=303)
        # not audited: a what-if leaves the ledgers as they were; the proposal names its author and time
        said = f"已保存为提案 proposals/{path.name}（未采用，不影响任何已出具的报告）"
        back = [(k, v) for k, v in form_data.multi_items() if k not in ("csrf_token", "name")]
        return RedirectResponse(f"/analyst/{year}/whatif?" + urlencode(back + [("saved", said)]), status_code=303)

    # -- distribution ----------------------------------------------------------------------------

    def recipients():
        from evaluation.distribution.recipients import load_recipients

        return load_recipients(catalogue, config_dir=config_dir)

    @app.get("/analyst/{year}/distribution")
    def distribution_page(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        found = versions.versions(out_dir, year)
        q = request.query_params
        channel = q.get("channel") if q.get("channel") in ("outbox", "email") else "outbox"
        job = reissuer.refresh(reissuer.distribution(year))
        rows, version, problem = [], None, ""
        if found:
            version = version_of(request) if version_of(request) in found else found[-1]
            manifest = versions.read_manifest(versions.year_dir(out_dir, year) / f"v{version}")
            try:
                with h.deliveries() as book:
                    rows = delivery.status(book, manifest, recipients(), catalogue, channel)
            except Exception as exc:  # noqa: BLE001 - a recipients file with a problem: said on the page
                problem = str(exc)
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in delivery.STATUS_ZH}
        return page(request, "analyst_distribution.html", account, csrf, year=year, years=h.years_shown(year),
                    found=found, version=version, channel=channel, rows=rows, counts=counts, job=job,
                    problem=problem, message=q.get("message", "")[:200])

    @app.post("/analyst/{year}/distribution")
    async def distribute(request: Request, year: int):
        account, csrf = analyst(request)
        year = year_ok(year)
        form = await h.small_form(request)
        h.check_csrf(csrf, form.get("csrf_token"), request, account.username)
        found = versions.versions(out_dir, year)
        version = int(form["version"]) if form.get("version", "").isdigit() else None
        channel = form.get("channel", "outbox")
        if version not in found or channel not in ("outbox", "email"):
            raise h.Denied("没有这个版本或发送方式。", 400)

        def send_locally(job):
            from evaluation import operations
            from evaluation.resources import utc_now

            book = recipients()
            smtp = book.smtp if channel == "email" else None
            if channel == "email" and smtp is None:
                raise RuntimeError("收件人配置中没有 smtp 设置，无法通过邮件发送。")
            job.lines.append(f"开始分发 {year} 年第 {version} 版（{'邮件' if channel == 'email' else '发件箱'}）")
            with h.deliveries() as deliveries:
                done = operations.distribute(deliveries, out_dir, year, version, book, catalogue, channel,
                                             now=utc_now, smtp=smtp)
            c = done.counts()
            job.lines.append(f"送达 {c.get('delivered', 0)} 份，此前已送达 {c.get('skipped', 0)} 份，"
                             f"失败 {c.get('failed', 0)} 份，结果不确定 {c.get('uncertain', 0)} 份。")
            if done.stopped:
                job.lines.append(done.stopped)

        try:
            job = await run_in_threadpool(reissuer.distribute, year, version, channel, account.username, send_locally)
        except Busy as exc:
            return RedirectResponse(f"/analyst/{year}/distribution?message={quote(str(exc))}", status_code=303)
        h.audit(request, account.username, "distribute", f"{year} v{version} {channel}", detail=f"via {job.via}")
        return RedirectResponse(f"/analyst/{year}/distribution?v={version}&channel={channel}", status_code=303)
