"""The bureaus' web portal: sign in, download the form, upload, see the check at once, submit, follow it.

Server-rendered Chinese pages (Jinja2, autoescaped), every asset served here (no CDN). Request handlers
only authenticate, authorise, read the request and pick a page: what the portal *does* is in
`evaluation.portal` (tables, checks, submissions), `evaluation.accounts` (accounts, throttling, audit)
and `evaluation.ingest.forms` (the blank form).

Authorisation is checked on every request: a *bureau* account sees and submits its own department's
tables only (anything else: 403 and an audit line); an *analyst* sees every department; an *admin*
manages accounts and reads the audit trail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from evaluation import portal
from evaluation.accounts import ACTIONS_ZH, OUTCOMES_ZH, ROLES, Account, AccountError, Accounts
from evaluation.catalogue import Catalogue, load_catalogue
from evaluation.ledger import Ledger
from evaluation.resources import local_time, open_deliveries, open_ledger
from web import workbench
from web.jobs import Reissuer
from web.security import LOGIN_COOKIE, SESSION_COOKIE, Signer, same_token, secret_key
from web.uploads import Refused, read_upload

HERE = Path(__file__).resolve().parent
FORM_LIMIT = 64 * 1024  # bytes of an ordinary (non-upload) form


@dataclass
class Settings:
    data_dir: Path
    out_dir: Path
    config_dir: Path | None = None
    ledger_url: str | None = None
    max_upload_bytes: int = 20 * 2**20
    session_seconds: int = 8 * 3600
    secure_cookies: bool = False  # set behind HTTPS
    prefect_api_url: str | None = None
    year: int | None = None  # the year the pages open on (default: the latest with submissions)
    extra: dict = field(default_factory=dict)


class SignInNeeded(Exception):
    def __init__(self, expired: bool = False):
        self.expired = expired


class Denied(Exception):
    def __init__(self, message: str, status: int = 403):
        self.message, self.status = message, status


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_app(settings: Settings) -> FastAPI:
    catalogue: Catalogue = load_catalogue(settings.config_dir)
    ledger: Ledger = open_ledger(settings.out_dir, settings.ledger_url)
    accounts = Accounts.at(settings.out_dir, settings.ledger_url)
    signer = Signer(secret_key(settings.out_dir / "ledger"), settings.session_seconds)
    reissuer = Reissuer(data_dir=settings.data_dir, out_dir=settings.out_dir, config_dir=settings.config_dir,
                        ledger_url=settings.ledger_url, prefect_api_url=settings.prefect_api_url,
                        log_dir=settings.out_dir / "ledger" / "portal-runs")
    check_lock = threading.Lock()  # one GX check at a time (the GX context is not thread-safe)
    gate_holder: dict = {}

    def gate():
        from evaluation.validation import Gate

        return gate_holder.setdefault("gate", Gate())

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = local_time
    departments = {k: d.name for k, d in catalogue.departments.items() if k in catalogue.sources}
    env.globals.update(city=catalogue.city.name, roles=ROLES, department_names=departments, actions_zh=ACTIONS_ZH,
                       outcomes_zh=OUTCOMES_ZH)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        def warm():  # the GX context takes seconds to make: not on the first bureau's upload
            with check_lock:
                gate().ctx
            import scipy.stats  # noqa: F401 - the what-if's rank correlation: not on the first what-if


        threading.Thread(target=warm, name="gx-warm", daemon=True).start()
        try:
            yield
        finally:
            reissuer.stop()
            ledger.close()
            accounts.close()

    app = FastAPI(title="两山转化绩效评价 · 数据报送门户", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.settings, app.state.reissuer, app.state.accounts = settings, reissuer, accounts

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- helpers ---------------------------------------------------------------------------------

    def page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(request=request, **context)
        return HTMLResponse(html, status_code=status)

    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def audit(request: Request, actor: str, action: str, target: str = "", outcome: str = "ok", detail: str = ""):
        accounts.audit(actor, action, now=_now(), target=target, outcome=outcome, address=address(request),
                       detail=detail)

    def signed_in(request: Request) -> tuple[Account, str]:
        """The account of this request's session and its CSRF token (else SignInNeeded)."""
        session, problem = signer.read_session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise SignInNeeded(expired=problem == "expired")
        account = accounts.get(session["u"])
        if account is None or not account.active or account.password_stamp != session["p"]:
            raise SignInNeeded(expired=True)
        return account, session["c"]

    def may_see(request: Request, account: Account, department: str) -> None:
        if department not in departments:
            raise Denied("没有这个部门。", 404)
        if not account.may_see(department):
            audit(request, account.username, "denied", f"{request.method} {request.url.path}", "denied",
                  f"account of {account.department or account.role} asked for {department}")
            mine = departments.get(account.department or "", "")
            raise Denied(f"无权访问：本账户只能查看和报送{mine}的数据。" if mine else "无权访问该页面。")

    def bureau_access(request: Request, department: str) -> tuple[Account, str]:
        """The signed-in account, allowed to see `department` (else SignInNeeded / Denied), and its CSRF token."""
        account, csrf = signed_in(request)
        may_see(request, account, department)
        return account, csrf

    def year_of(request: Request) -> int:
        raw = request.query_params.get("year", "")
        if raw.isdigit() and 1990 <= int(raw) <= 2100:
            return int(raw)
        return default_year()

    def default_year() -> int:
        if settings.year:
            return settings.year
        years = [s["year"] for s in ledger.submissions()]
        return max(years) if years else _now().year - 1

    def years_shown(year: int) -> list[int]:
        known = {s["year"] for s in ledger.submissions()}
        return sorted(known | {year, default_year()} | {_now().year - 1}, reverse=True)[:8]

    async def small_form(request: Request) -> dict:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > FORM_LIMIT:
            raise Denied("表单内容过长。", 413)
        form = await request.form(max_files=0, max_fields=20)
        return {k: str(v) for k, v in form.items()}

    def check_csrf(expected: str, given: str | None, request: Request, actor: str) -> None:
        if not same_token(expected, given):
            audit(request, actor, "csrf", f"{request.method} {request.url.path}", "denied", "missing or wrong CSRF token")
            raise Denied("页面已过期或缺少安全令牌（CSRF），操作未执行；请刷新页面后重试。")

    # -- errors ----------------------------------------------------------------------------------

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded):
        response = RedirectResponse("/login" + ("?expired=1" if exc.expired else ""), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(Denied)
    async def _denied(request: Request, exc: Denied):
        return page(request, "error.html", exc.status, message=exc.message, account=None)

    @app.exception_handler(404)
    async def _not_found(request: Request, exc):
        return page(request, "error.html", 404, message="页面不存在。", account=None)

    # -- signing in ------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, expired: int = 0, message: str = "") -> HTMLResponse:
        cookie, token = signer.login_token()
        response = page(request, "login.html", csrf=token, account=None,
                        message="登录已过期，请重新登录。" if expired else "")
        response.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict",
                            secure=settings.secure_cookies, path="/login")
        return response

    @app.post("/login")
    async def login(request: Request):
        form = await small_form(request)
        username = form.get("username", "").strip()[:64]
        if not same_token(signer.read_login_token(request.cookies.get(LOGIN_COOKIE)), form.get("csrf_token")):
            audit(request, username or "-", "sign-in", "", "denied", "missing or wrong CSRF token")
            raise Denied("登录页面已过期或缺少安全令牌，请刷新页面后重新登录。")
        outcome = await run_in_threadpool(lambda: accounts.sign_in(username, form.get("password", ""), now=_now(),
                                                                    address=address(request)))
        if outcome.account is None:
            audit(request, username or "-", "sign-in", "", "locked" if outcome.locked else "failed", outcome.message)
            cookie, token = signer.login_token()
            response = page(request, "login.html", 401 if not outcome.locked else 429, csrf=token, account=None,
                            message=outcome.message, username=username)
            response.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict",
                                secure=settings.secure_cookies, path="/login")
            return response
        audit(request, username, "sign-in")
        value, _ = signer.session(outcome.account.username, outcome.account.password_stamp)
        response = RedirectResponse("/", status_code=303)
        # a browser-session cookie: the signature's timestamp, checked here, decides when it expires
        response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax", secure=settings.secure_cookies,
                            path="/")
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request):
        account, csrf = signed_in(request)
        form = await small_form(request)
        check_csrf(csrf, form.get("csrf_token"), request, account.username)
        audit(request, account.username, "sign-out")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- home ------------------------------------------------------------------------------------

    @app.get("/")
    def home(request: Request):
        account, csrf = signed_in(request)
        if account.role == "bureau":
            return RedirectResponse(f"/bureau/{quote(account.department or '')}", status_code=303)
        if account.role == "admin":
            return RedirectResponse("/admin", status_code=303)
        return RedirectResponse(f"/analyst/{year_of(request)}", status_code=303)

    # -- a bureau's pages ------------------------------------------------------------------------

    @app.get("/bureau/{department}")
    def bureau(request: Request, department: str):
        account, csrf = bureau_access(request, department)
        year = year_of(request)
        state = portal.table_state(ledger, settings.out_dir, department, year)
        allowed, correction, why = portal.may_submit(ledger, catalogue, settings.out_dir, department, year)
        shown = years_shown(year)
        by_year = [(y, portal.table_state(ledger, settings.out_dir, department, y)) for y in shown]
        return page(request, "bureau.html", account=account, csrf=csrf, year=year, years=shown, by_year=by_year,
                    department=department, department_name=departments[department], state=state,
                    source_kind=portal.KIND_NAMES.get(catalogue.sources[department].kind, ""),
                    portal_source=catalogue.sources[department].kind == "portal", may_upload=allowed,
                    correction=correction, why_not=why, job=reissuer.status(year),
                    limit_mb=settings.max_upload_bytes // 2**20,
                    history=portal.submissions_of(ledger, settings.out_dir, department))

    @app.get("/bureau/{department}/form")
    def blank_form(request: Request, department: str):
        from evaluation.ingest.forms import make_form

        account, _ = bureau_access(request, department)
        year = year_of(request)
        data = make_form(catalogue, department, year)
        audit(request, account.username, "download-form", f"{department} {year}")
        return _download(data, f"{departments[department]}_{year}年填报表.xlsx",
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @app.post("/bureau/{department}/upload")
    async def upload(request: Request, department: str):
        account, csrf = bureau_access(request, department)  # before a byte of the body is read
        try:
            form = await read_upload(request, limit=settings.max_upload_bytes,
                                     check_token=lambda fields: same_token(csrf, fields.get("csrf_token")))
        except Refused as exc:
            audit(request, account.username, "upload", department, "denied" if exc.status == 403 else "refused",
                  f"{exc.message} (HTTP {exc.status}; {exc.read} bytes of the body read)")
            return page(request, "error.html", exc.status, message=exc.message, account=account, csrf=csrf,
                        back=f"/bureau/{department}")
        year_text = form.fields.get("year", "")
        if not (year_text.isdigit() and 1990 <= int(year_text) <= 2100):
            return page(request, "error.html", 400, message="请选择报送年度。", account=account, csrf=csrf,
                        back=f"/bureau/{department}")
        year = int(year_text)
        if form.file_name is None or not form.file_name.strip():
            return page(request, "error.html", 400, message="请先选择要上传的文件。", account=account, csrf=csrf,
                        back=f"/bureau/{department}?year={year}")

        def check():
            with check_lock:
                return portal.check_upload(ledger, catalogue, department, year, form.data, form.file_name, gate=gate())

        checked = await run_in_threadpool(check)
        upload_id = accounts.save_upload(
            department=department, year=year, username=account.username, sha256=checked.sha256,
            original_name=checked.name, size=checked.size, status=checked.status, message=checked.message,
            report=json.dumps(checked.report, ensure_ascii=False), uploaded_at=_now().isoformat(timespec="seconds"))
        audit(request, account.username, "upload", f"{department} {year} {checked.name}",
              {"accepted": "ok", "duplicate": "refused"}.get(checked.status, "rejected"),
              f"sha256 {checked.sha256}; {checked.status}")
        return RedirectResponse(f"/bureau/{quote(department)}/uploads/{upload_id}", status_code=303)

    def own_upload(department: str, upload_id: str) -> dict:
        found = accounts.upload(upload_id)
        if found is None or found["department"] != department:
            raise Denied("没有这个上传记录。", 404)
        return found

    @app.get("/bureau/{department}/uploads/{upload_id}")
    def upload_page(request: Request, department: str, upload_id: str):
        account, csrf = bureau_access(request, department)
        found = own_upload(department, upload_id)
        allowed, correction, why = portal.may_submit(ledger, catalogue, settings.out_dir, department, found["year"])
        return page(request, "upload.html", account=account, csrf=csrf, department=department,
                    department_name=departments[department], upload=found, report=json.loads(found["report"] or "{}"),
                    may_submit=allowed and found["status"] == "accepted" and not found["submission_id"],
                    correction=correction, why_not=why, year=found["year"])

    @app.post("/bureau/{department}/uploads/{upload_id}/submit")
    async def submit(request: Request, department: str, upload_id: str):
        account, csrf = bureau_access(request, department)
        form = await small_form(request)
        check_csrf(csrf, form.get("csrf_token"), request, account.username)
        found = own_upload(department, upload_id)
        if found["status"] != "accepted":
            raise Denied("该文件未通过校验，不能提交；请更正后重新上传。", 409)
        if found["submission_id"]:
            return RedirectResponse(f"/bureau/{quote(department)}?year={found['year']}", status_code=303)
        reason = form.get("reason", "").strip()[:500]

        def record():
            from evaluation.resources import utc_now

            with check_lock:
                return portal.submit(ledger, catalogue, settings.out_dir, department, found["year"], found["sha256"],
                                     found["original_name"], account=account.username, reason=reason,
                                     received_at=utc_now(), gate=gate())

        checked, recorded, correction = await run_in_threadpool(record)
        if recorded is None:
            audit(request, account.username, "submit", f"{department} {found['year']} {found['original_name']}",
                  "refused", checked.message[:500])
            return page(request, "error.html", 409, message=checked.message or "该文件未能提交。", account=account,
                        csrf=csrf, back=f"/bureau/{department}/uploads/{upload_id}")
        accounts.mark_submitted(upload_id, recorded.submission_id)
        audit(request, account.username, "correct" if correction else "submit",
              f"{department} {found['year']} {found['original_name']}", "ok",
              f"submission {recorded.submission_id}" + (f"; supersedes {recorded.supersedes}" if recorded.supersedes
                                                        else "") + (f"; reason: {reason}" if reason else ""))
        if correction and recorded.new:
            try:
                reissuer.start(found["year"], recorded.submission_id, department, found["original_name"])
            except Exception as exc:  # noqa: BLE001 - recorded; the analysts can re-run by hand
                audit(request, account.username, "rerun", str(found["year"]), "failed", f"{type(exc).__name__}: {exc}")
        return RedirectResponse(f"/bureau/{quote(department)}?year={found['year']}&submitted=1", status_code=303)

    def own_submission(department: str, submission_id: str) -> dict:
        found = ledger.submission(submission_id[:64])
        if found is None or found["department"] != department:
            raise Denied("没有这个报送记录。", 404)
        return found

    @app.get("/bureau/{department}/submissions/{submission_id}")
    def submission_page(request: Request, department: str, submission_id: str):
        account, csrf = bureau_access(request, department)
        found = own_submission(department, submission_id)
        return page(request, "submission.html", account=account, csrf=csrf, department=department,
                    department_name=departments[department], sub=found, lines=portal.report_of(found),
                    via=portal.KIND_NAMES.get(found["kind"], found["kind"]),
                    used_in=portal.used_in(settings.out_dir, found["year"]).get(found["id"], []))

    @app.get("/bureau/{department}/submissions/{submission_id}/file")
    def submission_file(request: Request, department: str, submission_id: str):
        account, _ = bureau_access(request, department)
        found = own_submission(department, submission_id)
        return submitted_file(request, account, found)

    def submitted_file(request: Request, account: Account, found: dict) -> Response:
        """A submission's bytes as the bureau sent them, under its own name (audited)."""
        audit(request, account.username, "download-file", f"{found['department']} {found['year']} {found['id']}")
        name = found["original_name"]
        kind = "text/csv" if name.lower().endswith((".csv", ".txt")) else "application/octet-stream"
        return _download(ledger.raw_bytes(found["id"]), name, kind)

    # -- the analysts' workbench (web/workbench.py) ----------------------------------------------

    def history(year: int, county: str | None = None):
        from evaluation.operations import history as year_history

        with open_deliveries(settings.out_dir, settings.ledger_url) as deliveries:
            return year_history(ledger, deliveries, settings.out_dir, year, county)

    workbench.install(app, SimpleNamespace(
        settings=settings, catalogue=catalogue, ledger=ledger, reissuer=reissuer, departments=departments,
        all_departments={k: d.name for k, d in catalogue.departments.items()}, Denied=Denied, page=page,
        audit=audit, signed_in=signed_in, small_form=small_form, check_csrf=check_csrf, year_of=year_of,
        years_shown=years_shown, history=history, download=_download, submitted_file=submitted_file,
        check_lock=check_lock, gate=gate,
        table_state=lambda department, year: portal.table_state(ledger, settings.out_dir, department, year),
        deliveries=lambda: open_deliveries(settings.out_dir, settings.ledger_url)))

    # -- accounts (admin) ------------------------------------------------------------------------

    def admin_only(request: Request) -> tuple[Account, str]:
        account, csrf = signed_in(request)
        if account.role != "admin":
            audit(request, account.username, "denied", f"{request.method} {request.url.path}", "denied",
                  "not an admin")
            raise Denied("无权访问：只有系统管理员可以管理账户。")
        return account, csrf

    @app.get("/admin")
    def admin(request: Request, message: str = ""):
        account, csrf = admin_only(request)
        return page(request, "admin.html", account=account, csrf=csrf, users=accounts.list(),
                    departments=departments, audit=accounts.audit_lines(limit=100), message=message[:200])

    @app.post("/admin/accounts")
    async def add_account(request: Request):
        account, csrf = admin_only(request)
        form = await small_form(request)
        check_csrf(csrf, form.get("csrf_token"), request, account.username)
        try:
            made = await run_in_threadpool(
                lambda: accounts.add(form.get("username", "").strip(), form.get("password", ""),
                                     form.get("role", ""), now=_now(), department=form.get("department") or None,
                                     display_name=form.get("display_name", ""), departments=departments))
        except AccountError as exc:
            return page(request, "admin.html", 400, account=account, csrf=csrf, users=accounts.list(),
                        departments=departments, audit=accounts.audit_lines(limit=100), message=str(exc))
        audit(request, account.username, "account-add", made.username, detail=f"{made.role} {made.department or ''}")
        return RedirectResponse(f"/admin?message={quote('已创建账户 ' + made.username)}", status_code=303)

    @app.post("/admin/accounts/{username}/{action}")
    async def change_account(request: Request, username: str, action: str):
        account, csrf = admin_only(request)
        form = await small_form(request)
        check_csrf(csrf, form.get("csrf_token"), request, account.username)
        try:
            if action == "disable":
                accounts.set_active(username, False)
                said = f"已停用账户 {username}"
            elif action == "enable":
                accounts.set_active(username, True)
                said = f"已启用账户 {username}"
            elif action == "reset-password":
                await run_in_threadpool(accounts.reset_password, username, form.get("password", ""))
                said = f"已重置 {username} 的密码"
            else:
                raise Denied("未知操作。", 404)
        except AccountError as exc:
            return RedirectResponse(f"/admin?message={quote(str(exc))}", status_code=303)
        audit(request, account.username, f"account-{action}", username)
        return RedirectResponse(f"/admin?message={quote(said)}", status_code=303)

    return app


def _download(data: bytes, name: str, media_type: str) -> Response:
    """A file to save: the name (the bureau's, or ours) is only a header value, RFC 5987-encoded."""
    ascii_name = "".join(c if c.isascii() and c.isalnum() or c in "._-" else "_" for c in name) or "file"
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
    })
