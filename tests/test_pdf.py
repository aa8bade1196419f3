"""PDF rendering: real WeasyPrint output read back with poppler (no mocks)."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from evaluation.reporting import charts
from evaluation.reporting.pdf import (
    TEMPLATES_DIR,
    ForbiddenURLError,
    ReportRenderError,
    TemplateURLFetcher,
    _context_digest,
    _html_to_pdf,
    render_html,
    render_pdf,
)
from tests.pdftools import pdf_fonts, pdf_pages, pdf_text

FIXTURES = Path(__file__).parent / "fixtures"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"poppler tool {name!r} not found on PATH (install poppler-utils)"
    return path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def pdftotext(pdf: Path, page: int | None = None, *, raw: bool = False) -> str:
    if not raw:
        return pdf_text(pdf, page)
    args = [_tool("pdftotext"), "-enc", "UTF-8", "-raw"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return _run(*args, str(pdf), "-")


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scorecard_context() -> dict:
    return _load("scorecard_context.json")


@pytest.fixture(scope="module")
def summary_context() -> dict:
    return _load("summary_context.json")


@pytest.fixture(scope="module")
def scorecard_pdf(tmp_path_factory, scorecard_context) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "scorecard.pdf"
    data = render_pdf(scorecard_context, out)
    assert out.read_bytes() == data
    return out


@pytest.fixture(scope="module")
def summary_pdf(tmp_path_factory, summary_context) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "summary.pdf"
    render_pdf(summary_context, out)
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- fonts and text ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["scorecard_pdf", "summary_pdf"])
def test_noto_cjk_font_is_embedded(request, which):
    pdf = request.getfixturevalue(which)
    assert pdf.read_bytes().startswith(b"%PDF-")
    fonts = pdf_fonts(pdf)
    # WeasyPrint names fonts after the family ("Noto-Sans-CJK-SC"), so compare
    # without separators.
    cjk = [f for f in fonts if "NotoSansCJK" in f["name"].replace("-", "")]
    assert cjk, fonts
    assert all(f["emb"] == "yes" for f in cjk), fonts


def test_scorecard_text(scorecard_pdf, scorecard_context):
    text = pdftotext(scorecard_pdf)
    for expected in ("武都区", "综合得分", "良好", "示例数据", "62.4", "621202",
                     "同类功能区排名", "全市排名", "（未经确认）", "第1版",
                     "缺失·按最低分", "人均地区生产总值"):
        assert expected in text, expected
    # Ranks, in content order (-raw keeps each label next to its value).
    raw = _squash(pdftotext(scorecard_pdf, raw=True))
    assert "同类功能区排名第2名/5" in raw  # zone rank
    assert "全市排名第3名/9" in raw
    squashed = _squash(text)
    assert "第1页/共" in squashed
    # Radar labels (SVG text) and its legend (HTML) are real text.
    assert "重点生态功能区平均" in squashed
    assert "绿水青山" in squashed and "社会满意度" in squashed


def test_scorecard_every_page_marked(scorecard_pdf):
    pages = pdf_pages(scorecard_pdf)
    assert 2 <= pages <= 3
    for page in range(1, pages + 1):
        text = pdftotext(scorecard_pdf, page)
        assert "示例数据" in text, f"page {page} lacks the sample mark"
        assert f"第{page}页/共{pages}页" in _squash(text)
        assert "陇南市" in text
        assert "未完整" not in text


def test_summary_text(summary_pdf):
    text = pdftotext(summary_pdf)
    for expected in ("文县", "武都区", "成县", "示例数据", "综合排名", "66.0", "1/5",
                     "重点生态功能区", "西和县"):
        assert expected in text, expected
    for page in range(1, pdf_pages(summary_pdf) + 1):
        assert "示例数据" in pdftotext(summary_pdf, page)
    # Bar labels and legend entries are text from the matplotlib SVG.
    assert "城市化地区" in _squash(text)


def test_incomplete_mark_on_every_page(tmp_path, scorecard_context):
    context = copy.deepcopy(scorecard_context)
    context["incomplete"] = True
    context["sample"] = False
    out = tmp_path / "incomplete.pdf"
    render_pdf(context, out)
    for page in range(1, pdf_pages(out) + 1):
        text = pdftotext(out, page)
        assert "未完整（临时）" in text
        assert "示例数据" not in text


def test_no_weasyprint_warnings(caplog, scorecard_context, summary_context):
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render_pdf(scorecard_context)
        render_pdf(summary_context)
    assert not [r for r in caplog.records if r.name.startswith("weasyprint")], caplog.text


# --- determinism and output --------------------------------------------------------


def test_byte_identical_rerender(scorecard_pdf, summary_pdf, scorecard_context,
                                 summary_context):
    assert render_pdf(copy.deepcopy(scorecard_context)) == scorecard_pdf.read_bytes()
    assert render_pdf(summary_context) == summary_pdf.read_bytes()


def test_byte_identical_across_processes(tmp_path, scorecard_pdf):
    """Hash randomisation or process state must not leak into the bytes."""
    out = tmp_path / "other_process.pdf"
    script = (
        "import json, sys; from pathlib import Path;"
        "from evaluation.reporting.pdf import render_pdf;"
        "render_pdf(json.loads(Path(sys.argv[1]).read_text(encoding='utf-8')), Path(sys.argv[2]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(FIXTURES / "scorecard_context.json"),
                    str(out)], check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    assert out.read_bytes() == scorecard_pdf.read_bytes()


def test_metadata_from_context(scorecard_pdf):
    info = _run(_tool("pdfinfo"), str(scorecard_pdf))
    assert re.search(r"^Title:.*武都区", info, re.MULTILINE)
    assert re.search(r"^Author:\s+陇南市", info, re.MULTILINE)
    assert re.search(r"^CreationDate:.*2024", info, re.MULTILINE)
    assert re.search(r"^ModDate:.*2024", info, re.MULTILINE)


def _pdf_id(pdf: bytes) -> bytes:
    match = re.search(rb"/ID \[\(([0-9a-f]+)\)", pdf)
    assert match, "PDF has no /ID"
    return match.group(1)


def test_identifier_derives_from_context(scorecard_pdf, scorecard_context):
    assert _pdf_id(scorecard_pdf.read_bytes()) == _context_digest(scorecard_context, [])
    other = copy.deepcopy(scorecard_context)
    other["version"] = 2
    rendered = render_pdf(other)
    assert _pdf_id(rendered) == _context_digest(other, [])
    assert _pdf_id(rendered) != _pdf_id(scorecard_pdf.read_bytes())


def test_atomic_write_leaves_only_the_pdf(tmp_path, scorecard_context):
    out = tmp_path / "nested" / "card.pdf"
    out.parent.mkdir()
    out.write_bytes(b"old")
    data = render_pdf(scorecard_context, out)
    assert out.read_bytes() == data
    assert sorted(p.name for p in out.parent.iterdir()) == ["card.pdf"]


def test_failed_render_keeps_previous_file(tmp_path, scorecard_context):
    out = tmp_path / "card.pdf"
    out.write_bytes(b"previous")
    broken = copy.deepcopy(scorecard_context)
    del broken["overall"]
    with pytest.raises(Exception):
        render_pdf(broken, out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["card.pdf"]


def test_attachments_are_embedded_and_reusable(tmp_path, scorecard_context):
    attachments = [("scores.csv", "县区,得分\n武都区,62.4\n".encode(), "评分明细")]
    out = tmp_path / "with_attachment.pdf"
    first = render_pdf(scorecard_context, out, attachments=attachments)
    # Rendering again needs a fresh Attachment object and yields the same bytes.
    assert render_pdf(scorecard_context, attachments=attachments) == first
    listing = _run(_tool("pdfdetach"), "-list", str(out))
    assert "scores.csv" in listing
    saved = tmp_path / "saved.csv"
    _run(_tool("pdfdetach"), "-save", "1", "-o", str(saved), str(out))
    assert saved.read_bytes() == attachments[0][1]


# --- template behaviour ------------------------------------------------------------


def test_unknown_kind_rejected(scorecard_context):
    context = dict(scorecard_context, kind="province")
    with pytest.raises(ValueError):
        render_html(context)
    with pytest.raises(ValueError):
        render_pdf(context)


def test_missing_key_is_an_error(scorecard_context):
    context = copy.deepcopy(scorecard_context)
    del context["county"]["code"]
    with pytest.raises(Exception, match="code"):
        render_html(context)


def test_chart_is_embedded_as_svg_data_uri(scorecard_context, summary_context):
    assert 'src="data:image/svg+xml;base64,' in render_html(scorecard_context)
    assert 'src="data:image/svg+xml;base64,' in render_html(summary_context)


def test_zone_unverified_marker(scorecard_context):
    assert "（未经确认）" in render_html(scorecard_context)
    verified = copy.deepcopy(scorecard_context)
    verified["county"]["zone_verified"] = True
    assert "（未经确认）" not in render_html(verified)


def test_imputed_rows_marked(scorecard_context):
    html = render_html(scorecard_context)
    assert html.count("缺失·按最低分") == 1 + 1  # the flagged row + the explanatory note


def test_autoescape(tmp_path, scorecard_context):
    context = copy.deepcopy(scorecard_context)
    context["county"]["name"] = "<script>x</script>"
    context["notes"] = ['<img src="http://example.com/x.png">']
    html = render_html(context)
    assert "<script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert '<img src="http://example.com/x.png">' not in html
    out = tmp_path / "escaped.pdf"
    render_pdf(context, out)  # would abort if the <img> were live markup
    text = pdftotext(out)
    assert "<script>x</script>" in text


# --- charts ------------------------------------------------------------------------


def test_charts_are_deterministic_svg(scorecard_context, summary_context):
    radar = charts.radar_svg(scorecard_context["radar"])
    assert radar == charts.radar_svg(scorecard_context["radar"])
    trend = charts.trend_svg(scorecard_context["trend"])
    assert trend == charts.trend_svg(scorecard_context["trend"])
    bar = charts.bar_svg(summary_context["bar"])
    assert bar == charts.bar_svg(summary_context["bar"])
    assert "Matplotlib" in bar.decode("utf-8") and "<dc:date>" not in bar.decode("utf-8")
    for svg in (radar, trend, bar):
        assert "Noto Sans CJK SC" in svg.decode("utf-8")
    assert ">绿水青山</text>" in radar.decode("utf-8")
    bar_text = bar.decode("utf-8")
    assert ">文县</text>" in bar_text and ">城市化地区</text>" in bar_text


def test_scorecard_charts_are_small_svg_with_escaped_text(scorecard_context):
    """Every scorecard draws two charts, thousands of times a national run: each is a small SVG
    (few elements for WeasyPrint to paint), and its labels, which come from config, are escaped."""
    import xml.etree.ElementTree as ET

    for svg in (charts.radar_svg(scorecard_context["radar"]), charts.trend_svg(scorecard_context["trend"])):
        assert len(svg) < 4000
        assert len(list(ET.fromstring(svg).iter())) < 60
    radar = dict(scorecard_context["radar"], labels=["<b>&", "A", "B", "C", "D"])
    root = ET.fromstring(charts.radar_svg(radar))  # well-formed: the label is text, not markup
    assert "<b>&" in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


# --- URL fetcher -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://example.com/x.png",
        "https://example.com/x.png",
        "ftp://example.com/x.png",
        TEMPLATES_DIR.as_uri() + "/../evaluation/__init__.py",
        TEMPLATES_DIR.as_uri() + "/%2e%2e/evaluation/__init__.py",
        "file://example.com" + (TEMPLATES_DIR / "common.css").as_posix(),
        TEMPLATES_DIR.as_uri() + "/does-not-exist.css",
        TEMPLATES_DIR.as_uri() + "/",
    ],
)
def test_fetcher_refuses_outside_urls(url):
    with pytest.raises(ForbiddenURLError):
        TemplateURLFetcher().fetch(url)


def test_fetcher_serves_templates_and_data_uris():
    fetcher = TemplateURLFetcher()
    response = fetcher.fetch((TEMPLATES_DIR / "common.css").as_uri())
    assert b"@page" in response.read()
    assert response.content_type == "text/css"
    response = fetcher.fetch("data:text/plain;base64,5rWL6K+V")
    assert response.read() == "测试".encode()


def test_fetcher_refuses_symlink_escaping_root(tmp_path):
    root = tmp_path / "templates"
    root.mkdir()
    (root / "ok.css").write_text("p {}")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / "link.txt").symlink_to(secret)
    fetcher = TemplateURLFetcher(root)
    assert fetcher.fetch((root / "ok.css").as_uri()).read() == b"p {}"
    with pytest.raises(ForbiddenURLError):
        fetcher.fetch((root / "link.txt").as_uri())


class _SpyFetcher(TemplateURLFetcher):
    requested: list[str] = []
    served: list[str] = []

    def fetch(self, url, headers=None):
        type(self).requested.append(url)
        response = super().fetch(url, headers)
        type(self).served.append(url)
        return response


@pytest.mark.parametrize("src", ["file:///etc/passwd", "http://example.com/x.png",
                                 "../evaluation/__init__.py"])
def test_render_never_fetches_outside(monkeypatch, src):
    # Swap in a recording subclass of the real fetcher (behaviour unchanged).
    import evaluation.reporting.pdf as pdf_module

    _SpyFetcher.requested, _SpyFetcher.served = [], []
    monkeypatch.setattr(pdf_module, "TemplateURLFetcher", _SpyFetcher)
    html = f'<html><head><link rel="stylesheet" href="common.css"></head><body><img src="{src}"></body></html>'
    with pytest.raises(ReportRenderError):
        _html_to_pdf(html, kind="county", pdf_identifier=b"0" * 32, attachments=[],
                     stamp=datetime(2024, 3, 1))
    assert any(("passwd" in u or "example.com" in u or "evaluation" in u)
               for u in _SpyFetcher.requested)
    assert all(u.startswith(TEMPLATES_DIR.as_uri() + "/") or u.startswith("data:")
               for u in _SpyFetcher.served), _SpyFetcher.served


def test_parallel_rendering_gives_the_same_bytes(tmp_path):
    """The worker pool renders exactly what one process renders (and writes every file whole)."""
    from evaluation.pipeline import PlannedReport, render_one
    from evaluation.reporting.parallel import render_many

    context = json.loads((Path(__file__).parent / "fixtures" / "scorecard_context.json").read_text(encoding="utf-8"))
    reports = [PlannedReport(f"62120{i}_测试_{i}.pdf", "621202", {**context, "version": i}) for i in range(1, 4)]
    (tmp_path / "one").mkdir()
    one = {r.file_name: render_one(r, tmp_path / "one") for r in reports}
    seen = []
    many = render_many(reports, tmp_path / "many", workers=2, progress=lambda name, done, total: seen.append((done, total)))
    assert many == one and len(set(many.values())) == 3
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == sorted(one)


def test_a_render_cache_gives_back_the_same_bytes_and_renders_a_damaged_entry_again(tmp_path, scorecard_pdf,
                                                                                      scorecard_context):
    """What a run interrupted after rendering some reports finds when it runs again (issue 15):
    the PDFs it made, byte for byte, taken from the cache instead of rendered; a damaged entry is
    rendered again, never issued; a report whose context differs in any way is a miss."""
    from evaluation.pipeline import PlannedReport, render_one, reuse_rendered
    from evaluation.reporting.rendercache import RenderCache

    renders = RenderCache(tmp_path / "cache", "code-1")
    report = PlannedReport("621202_武都区_2023年度两山转化绩效评价.pdf", "621202", scorecard_context)
    for name in ("first", "second", "third", "fourth"):
        (tmp_path / name).mkdir()
    assert renders.empty()
    digest = render_one(report, tmp_path / "first", renders)
    assert not renders.empty()
    assert (tmp_path / "first" / report.file_name).read_bytes() == scorecard_pdf.read_bytes()
    (entry,) = (tmp_path / "cache").iterdir()
    assert entry.name == f"{renders.key(report)}-{digest}.pdf"

    other = PlannedReport(report.file_name, "621202", {**scorecard_context, "version": 2})
    reused, fresh = reuse_rendered([report, other], tmp_path / "second", renders)
    assert reused == {report.file_name: digest} and fresh == [other]
    assert (tmp_path / "second" / report.file_name).read_bytes() == scorecard_pdf.read_bytes()
    assert reuse_rendered([report], tmp_path / "third", RenderCache(tmp_path / "cache", "code-2")) == ({}, [report])

    entry.write_bytes(b"%PDF-1.7 damaged")  # (a hard link: the first folder's file is damaged with it)
    assert reuse_rendered([report], tmp_path / "fourth", renders) == ({}, [report])
    assert not entry.exists() and not (tmp_path / "fourth" / report.file_name).exists()
