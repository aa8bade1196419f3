"""Render report contexts to HTML (Jinja2) and PDF (WeasyPrint).

The context builder hands over pure, pre-formatted data; this module only picks
the template, adds the chart images and turns the HTML into a deterministic
PDF: identical context (and attachments) give identical bytes.

Resource loading is locked down: WeasyPrint may read files inside
``templates/`` and ``data:`` URIs, nothing else (no network, no other files).
"""

from __future__ import annotations

import base64
import functools
import logging
import mimetypes
import os
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import weasyprint
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from evaluation.fsutil import atomic_write

from . import charts as _charts
from . import fonts

log = logging.getLogger(__name__)

TEMPLATES_DIR: Path = Path(__file__).resolve().parents[2] / "templates"

# Archive copies: PDF/A-3b (long-term archiving, with embedded data files allowed).
ARCHIVE_VARIANT = "pdf/a-3b"

TEMPLATE_BY_KIND = {
    "county": "scorecard.html",
    "summary": "summary.html",
    "methodology": "methodology.html",
}

# Each kind's stylesheets, parsed once per process (parsing them took about 0.1 s of every scorecard).
STYLESHEETS_BY_KIND = {
    "county": ("common.css", "scorecard.css"),
    "summary": ("common.css", "summary.css"),
    "methodology": ("common.css", "summary.css"),
}


class ReportRenderError(RuntimeError):
    """The PDF could not be rendered (e.g. a template asked for a forbidden resource)."""


class ForbiddenURLError(ValueError):
    """A resource outside the templates directory (or a non-file, non-data URL) was requested."""


class TemplateURLFetcher(URLFetcher):
    """WeasyPrint URL fetcher serving only files under ``root`` and ``data:`` URIs.

    Paths are resolved (``..`` and symlinks included) before the containment
    check, so nothing outside ``root`` can be read. Any refusal raises, and
    ``fail_on_errors=True`` makes WeasyPrint abort the render instead of
    silently dropping the resource.
    """

    def __init__(self, root: Path | None = None, **kwargs):
        kwargs.setdefault("fail_on_errors", True)
        kwargs["allowed_protocols"] = ("file", "data")
        kwargs["allow_redirects"] = False
        super().__init__(**kwargs)
        self.root = (root or TEMPLATES_DIR).resolve()

    def fetch(self, url, headers=None):
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            # Decoded by urllib's DataHandler; never touches disk or network.
            return super().fetch(url, headers)
        if scheme != "file":
            raise ForbiddenURLError(f"refusing to fetch non-local URL: {url}")
        return self._fetch_file(url)

    def _fetch_file(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ForbiddenURLError(f"refusing to fetch remote file URL: {url}")
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ForbiddenURLError(f"cannot resolve {url}: {exc}") from exc
        if not path.is_relative_to(self.root) or not path.is_file():
            raise ForbiddenURLError(f"refusing to fetch file outside {self.root}: {url}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return URLFetcherResponse(
            path.as_uri(), path.read_bytes(), headers={"Content-Type": content_type}
        )


@functools.cache
def _environment(root: Path = TEMPLATES_DIR) -> Environment:
    """The Jinja2 environment of a templates folder, created once per process (the bench also draws the
    scorecard template kept from before issue 22 with it)."""
    return Environment(
        loader=FileSystemLoader(root),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@functools.cache
def font_config() -> FontConfiguration:
    """One font configuration per process, holding the reports' GB 2312 copy of the CJK font (fonts.py)."""
    return FontConfiguration()


@functools.cache
def _stylesheet(name: str) -> weasyprint.CSS:
    if name == "@font-face":
        return weasyprint.CSS(string=fonts.face_css(), base_url=str(TEMPLATES_DIR) + os.sep,
                              url_fetcher=TemplateURLFetcher(), font_config=font_config())
    return weasyprint.CSS(filename=str(TEMPLATES_DIR / name), url_fetcher=TemplateURLFetcher(), font_config=font_config())


def stylesheets(kind: str) -> list[weasyprint.CSS]:
    """The parsed stylesheets of a kind of report (the same objects for every document of a process),
    after the @font-face rules of the reports' font. WeasyPrint needs `font_config()` with them."""
    return [_stylesheet(name) for name in ("@font-face", *STYLESHEETS_BY_KIND[kind])]


def render_template(name: str, context: dict) -> str:
    """Render any HTML template of templates/ with the same locked-down environment."""
    return _environment().get_template(name).render(context)


def _svg_data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def _charts_for(context: dict) -> dict[str, str]:
    kind = context["kind"]
    if kind == "county":
        return {"radar": _svg_data_uri(_charts.radar_svg(context["radar"])),
                "trend": _svg_data_uri(_charts.trend_svg(context["trend"]))}
    if kind == "summary":
        charts = {"bar": _svg_data_uri(_charts.bar_svg(context["bar"])),
                  "heat": _svg_data_uri(_charts.heatmap_svg(context["heat"]))}
        if "map" in context:
            from evaluation.reporting import maps

            svg, _missing = maps.choropleth_svg([maps.Area(a["code"], a["name"], a["fill"]) for a in context["map"]["areas"]],
                                                [tuple(x) for x in context["map"]["legend"]], max_height_mm=86)
            charts["map"] = _svg_data_uri(svg)
        return charts
    if kind == "methodology":
        return {"sobol": _svg_data_uri(_charts.sobol_svg(context["sobol_chart"])),
                "intervals": _svg_data_uri(_charts.intervals_svg(context["intervals"]))}
    raise ValueError(f"unknown report kind: {kind!r}")


def render_html(context: dict) -> str:
    """Render the HTML for ``context`` ("county" -> scorecard, "summary" -> summary)."""
    kind = context.get("kind")
    template_name = TEMPLATE_BY_KIND.get(kind)  # type: ignore[arg-type]
    if template_name is None:
        raise ValueError(
            f"unknown report kind: {kind!r} (expected one of {sorted(TEMPLATE_BY_KIND)})"
        )
    if "charts" in context:
        raise ValueError("context key 'charts' is reserved for the renderer")
    template = _environment().get_template(template_name)
    return template.render({**context, "charts": _charts_for(context)})


def _context_digest(context: dict, attachments) -> bytes:
    from evaluation.reporting.rendercache import input_digest

    digest = input_digest(context, attachments)
    # 16 bytes as 32 hex characters, like the usual PDF /ID.
    return digest.hexdigest()[:32].encode("ascii")


def _attachment_timestamp(context: dict) -> datetime:
    run_date = str(context.get("run_date") or "1970-01-01")
    try:
        return datetime.fromisoformat(run_date)
    except ValueError:
        return datetime(1970, 1, 1)


def _html_to_pdf(
    html: str,
    *,
    kind: str,
    pdf_identifier: bytes,
    attachments: list[tuple[str, bytes, str]],
    stamp: datetime,
    pdf_variant: str | None = ARCHIVE_VARIANT,
) -> bytes:
    """Turn rendered HTML into PDF bytes with the locked-down fetcher.

    Relative URLs resolve against ``TEMPLATES_DIR``; a request for anything the
    fetcher refuses aborts the render with ``ReportRenderError``.
    """
    fetcher = TemplateURLFetcher()
    pdf_attachments = [
        # A fresh Attachment per PDF: its source is a one-shot context manager.
        weasyprint.Attachment(
            string=bytes(data), name=filename, description=description,
            created=stamp, modified=stamp, url_fetcher=fetcher,
        )
        for filename, data, description in attachments
    ]
    try:
        return weasyprint.HTML(
            string=html, base_url=str(TEMPLATES_DIR) + os.sep, url_fetcher=fetcher
        ).write_pdf(
            stylesheets=stylesheets(kind),
            font_config=font_config(),
            attachments=pdf_attachments or None,
            pdf_identifier=pdf_identifier,
            pdf_variant=pdf_variant,
            uncompressed_pdf=False,
        )
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint
        raise ReportRenderError(str(exc)) from (exc.__cause__ or exc)


def render_pdf(
    context: dict,
    out_path: Path | None = None,
    *,
    attachments: list[tuple[str, bytes, str]] | None = None,
    pdf_variant: str | None = ARCHIVE_VARIANT,
    make_parents: bool = True,
) -> bytes:
    """Render ``context`` to PDF bytes; optionally write them atomically to ``out_path``
    (make_parents=False: into an existing folder only).

    ``attachments`` are ``(filename, data, description)`` tuples embedded as
    PDF file attachments (PDF/A-3b allows them, so the archive copy carries its
    own data). Output is deterministic for identical input.
    """
    started = time.perf_counter()
    attachments = list(attachments or [])
    html = render_html(context)
    pdf_bytes = _html_to_pdf(
        html,
        kind=context["kind"],
        pdf_identifier=_context_digest(context, attachments),
        attachments=attachments,
        stamp=_attachment_timestamp(context),
        pdf_variant=pdf_variant,
    )
    if out_path is not None:
        atomic_write(Path(out_path), pdf_bytes, make_parents=make_parents)
    log.debug(
        "rendered %s report (%d bytes) in %.3f s%s",
        context.get("kind"), len(pdf_bytes), time.perf_counter() - started,
        f" -> {out_path}" if out_path is not None else "",
    )
    return pdf_bytes


_warm = False


def warm_up() -> None:
    """Load WeasyPrint, fontconfig and the CJK font once (a process's first PDF otherwise pays for it);
    a process forked from a warm one is warm already."""
    global _warm
    if _warm:
        return
    import weasyprint

    weasyprint.HTML(string='<html lang="zh-CN"><body style="font-family: \'Noto Sans CJK SC\'">两山</body></html>').write_pdf()
    for kind in STYLESHEETS_BY_KIND:  # the stylesheets parsed, the reports' font loaded
        weasyprint.HTML(string='<html lang="zh-CN"><body>两山<b>两山</b></body></html>').write_pdf(
            stylesheets=stylesheets(kind), font_config=font_config())
    _warm = True
