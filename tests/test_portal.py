"""The bureaus' web portal, end to end: a real browser (Debian's chromium through Selenium) and real HTTP
against the app served by uvicorn, on a workspace whose 生态环境局 reports through the portal.

The browser test runs first (the file's tests share one workspace, in order): it signs in as the bureau,
downloads the form, uploads a good file and submits it, lets the annual run score it, uploads a file
with planted errors, submits a correction with a reason, sees v2 issued, and is refused another
bureau's page. Its screenshots are in reports/screenshots/portal/.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import prefect_home
from tests.webtools import (
    CHROMEDRIVER, CHROMIUM, PASSWORD, add_account, chrome, click_and_wait, filled_form, served, shot, workspace,
)

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian's chromium and chromium-driver are not installed (make test installs them)")

YEAR = 2023


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("portal")
    home = prefect_home(root / "prefect-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(home))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.delenv("PREFECT_API_URL", raising=False)
        ws = workspace(root)
        add_account(ws, "eco01", "bureau", "eco", "王芳")
        add_account(ws, "stats01", "bureau", "stats", "李强")
        add_account(ws, "water01", "bureau", "water", "赵敏")
        add_account(ws, "analyst01", "analyst", name="陈静")
        add_account(ws, "admin01", "admin", name="管理员")
        with served(ws) as (url, app):
            yield ws, url, app, root


def _cli(*args: str):
    """A command that starts no Prefect, in this process: (exit code, what it printed)."""
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def _run(ws, *args, timeout=300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait_for(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    return predicate()


def _wait_text(driver, element_id: str, expected: str) -> None:
    """Wait until the element of that id reads `expected` (the page before may have one of the same id)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(
        lambda d: d.find_element(By.ID, element_id).text == expected)


def test_a_bureau_reports_through_the_portal_in_a_real_browser(site):
    from selenium.webdriver.common.by import By

    from evaluation import versions
    from evaluation.resources import open_ledger

    ws, url, app, root = site
    downloads = root / "downloads"
    downloads.mkdir()
    driver = chrome(downloads)
    try:
        # sign in
        driver.get(url + "/")
        assert "登录" in driver.title
        shot(driver, "0-sign-in")
        driver.find_element(By.ID, "username").send_keys("eco01")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        click_and_wait(driver, driver.find_element(By.ID, "sign-in"))
        assert "生态环境局 · 2023 年度数据报送" in _text(driver)
        assert driver.find_element(By.ID, "state").text == "尚未收到"
        assert "王芳（部门填报人员 · 生态环境局）" in _text(driver)
        shot(driver, "1-bureau-page")

        # download the blank form and fill it in as the bureau would
        driver.find_element(By.ID, "download-form").click()
        form = _wait_for(lambda: [p for p in downloads.glob("*.xlsx")], 30)
        assert form and form[0].name == "生态环境局_2023年填报表.xlsx"
        blank = form[0].read_bytes()
        good = root / "生态环境局_2023年填报表（已填）.xlsx"
        good.write_bytes(filled_form(blank, ws, "eco", YEAR))

        # upload a good file: checked at once, accepted; submit it
        driver.find_element(By.ID, "file").send_keys(str(good))
        click_and_wait(driver, driver.find_element(By.ID, "upload"))
        assert "校验通过" in driver.find_element(By.ID, "verdict").text
        shot(driver, "2-upload-accepted")
        click_and_wait(driver, driver.find_element(By.ID, "submit"))
        assert "已提交" in driver.find_element(By.ID, "submitted").text
        assert driver.find_element(By.ID, "state").text == "已收到并采用，等待年度评价"
        shot(driver, "3-submitted")
        with open_ledger(ws.out) as ledger:
            current = ledger.current("eco", YEAR)
        assert current["kind"] == "portal" and current["submitted_by"] == "eco01"
        assert current["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()

        # the annual run scores what the portal received: the same submission (and sha256) in its manifest
        done = _run(ws, "run", "--year", str(YEAR), "--data", str(ws.data), "--out", str(ws.out),
                    "--config", str(ws.config), "--run-date", "2024-03-15")
        assert done.returncode == 0, done.stdout + done.stderr
        manifest = versions.read_manifest(versions.year_dir(ws.out, YEAR) / "v1")
        inputs = {i["department"]: i for i in manifest["inputs"]}
        assert inputs["eco"]["submission_id"] == current["id"]
        assert current["sha256"] in json.dumps(inputs["eco"])
        driver.refresh()
        assert driver.find_element(By.ID, "state").text == "已收到并采用，已用于第 1 版评价报告"

        # a file with planted errors: each one shown with its row, county and column
        def plant(code, var, value):
            if code == "621221" and var == "good_air_days":
                return 150  # 成县: over 100 %
            if code == "621222" and var == "eqi":
                return "七十"  # 文县: not a number
            return value

        bad = root / "生态环境局_2023年填报表（有误）.xlsx"
        bad.write_bytes(filled_form(blank, ws, "eco", YEAR, plant))
        driver.find_element(By.ID, "file").send_keys(str(bad))
        click_and_wait(driver, driver.find_element(By.ID, "upload"))
        assert "校验未通过" in driver.find_element(By.ID, "verdict").text
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, "#findings tbody tr")]
        errors = [r for r in rows if r[0] == "错误"]
        assert any(r[1] == "5" and r[2] == "成县" and r[3].startswith("空气质量优良天数比例") and "150" in r[5]
                   for r in errors), rows
        assert any(r[1] == "6" and r[2] == "文县" and r[3].startswith("生态质量指数") and "七十" in r[5]
                   for r in errors), rows
        driver.implicitly_wait(0)
        assert not driver.find_elements(By.ID, "submit")  # nothing to submit
        driver.implicitly_wait(20)
        shot(driver, "4-upload-rejected")

        # a correction once v1 is issued: a reason is required, then v2 is issued by the same annual run
        fixed = root / "生态环境局_2023年填报表（更正）.xlsx"
        fixed.write_bytes(filled_form(blank, ws, "eco", YEAR,
                                      lambda code, var, value: 76.90 if (code, var) == ("621202", "eqi") else value))
        driver.get(url + "/bureau/eco")
        driver.find_element(By.ID, "file").send_keys(str(fixed))
        click_and_wait(driver, driver.find_element(By.ID, "upload"))
        assert "校验通过" in driver.find_element(By.ID, "verdict").text
        assert "本次提交将作为更正" in _text(driver)
        driver.find_element(By.ID, "reason").send_keys("武都区EQI录入错误，按监测站复核值更正")
        shot(driver, "5-correction-reason")
        click_and_wait(driver, driver.find_element(By.ID, "submit"))
        assert "更正已登记" in driver.find_element(By.ID, "submitted").text
        assert "正在重新评价 2023 年度" in driver.find_element(By.ID, "rerun").text
        shot(driver, "6-correction-rerunning")

        def issued_v2():  # the run has ended (the version is published a moment before its process exits)
            driver.get(url + "/bureau/eco")
            return ("已用于第 2 版" in driver.find_element(By.ID, "state").text
                    and "正在重新评价" not in driver.find_element(By.ID, "rerun").text)

        assert _wait_for(issued_v2, 240, 3), _text(driver)
        assert "已按更正后的数据重新评价" in driver.find_element(By.ID, "rerun").text
        shot(driver, "7-v2-issued")
        v2 = versions.read_manifest(versions.year_dir(ws.out, YEAR) / "v2")
        assert any("武都区EQI录入错误" in line for line in v2["revisions"]["621202"])

        # another bureau's page: refused
        driver.get(url + "/bureau/stats")
        assert "无权访问：本账户只能查看和报送生态环境局的数据。" in _text(driver)
        shot(driver, "8-forbidden")
    finally:
        driver.quit()


# -- API level --------------------------------------------------------------------------------------


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, follow_redirects=False, timeout=60)


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(url: str, username: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A client signed in as `username` and its session's CSRF token."""
    client = _client(url)
    token = _token(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    page = client.get("/", follow_redirects=True)
    return client, _token(page.text)


def _audit(ws, **kw) -> list[dict]:
    from evaluation.accounts import Accounts

    with Accounts.at(ws.out) as accounts:
        return accounts.audit_lines(**kw)


def _upload(client, csrf, name, data, department="eco", year=YEAR, token_first=True):
    fields = {"csrf_token": csrf, "year": str(year)} if csrf is not None else {"year": str(year)}
    response = client.post(f"/bureau/{department}/upload", data=fields, files={"file": (name, data)})
    if response.status_code == 303:
        response = client.get(response.headers["location"])
    return response


def _sentence(html: str) -> str:
    found = re.search(r'id="(?:verdict|message)">(.*?)</p>', html, re.S)
    return re.sub(r"\s+", " ", found.group(1)).strip() if found else ""


def test_a_post_without_its_csrf_token_is_refused(site):
    ws, url, _, _ = site
    client, csrf = sign_in(url, "stats01")
    refused = client.post("/logout", data={})
    assert refused.status_code == 403 and "安全令牌" in refused.text
    refused = client.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    upload = _upload(client, None, "统计局.csv", b"x", department="stats")
    assert upload.status_code == 403 and "缺少安全令牌，未接收文件" in upload.text
    # a token from another session does not pass either
    _, other = sign_in(url, "water01")
    assert client.post("/logout", data={"csrf_token": other}).status_code == 403
    assert client.get("/bureau/stats").status_code == 200  # still signed in: nothing was done
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    lines = _audit(ws, actor="stats01")
    assert sum(1 for a in lines if a["action"] in ("csrf", "upload") and a["outcome"] == "denied") >= 3
    assert lines[0]["action"] == "sign-out" and lines[0]["address"] == "127.0.0.1"


def test_repeated_wrong_passwords_lock_the_name_in_chinese(site):
    ws, url, _, _ = site
    client = _client(url)
    said = []
    for _ in range(5):
        token = _token(client.get("/login").text)
        response = client.post("/login", data={"username": "water01", "password": "wrong-password", "csrf_token": token})
        said.append(_sentence(response.text) or re.search(r'role="alert">(.*?)<', response.text).group(1))
    assert said[0] == "用户名或密码不正确。"
    assert "再错 1 次将锁定 15 分钟" in said[3]
    assert said[4].startswith("连续 5 次密码错误，该账户已锁定 15 分钟")
    token = _token(client.get("/login").text)
    locked = client.post("/login", data={"username": "water01", "password": PASSWORD, "csrf_token": token})
    assert locked.status_code == 429 and "请 15 分钟后再试" in locked.text  # even the right password waits
    # an unknown name is answered exactly like a known one
    token = _token(client.get("/login").text)
    unknown = client.post("/login", data={"username": "nobody", "password": "wrong-password", "csrf_token": token})
    assert "用户名或密码不正确。" in unknown.text
    outcomes = [a["outcome"] for a in _audit(ws, actor="water01", action="sign-in")]
    assert outcomes.count("failed") == 4 and outcomes.count("locked") == 2
    # an admin's password reset lifts the lock
    from evaluation.accounts import Accounts

    with Accounts.at(ws.out) as accounts:
        accounts.reset_password("water01", PASSWORD)
    sign_in(url, "water01")


def _raw_upload(url: str, csrf: str, cookie: str, *, total: int, declare: bool) -> tuple[bytes, int]:
    """Send an upload of `total` bytes over a raw socket, stopping as soon as the server answers:
    (its answer, bytes of the body sent)."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "----portaltest"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"year\"\r\n\r\n{YEAR}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + total + len(tail)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # little kept in flight by this side
    request = (f"POST /bureau/eco/upload HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               + (f"Content-Length: {length}\r\n" if declare else "Transfer-Encoding: chunked\r\n") + "\r\n").encode()
    sock.sendall(request)
    sent, answer = 0, b""
    chunk = b"1," * (32 * 1024)

    def send(data: bytes) -> None:
        sock.sendall(data if declare else f"{len(data):x}\r\n".encode() + data + b"\r\n")

    sock.setblocking(False)
    try:
        if not declare:
            send(head)
        for _ in range(total // len(chunk) if not declare else 0):
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            sock.setblocking(True)
            try:
                send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.setblocking(False)
            sent += len(chunk)
        sock.setblocking(True)
        sock.settimeout(30)
        while True:  # the whole answer: its headers, then content-length bytes of body
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0:
                declared = re.search(rb"content-length: (\d+)", answer[:head_end], re.I)
                if declared and len(answer) >= head_end + 4 + int(declared.group(1)):
                    break
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    finally:
        sock.close()
    return answer, sent


def test_an_oversized_upload_is_refused_while_it_streams(site):
    ws, _, _, _ = site
    with served(ws, max_upload_bytes=1 * 2**20) as (url, _):
        client, csrf = sign_in(url, "eco01")
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        # declared too large: refused from the headers, before a byte of the body is sent
        answer, sent = _raw_upload(url, csrf, cookie, total=200 * 2**20, declare=True)
        assert answer.startswith(b"HTTP/1.1 413") and sent == 0
        assert "文件超过 1 MB 上限，未接收" in answer.decode("utf-8", "replace")
        # not declared (chunked): refused once the limit is passed, long before the 200 MB are sent
        answer, sent = _raw_upload(url, csrf, cookie, total=200 * 2**20, declare=False)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # the client's count includes what the two sockets' buffers took in; the server's own is in the audit line
        assert sent < 64 * 2**20, f"{sent} bytes sent before the answer"
    refused = [a for a in _audit(ws, actor="eco01", action="upload") if a["outcome"] == "refused"]
    assert len(refused) >= 2 and all("上限" in a["detail"] for a in refused[:2])
    assert refused[1]["detail"].endswith("(HTTP 413; 0 bytes of the body read)")  # declared: nothing read
    read = int(re.search(r"; (\d+) bytes of the body read", refused[0]["detail"]).group(1))
    # past the limit by what the server was handed at once (on a busy machine, a few hundred KB), not 200 MB
    assert 2**20 < read < 4 * 2**20, read


def test_a_session_expires(site):
    ws, _, _, _ = site
    with served(ws, session_seconds=1) as (url, _):
        client, _ = sign_in(url, "analyst01")
        assert client.get("/", follow_redirects=True).status_code == 200
        time.sleep(2.2)
        expired = client.get("/bureau/eco")
        assert expired.status_code == 303 and expired.headers["location"] == "/login?expired=1"
        assert "登录已过期，请重新登录。" in client.get("/login?expired=1").text


def test_a_bureau_asking_for_another_bureaus_urls_gets_403_and_an_audit_line(site):
    from evaluation.resources import open_ledger

    ws, url, _, _ = site
    with open_ledger(ws.out) as ledger:
        stats = ledger.current("stats", YEAR)
    client, csrf = sign_in(url, "eco01")
    for path in ("/bureau/stats", f"/bureau/stats?year={YEAR}", f"/bureau/stats/form?year={YEAR}",
                 f"/bureau/stats/submissions/{stats['id']}", f"/bureau/stats/submissions/{stats['id']}/file"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "无权访问：本账户只能查看和报送生态环境局的数据。" in response.text
    upload = _upload(client, csrf, "统计局_2023年主要经济指标.xlsx", b"PK..", department="stats")
    assert upload.status_code == 403
    # its own files come back byte for byte, under the name it sent
    with open_ledger(ws.out) as ledger:
        own = ledger.current("eco", YEAR)
        kept = ledger.raw_bytes(own["id"])
    again = client.get(f"/bureau/eco/submissions/{own['id']}/file")
    assert again.status_code == 200 and again.content == kept
    assert hashlib.sha256(again.content).hexdigest() == own["sha256"]
    assert "filename*=UTF-8''" in again.headers["content-disposition"]
    # its own prefix does not open another bureau's file either
    assert client.get(f"/bureau/eco/submissions/{stats['id']}/file").status_code == 404
    assert client.get("/admin").status_code == 403
    denied = [a for a in _audit(ws, actor="eco01") if a["outcome"] == "denied"]
    assert {a["target"].split("?")[0] for a in denied} >= {"GET /bureau/stats", "GET /bureau/stats/form",
                                                           "POST /bureau/stats/upload", "GET /admin"}
    # an analyst sees every bureau
    analyst, _ = sign_in(url, "analyst01")
    assert analyst.get("/bureau/stats").status_code == 200
    overview = analyst.get("/", follow_redirects=True)
    assert overview.status_code == 200 and "统计局" in overview.text and "eco01" in overview.text


def _zip_bomb() -> bytes:
    """An .xlsx-looking zip whose sheet unpacks to 400 MB (about 400 KB packed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            block = b"0" * 2**20
            for _ in range(400):
                sheet.write(block)
    return buffer.getvalue()


def test_bad_uploads_each_get_one_sentence_and_nothing_is_accepted(site):
    from evaluation.catalogue import load_catalogue
    from evaluation.ingest.forms import make_form
    from evaluation.resources import open_ledger

    ws, url, _, root = site
    with open_ledger(ws.out) as ledger:
        before = ledger.current("eco", YEAR)
    client, csrf = sign_in(url, "eco01")
    catalogue = load_catalogue(ws.config)
    eco_form = (root / "downloads" / "生态环境局_2023年填报表.xlsx").read_bytes()
    current_bytes = (root / "生态环境局_2023年填报表（更正）.xlsx").read_bytes()
    cases = {
        "empty.csv": (b"", "是空文件（0 字节）"),
        "scan.pdf": (b"%PDF-1.4 ...", "不是 Excel 工作簿（.xlsx）或 CSV 文件"),
        "旧表.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "旧版 Excel（.xls）文件，无法读取"),
        "bomb.xlsx": (_zip_bomb(), "可能是压缩炸弹"),
        "统计局的表.xlsx": (make_form(catalogue, "stats", YEAR), "这是统计局的填报表，不是生态环境局的"),
        "去年的表.xlsx": (make_form(catalogue, "eco", YEAR - 1), "填报表的年度是 2022 年，与报送年度 2023 年不符"),
        "再次上传.xlsx": (current_bytes, "逐字节相同"),
        "..\\..\\<img src=x onerror=alert(1)>名单.csv": ("县区,说明\n1,2\n".encode(), "校验未通过"),
    }
    for name, (data, expected) in cases.items():
        response = _upload(client, csrf, name, data)
        sentence = _sentence(response.text)
        assert expected in sentence, (name, sentence)
        assert 'id="submit"' not in response.text, name
        assert "<img" not in response.text and ("&lt;img" in response.text or "<img" not in name), name
    with open_ledger(ws.out) as ledger:
        assert ledger.current("eco", YEAR) == before
        assert not ledger.verify()
    # the blank form itself (no figures) is rejected row by row, never accepted
    blank = _upload(client, csrf, "空白表.xlsx", eco_form)
    assert "校验未通过" in _sentence(blank.text) and 'id="submit"' not in blank.text


def test_audit_lines_for_each_action_and_history_audit_lists_them(site):
    ws, url, _, _ = site
    lines = _audit(ws, limit=1000)
    seen = {(a["actor"], a["action"], a["outcome"]) for a in lines}
    for expected in [("eco01", "sign-in", "ok"), ("eco01", "download-form", "ok"), ("eco01", "upload", "ok"),
                     ("eco01", "upload", "rejected"), ("eco01", "submit", "ok"), ("eco01", "correct", "ok"),
                     ("eco01", "denied", "denied"), ("water01", "sign-in", "locked"), ("stats01", "sign-out", "ok")]:
        assert expected in seen, expected
    correction = next(a for a in lines if a["action"] == "correct")
    assert "武都区EQI录入错误" in correction["detail"] and correction["address"] == "127.0.0.1"
    code, shown = _cli("history", "--audit", "--out", str(ws.out), "--limit", "500")
    assert code == 0, shown
    assert "报送门户操作记录" in shown and "eco01" in shown and "已锁定" in shown


def test_users_command_manages_accounts(site):
    ws, url, _, _ = site
    out = ["--out", str(ws.out)]
    code, said = _cli("users", "add", "forest01", "--role", "bureau", "--department", "forestry", "--name", "周林",
                      "--password", "forest-pass-2024", *out, "--config", str(ws.config))
    assert code == 0 and "已创建账户 forest01（部门填报人员，部门：林业和草原局）" in said, said
    sign_in(url, "forest01", "forest-pass-2024")
    code, said = _cli("users", "add", "x1", "--role", "analyst", "--password", "short", *out)
    assert code == 2 and "密码至少 10 个字符" in said
    assert _cli("users", "disable", "forest01", *out)[0] == 0
    client = _client(url)
    token = _token(client.get("/login").text)
    refused = client.post("/login", data={"username": "forest01", "password": "forest-pass-2024", "csrf_token": token})
    assert "该账户已停用" in refused.text
    code, listed = _cli("users", "list", *out)
    assert "forest01" in listed and "已停用" in listed


def test_an_analyst_sees_every_bureau_and_an_admin_manages_accounts_in_the_browser(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ws, url, _, root = site
    driver = chrome(root / "downloads-2")
    try:
        def sign_in_as(username: str) -> None:
            driver.get(url + "/login")
            driver.find_element(By.ID, "username").send_keys(username)
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            click_and_wait(driver, driver.find_element(By.ID, "sign-in"))

        sign_in_as("analyst01")
        assert "2023 年度各部门报送情况" in _text(driver)
        rows = {tr.find_elements(By.TAG_NAME, "td")[0].text: tr.find_elements(By.TAG_NAME, "td")[1].text
                for tr in driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")}
        assert len(rows) == 8 and "已用于第 2 版" in rows["生态环境局"] and "已用于第 1、2 版" in rows["统计局"]
        shot(driver, "9-analyst-overview")
        click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='退出登录']"))
        assert "登录" in driver.title

        sign_in_as("admin01")
        assert "账户管理" in _text(driver)
        form = driver.find_element(By.CSS_SELECTOR, "form[action='/admin/accounts']")
        form.find_element(By.NAME, "username").send_keys("tour01")
        form.find_element(By.NAME, "display_name").send_keys("孙悦")
        Select(form.find_element(By.NAME, "role")).select_by_value("bureau")
        Select(form.find_element(By.NAME, "department")).select_by_value("tourism")
        form.find_element(By.NAME, "password").send_keys("tourism-pass-2024")
        click_and_wait(driver, form.find_element(By.TAG_NAME, "button"))
        _wait_text(driver, "message", "已创建账户 tour01")
        listed = driver.find_element(By.ID, "accounts").text
        assert "tour01 孙悦 部门填报人员 文化和旅游局 启用" in listed or "tour01" in listed
        shot(driver, "10-admin-accounts")
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/admin/accounts/tour01/disable'] button"))
        _wait_text(driver, "message", "已停用账户 tour01")
    finally:
        driver.quit()
    lines = _audit(ws, actor="admin01")
    assert [a["action"] for a in lines[:2]] == ["account-disable", "account-add"]
