"""PDF reporting: context building, charts (SVG; matplotlib for the city summary's) and Jinja2 + WeasyPrint rendering.

The rendering names are re-exported lazily so that importing a light submodule
(e.g. ``evaluation.reporting.context``) does not pull in WeasyPrint and matplotlib.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TEMPLATES_DIR": "pdf",
    "render_html": "pdf",
    "render_pdf": "pdf",
    "radar_svg": "charts",
    "bar_svg": "charts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
