"""Charts for the PDF reports: matplotlib figures rendered to deterministic SVG.

Text stays real text in the SVG (``svg.fonttype = "none"``) and uses the same
font as the report body, so WeasyPrint draws it with "Noto Sans CJK SC" and
``pdftotext`` can read chart labels back. All matplotlib settings are applied
through ``rc_context`` and figures are attached to an explicit Agg canvas, so
nothing here touches pyplot or global matplotlib state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

FONT_FAMILY = "Noto Sans CJK SC"

# Restrained palette shared with templates/style.css.
INK = "#1f2d2a"
MUTED = "#6b7772"
GRID = "#cfd8d5"
ACCENT = "#1f6f5c"  # dark teal-green: the county
REFERENCE = "#9a7b3c"  # muted ochre: the zone average

# Bars are coloured by zone type. Known zone types get a fixed colour so the
# same zone looks the same in every report; anything else takes the fallback
# palette in order of first appearance.
ZONE_COLOURS = {
    "重点生态功能区": "#1f6f5c",
    "农产品主产区": "#b08d3c",
    "重点开发区（城市化地区）": "#4a6a8a",
}
FALLBACK_COLOURS = ("#6f8f5f", "#8a5a6a", "#5f8f8f", "#7a7a7a", "#a0674a")

_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY],
    "font.size": 9,
    "axes.unicode_minus": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "twomountains-report",
    "svg.image_inline": True,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.edgecolor": GRID,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
}


def _to_svg(fig: Figure) -> bytes:
    """Serialise a figure to SVG bytes without a timestamp."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    return buffer.getvalue()


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def radar_svg(radar: dict) -> bytes:
    """Radar chart of the county's dimension scores against its zone average.

    ``radar`` is ``context["radar"]``: ``labels``, ``county``, ``zone_avg``
    (scores on 0-100), ``county_label`` and ``zone_label``.
    """
    labels: Sequence[str] = radar["labels"]
    county = [float(v) for v in radar["county"]]
    zone_avg = [float(v) for v in radar["zone_avg"]]
    if not (len(labels) == len(county) == len(zone_avg)) or len(labels) < 3:
        raise ValueError("radar needs at least 3 labels and one value per label for each series")

    count = len(labels)
    angles = [2 * math.pi * i / count for i in range(count)]
    closed = angles + angles[:1]

    with matplotlib.rc_context(_RC):
        fig = _new_figure(3.6, 3.5)
        ax = fig.add_axes((0.14, 0.17, 0.72, 0.72), projection="polar")
        ax.set_theta_offset(math.pi / 2)
        ax.set_theta_direction(-1)
        ax.set_ylim(0, 100)
        ax.set_yticks([20, 40, 60, 80, 100])
        ax.set_yticklabels(["20", "40", "60", "80", "100"], fontsize=6.5, color=MUTED)
        ax.set_rlabel_position(180 / count)
        ax.set_xticks(angles)
        ax.set_xticklabels(labels, fontsize=9, color=INK)
        ax.tick_params(axis="x", pad=7)
        ax.grid(color=GRID, linewidth=0.6)
        ax.spines["polar"].set_color(GRID)
        ax.spines["polar"].set_linewidth(0.6)

        ax.fill(closed, county + county[:1], color=ACCENT, alpha=0.14, linewidth=0,
                zorder=2)
        (county_line,) = ax.plot(closed, county + county[:1], color=ACCENT, linewidth=1.8,
                                 marker="o", markersize=3, label=radar["county_label"],
                                 zorder=3)
        # Dashed reference drawn on top so it stays visible where the series overlap.
        (zone_line,) = ax.plot(closed, zone_avg + zone_avg[:1], color=REFERENCE,
                               linewidth=1.2, linestyle=(0, (4, 2)),
                               label=radar["zone_label"], zorder=4)

        fig.legend(handles=[county_line, zone_line], loc="lower center", ncol=2,
                   frameon=False, fontsize=8, handlelength=2.2,
                   bbox_to_anchor=(0.5, 0.0))
        return _to_svg(fig)


def bar_svg(bar: dict) -> bytes:
    """Horizontal bar chart of overall scores, coloured by zone type, with a legend.

    ``bar`` is ``context["bar"]``: parallel lists ``labels`` (county names, in
    ranking order), ``scores`` (0-100) and ``zones`` (zone type names).
    """
    labels: Sequence[str] = bar["labels"]
    scores = [float(v) for v in bar["scores"]]
    zones: Sequence[str] = bar["zones"]
    if not (len(labels) == len(scores) == len(zones)) or not labels:
        raise ValueError("bar needs one score and one zone per label")

    colours: dict[str, str] = {}
    fallback = iter(FALLBACK_COLOURS * (len(zones) // len(FALLBACK_COLOURS) + 1))
    for zone in zones:
        if zone not in colours:
            colours[zone] = ZONE_COLOURS.get(zone) or next(fallback)

    count = len(labels)
    height = 0.9 + 0.3 * count
    positions = list(range(count))

    with matplotlib.rc_context(_RC):
        fig = _new_figure(6.6, height)
        legend_share = 0.45 / height
        ax = fig.add_axes((0.16, legend_share + 0.06 / height, 0.76,
                           1 - legend_share - 0.18 / height))
        bars = ax.barh(positions, scores, height=0.62,
                       color=[colours[z] for z in zones], edgecolor="none")
        ax.bar_label(bars, labels=[f"{s:.1f}" for s in scores], padding=3,
                     fontsize=8, color=INK)
        ax.set_yticks(positions)
        ax.set_yticklabels(labels, fontsize=9, color=INK)
        ax.invert_yaxis()  # rank 1 on top
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 20, 40, 60, 80, 100])
        ax.tick_params(axis="x", labelsize=7, length=0)
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.spines["bottom"].set_color(GRID)

        handles = [Patch(facecolor=colour, edgecolor="none", label=zone)
                   for zone, colour in colours.items()]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3),
                   frameon=False, fontsize=8, handlelength=1.2, handleheight=0.9,
                   bbox_to_anchor=(0.5, 0.0))
        return _to_svg(fig)
