"""The analysts' workbench, end to end: Debian's chromium through Selenium against the app served by uvicorn.

The browser test runs first (the file's tests share one workspace, in order): an analyst signs in, starts
the year's evaluation and sees it complete, opens the map and clicks a county, follows a figure to its file
and row, makes a what-if that changes a rank, sees v2 after a bureau's correction and its diff, and
distributes to the outbox. Screenshots are in reports/screenshots/portal/ (w*.png).
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import prefect_home
from tests.webtools import CHROMEDRIVER, CHROMIUM, PASSWORD, add_account, chrome, click_and_wait, served, shot, workspace

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian's chromium and chromium-driver are not installed (make test installs them)")

YEAR = 2023
ANALYST_PAGES = ("/analyst", f"/analyst/{YEAR}", f"/analyst/{YEAR}/county/621202", f"/analyst/{YEAR}/county/621202/figure/eqi",
                 f"/analyst/{YEAR}/whatif", f"/analyst/{YEAR}/versions", f"/analyst/{YEAR}/distribution",
                 f"/analyst/{YEAR}/v/1/report/621202", f"/analyst/{YEAR}/v/1/workbook")
ANALYST_POSTS = (f"/analyst/{YEAR}/run", f"/analyst/{YEAR}/distribution", f"/analyst/{YEAR}/whatif/proposal")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("workbench")
    home = prefect_home(root / "prefect-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(home))
        mp.delenv("PREFECT_API_URL", raising=False)
        ws = workspace(root, portal=())  # every table of 2021-2023 is in the ledger, none issued yet
        add_account(ws, "analyst01", "analyst", name="陈静")
        add_account(ws, "eco01", "bureau", "eco", "王芳")
        add_account(ws, "admin01", "admin", name="管理员")
        with served(ws) as (url, app):
            yield ws, url, app, root


def sign_in(url: str, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    page = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                       follow_redirects=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return client, found.group(1) if found else ""


def _text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _wait_for(driver, text: str, timeout: float = 180) -> None:
    """Wait until the page (which refreshes itself while a run is going) shows `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in _text(driver):
                return
        except Exception:  # noqa: BLE001 - the page was reloading
            pass
        time.sleep(0.5)
    raise AssertionError(f"the page never showed {text!r}:\n{_text(driver)[:2000]}")


def _open(driver, url: str) -> None:
    """Load `url` and wait until its document is complete and settled (chromium may still be finishing the
    download a link started: an element found meanwhile can belong to a document that is going away)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete"
                                    and d.current_url.startswith(url.split("?")[0]))


def _submit(driver, element_id: str) -> None:
    """Click the button `element_id` and wait for the next page; once more if the page was replaced under it."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By

    for attempt in range(3):
        try:
            click_and_wait(driver, driver.find_element(By.ID, element_id))
            return
        except (StaleElementReferenceException, WebDriverException) as exc:
            if attempt == 2 or "document" not in str(exc):
                raise
            time.sleep(1)


def _downloaded(folder: Path, suffix: str, timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if p.stat().st_size > 0]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} was downloaded into {folder}")


def test_an_analyst_runs_the_year_follows_a_figure_tries_weights_reads_a_correction_and_distributes(site):
    from openpyxl import load_workbook
    from selenium.webdriver.common.by import By

    from evaluation import operations, versions
    from evaluation.catalogue import load_catalogue
    from evaluation.resources import open_ledger
    from tests.pdftools import pdf_text

    ws, url, _, root = site
    downloads = root / "downloads"
    driver = chrome(downloads)
    try:
        driver.get(url + "/login")
        driver.find_element(By.ID, "username").send_keys("analyst01")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        click_and_wait(driver, driver.find_element(By.ID, "sign-in"))
        assert f"{YEAR} 年度评价工作台" in _text(driver) and "尚未出具评价报告" in _text(driver)

        # 1. the run, in this process (no Prefect server), followed on the page until it is done
        _submit(driver, "run")
        _wait_for(driver, "已出具第 1 版")
        _wait_for(driver, "已完成")  # the job ends a moment after it says what it issued: the page refreshes once more
        assert "各县区综合评价图" in _text(driver) and "校验生态环境局" in _text(driver)
        shot(driver, "w1-year-at-a-glance")
        ranking = driver.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
        assert len(ranking) == 9 and ranking[0].find_elements(By.TAG_NAME, "td")[0].text == "1"

        # 2. the map: click 武都区
        county = driver.find_element(By.CSS_SELECTOR, f"#map a[href='/analyst/{YEAR}/county/621202']")
        click_and_wait(driver, county)
        assert "武都区 · 2023年度“两山”转化绩效评价报告" in _text(driver)
        page_score = driver.find_element(By.ID, "overall").text
        assert "稳健区间" in driver.find_element(By.ID, "rank-interval").text
        shot(driver, "w2-county")
        # the page and the PDF print the same figures (they are rendered from the same context)
        pdf = versions.year_dir(ws.out, YEAR) / "v1" / next(
            f for f in versions.read_manifest(versions.year_dir(ws.out, YEAR) / "v1")["outputs"] if f.startswith("621202_"))
        flat = re.sub(r"\s+", "", pdf_text(pdf))
        assert page_score in flat
        eqi_value = driver.find_element(By.CSS_SELECTOR, "#ind-eqi a.figure").text
        assert eqi_value in flat

        # 3. one figure to its file and row, and the file itself
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#ind-eqi a.figure"))
        body = _text(driver)
        assert "生态环境局_2023年生态环境质量.csv" in body and "第 2 行" in body and "生态环境局" in body
        shot(driver, "w3-figure-provenance")
        driver.find_element(By.CSS_SELECTOR, "a.source-file").click()
        got = _downloaded(downloads, ".csv")
        with open_ledger(ws.out) as ledger:
            current = ledger.current("eco", YEAR)
            assert got.read_bytes() == ledger.raw_bytes(current["id"])
        assert current["sha256"] in body
        # 人均GEP: a computed figure, followed to every physical-account and price row it was accounted from
        _open(driver, url + f"/analyst/{YEAR}/county/621202/figure/gep_per_capita")
        body = _text(driver)
        assert "由GEP核算账户" in body and "碳汇价格" in body and "发改委_2023年生态产品价值实现.xlsx" in body
        assert "森林面积" in body and "林草局_2023年林草资源.xlsx" in body and "常住人口" in body
        shot(driver, "w3b-gep-provenance")

        # 4. a what-if that changes ranks, highlighted, and its workbook
        _open(driver, url + f"/analyst/{YEAR}/whatif")
        for name, value in (("w.key_ecological.A", "0.05"), ("w.key_ecological.D", "0.6")):
            field = driver.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        _submit(driver, "compute")
        moved = driver.find_elements(By.CSS_SELECTOR, "#whatif-table tr.up, #whatif-table tr.down")
        assert moved, _text(driver)[:1500]
        assert "个县区排名变化" in _text(driver) and "重点生态功能区：绿水青山 35%→" in _text(driver)
        shot(driver, "w4-whatif")
        driver.find_element(By.ID, "xlsx").click()
        book = load_workbook(_downloaded(downloads, ".xlsx"))
        assert book.sheetnames == ["模拟结果", "设定"] and book["模拟结果"]["E1"].value == "第1版排名"

        # 5. a bureau corrects a figure; the analyst re-runs and reads the diff between versions
        catalogue = load_catalogue(ws.config)
        original = (ws.data / "2023" / "生态环境局_2023年生态环境质量.csv").read_text(encoding="utf-8").splitlines()
        fixed = root / "生态环境局_2023年生态环境质量_更正.csv"
        fixed.write_text("\n".join([original[0], original[1].replace("76.11", "76.9", 1), *original[2:]]) + "\n",
                         encoding="utf-8")
        with open_ledger(ws.out) as ledger:
            checked, recorded = operations.correct(ledger, catalogue, "eco", YEAR, fixed, "武都区EQI录入错误，按复核值更正",
                                                   "2024-03-10T08:00:00+00:00")
        assert checked.accepted and recorded.new
        _open(driver, url + f"/analyst/{YEAR}")
        _submit(driver, "run")
        _wait_for(driver, "已出具第 2 版")
        _wait_for(driver, "已完成")
        _open(driver, url + f"/analyst/{YEAR}/versions")
        body = _text(driver)
        assert "第 1 版 → 第 2 版" in body and "数据变化（1 项）" in body and "76.11" in body and "76.9" in body
        assert "武都区EQI录入错误" in body
        diff_rows = driver.find_elements(By.CSS_SELECTOR, "#diff-scores tr.changed")
        assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in diff_rows] == ["武都区"]
        shot(driver, "w5-versions-diff")
        _open(driver, url + f"/analyst/{YEAR}/county/621202")
        assert "修订说明" in _text(driver) and "本版更正" in _text(driver)

        # 6. distribute v2 to the outbox; done once, the button is then disabled
        _open(driver, url + f"/analyst/{YEAR}/distribution")
        assert "待发送 10 份" in _text(driver)
        _submit(driver, "distribute")
        _wait_for(driver, "已送达 10 份")
        assert driver.find_element(By.ID, "distribute").get_attribute("disabled")
        shot(driver, "w6-distribution")
    finally:
        driver.quit()
    assert len(list((ws.out / "outbox").rglob("*.pdf"))) == 10


def test_a_bureau_or_admin_account_gets_403_on_every_analyst_page(site):
    ws, url, _, _ = site
    for username in ("eco01", "admin01"):
        client, csrf = sign_in(url, username)
        for path in ANALYST_PAGES:
            response = client.get(path)
            assert response.status_code == 403, (username, path)
            assert "评价工作台只对分析人员开放" in response.text
        for path in ANALYST_POSTS:
            assert client.post(path, data={"csrf_token": csrf, "version": "1", "channel": "outbox"}).status_code == 403
    # and without signing in, every page asks for it
    anonymous = httpx.Client(base_url=url)
    assert all(anonymous.get(p).headers.get("location", "").startswith("/login") for p in ANALYST_PAGES)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_what_if_leaves_reports_and_the_ledgers_byte_identical(site):
    """Computing, downloading and saving a what-if (also at a bad weight) changes no byte under reports/
    (PDFs, manifests, the ledger database with its deliveries and audit tables); a proposal goes to
    proposals/ beside the configuration, and the configuration is untouched."""
    import yaml

    ws, url, _, _ = site
    client, csrf = sign_in(url, "analyst01")
    before, config_before = _tree(ws.out), _tree(ws.config)
    query = {"v": "1", "w.key_ecological.A": "0.05", "w.key_ecological.D": "0.6", "normalise": "minmax",
             "aggregate": "geometric_mean", "drop": "eqi"}
    shown = client.get(f"/analyst/{YEAR}/whatif", params=query)
    assert shown.status_code == 200 and "去掉指标：生态质量指数（EQI）" in shown.text
    book = client.get(f"/analyst/{YEAR}/whatif", params={**query, "format": "xlsx"})
    assert book.status_code == 200 and book.content[:2] == b"PK"
    bad = client.get(f"/analyst/{YEAR}/whatif", params={**query, "w.key_ecological.A": "=1+1"})
    assert "不是数字" in bad.text
    saved = client.post(f"/analyst/{YEAR}/whatif/proposal", data={**query, "csrf_token": csrf, "name": "../../生态优先方案"},
                        follow_redirects=True)
    assert "已保存为提案" in saved.text
    assert _tree(ws.out) == before and _tree(ws.config) == config_before
    (proposal,) = (ws.config.parent / "proposals").glob("*.yaml")
    assert re.fullmatch(r"2023-\d{8}-\d{6}-[0-9a-f]{8}\.yaml", proposal.name)  # never the name given
    body = yaml.safe_load(proposal.read_text(encoding="utf-8"))
    assert body["proposal"] == "../../生态优先方案" and body["verified"] is False and "未采用" in body["status"]
    assert body["method"] == {"normalise": "minmax", "aggregate": "geometric_mean"}
    assert body["dropped_indicators"] == ["eqi"] and body["author"] == "analyst01"


def test_a_what_if_with_the_issued_settings_reproduces_the_issued_scores(site):
    from evaluation.catalogue import load_catalogue
    from evaluation.workbench import issued, whatif

    ws, _, _, _ = site
    catalogue = load_catalogue(ws.config)
    from evaluation import versions

    found = versions.versions(ws.out, YEAR)
    assert found
    for version in found:
        current = issued.load(ws.out, YEAR, version, catalogue)
        assert issued.check_reproduced(current) < 1e-4  # the manifest keeps four decimals
        same = whatif.compare(current, catalogue, whatif.Scenario.issued(current))
        assert same.moved == 0 and same.changes == [] and same.spearman == pytest.approx(1.0)
