"""Imported once by the render pool's fork server: WeasyPrint, the report code and the CJK font are
loaded there, so every render worker forked from it starts warm in milliseconds (see parallel.py)."""

from evaluation.reporting.pdf import warm_up
from evaluation.reporting.planned import render_one  # noqa: F401 - loaded here, not in each worker

warm_up()
