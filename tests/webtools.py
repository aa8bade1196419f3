"""The portal under test: a workspace whose ledger already holds the other bureaus' tables, the real app
served by uvicorn on loopback, and Debian's chromium driven by Selenium (nothing downloads a browser)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
SHOTS = REPO / "reports" / "screenshots" / "portal"  # git-ignored; the closing note's page images
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "portal-test-2024"
NOW = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.timezone.utc)


@dataclass
class Workspace:
    data: Path
    out: Path
    config: Path  # `portal` departments read from the ledger
    portal: tuple[str, ...]


def workspace(root: Path, portal: tuple[str, ...] = ("eco",)) -> Workspace:
    """Sample data and configuration, with `portal` bureaus switched to the portal; the ledger already
    holds every table of the past years and the other bureaus' tables of 2023 (as the annual run records them)."""
    from evaluation import operations
    from evaluation.catalogue import load_catalogue
    from evaluation.resources import open_ledger

    data, out, config = root / "data", root / "reports", root / "config"
    shutil.copytree(SAMPLE, data)
    shutil.copytree(REPO / "config", config)
    folder_catalogue = load_catalogue(config)
    sources = yaml.safe_load((config / "sources.yaml").read_text(encoding="utf-8"))
    for dept in portal:
        sources["sources"][dept]["kind"] = "portal"
        sources["sources"][dept].pop("pattern", None)
    (config / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with open_ledger(out) as ledger:
        for year in (2021, 2022, 2023):
            departments = None if year < 2023 else set(folder_catalogue.sources) - set(portal)
            intakes = operations.check_folder(folder_catalogue, data, year, departments=departments)
            operations.record(ledger, intakes, folder_catalogue, NOW.isoformat())
    return Workspace(data, out, config, portal)


def add_account(ws: Workspace, username: str, role: str, department: str | None = None, name: str = "") -> None:
    from evaluation.accounts import Accounts

    with Accounts.at(ws.out) as accounts:
        accounts.add(username, PASSWORD, role, now=NOW, department=department, display_name=name or username)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(ws: Workspace, **settings):
    """The portal on a loopback port, in a thread of this process: yields its base URL."""
    import uvicorn

    from web.app import Settings, create_app

    app = create_app(Settings(data_dir=ws.data, out_dir=ws.out, config_dir=ws.config, **settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="portal", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


def chrome(downloads: Path):
    """Headless chromium (Debian's), downloads into `downloads`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--lang=zh-CN", "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "intl.accept_languages": "zh-CN"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    driver.implicitly_wait(20)  # a click that submits a form returns before the next page has loaded
    return driver


def shot(driver, name: str) -> Path:
    """A full-page screenshot under reports/screenshots/portal/ (the closing note looks at these)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(int(height) + 40, 4000)))
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path


def filled_form(blank: bytes, ws: Workspace, department: str, year: int, change=None) -> bytes:
    """The blank form filled with the sample's figures for `department` (from its usual file);
    change(county_code, variable_id, value) -> value plants corrections or errors."""
    from openpyxl import load_workbook

    from evaluation.catalogue import load_catalogue
    from evaluation.ingest import read_submission
    from evaluation.ingest.forms import FIRST_DATA_ROW, FORM_SHEET, HEADER_ROW

    folder = load_catalogue(REPO / "config")
    source = folder.sources[department]
    table = read_submission(ws.data / str(year) / source.file_name(year), source, folder, year).table
    values = table.set_index("county_code")
    book = load_workbook(io.BytesIO(blank))
    sheet = book[FORM_SHEET]
    header = {sheet.cell(HEADER_ROW, j).value: j for j in range(1, sheet.max_column + 1)}
    variables = {f"{v.name}（{v.unit}）": v.id for v in folder.department_variables(department)}
    row = FIRST_DATA_ROW
    while sheet.cell(row, 1).value:
        code = str(sheet.cell(row, 1).value)
        for head, var in variables.items():
            value = float(values.at[code, var])
            sheet.cell(row, header[head]).value = change(code, var, value) if change else value
        row += 1
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def click_and_wait(driver, element, timeout: float = 60) -> None:
    """Click something that loads another page, and return once that page has loaded (a click returns
    as soon as it is dispatched: reading the page at once may read the old one)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")

    def replaced(_) -> bool:
        # chromium answers "does not belong to the document" instead of a stale reference while a chain of
        # redirects (sign-in -> / -> /analyst/<year>) is still replacing the page: that is gone too
        try:
            old.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    element.click()
    wait = WebDriverWait(driver, timeout)
    wait.until(replaced)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
