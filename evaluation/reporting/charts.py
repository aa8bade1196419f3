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
    # Labels come from data (county, indicator and zone names): never read "$...$" as mathtext.
    "text.parse_math": False,
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
        # drawn at its printed size (58 mm), so every font size below is the size on paper
        fig = _new_figure(2.28, 2.26)
        ax = fig.add_axes((0.19, 0.2, 0.62, 0.62), projection="polar")
        ax.set_theta_offset(math.pi / 2)
        ax.set_theta_direction(-1)
        ax.set_ylim(0, 100)
        ax.set_yticks([20, 40, 60, 80, 100])
        ax.set_yticklabels(["", "40", "", "80", ""], fontsize=7.5, color=MUTED)
        ax.set_rlabel_position(180 / count)
        ax.set_xticks(angles)
        ax.set_xticklabels(labels, fontsize=8, color=INK)
        ax.tick_params(axis="x", pad=4)
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
                   frameon=False, fontsize=7.5, handlelength=1.8, columnspacing=1.0,
                   bbox_to_anchor=(0.5, -0.01))
        return _to_svg(fig)


MIN_FONT = 7.5  # pt at print size: no chart text is smaller
CHART_MAX_IN = 8.6  # a chart's height at most (inches at design width): it fits one A4 page with its heading


def _rows(rows: int, preferred: float, font: float) -> tuple[float, float]:
    """(inches per row, label size in pt): `preferred` and `font`, or for a long list rows closer, so the
    chart fits one page, with labels at the smallest print size (60 rows of the national summary: about
    3.3 mm a row, still above the 7.5 pt text it holds)."""
    step = min(preferred, (CHART_MAX_IN - 0.9) / rows)
    return step, (font if step >= 0.25 else MIN_FONT)


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
    step, fonts = _rows(count, 0.3, 9)
    height = 0.9 + step * count
    positions = list(range(count))

    with matplotlib.rc_context(_RC):
        fig = _new_figure(6.6, height)
        legend_share = 0.45 / height
        ax = fig.add_axes((0.16, legend_share + 0.06 / height, 0.76,
                           1 - legend_share - 0.18 / height))
        bars = ax.barh(positions, scores, height=0.62,
                       color=[colours[z] for z in zones], edgecolor="none")
        ax.bar_label(bars, labels=[f"{s:.1f}" for s in scores], padding=3,
                     fontsize=min(8, fonts), color=INK)
        ax.set_yticks(positions)
        ax.set_yticklabels(labels, fontsize=fonts, color=INK)
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


TREND_COLOURS = ("#1f6f5c", "#4a6a8a", "#b08d3c", "#8a5a6a", "#6f8f5f", "#a0674a")


TREND_STYLES = ((ACCENT, 2.2, "-", 4), (REFERENCE, 1.3, (0, (4, 2)), 3), ("#4a6a8a", 1.3, (0, (1, 1.5)), 3))


def trend_svg(trend: dict) -> bytes:
    """The composite over the evaluation years: at most three lines (the county bold, with its values).

    ``trend`` is ``context["trend"]``: ``years`` (list of int), ``series`` (a list of
    ``{"label": str, "values": [score or None per year]}``, the county first) and ``unit`` (y axis).
    """
    years = [int(y) for y in trend["years"]]
    series = trend["series"][:len(TREND_STYLES)]
    if not years or not series:
        raise ValueError("trend needs at least one year and one series")
    with matplotlib.rc_context(_RC):
        fig = _new_figure(7.0, 1.75)
        ax = fig.add_axes((0.08, 0.17, 0.66, 0.76))
        for i, line in enumerate(series):
            points = [(y, float(v)) for y, v in zip(years, line["values"]) if v is not None]
            if not points:
                continue
            xs, ys = zip(*points)
            colour, width, style, size = TREND_STYLES[i]
            ax.plot(xs, ys, marker="o", markersize=size, linewidth=width, linestyle=style, color=colour,
                    label=line["label"], zorder=4 - i)
            if i == 0:
                for x, y in points:
                    ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center",
                                fontsize=8, color=INK, fontweight="bold")
        ax.set_xticks(years)
        ax.set_xticklabels([f"{y}年" for y in years], fontsize=8)
        ax.set_xlim(years[0] - 0.4, years[-1] + 0.4)
        ax.set_ylim(0, 100)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.set_ylabel(trend.get("unit", "分"), fontsize=7.5, color=MUTED)
        ax.tick_params(labelsize=7.5, length=0)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=8)
        return _to_svg(fig)


def heatmap_svg(heat: dict) -> bytes:
    """County x dimension scores as a heat map with the value in each cell.

    ``heat`` is ``context["heat"]``: ``rows`` (county names, ranking order), ``columns``
    (dimension names) and ``values`` (rows x columns, 0-100).
    """
    rows, cols, values = heat["rows"], heat["columns"], heat["values"]
    if not rows or not cols or len(values) != len(rows):
        raise ValueError("heat needs one row of values per county")
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("twomountains", ["#f4efe2", "#9cc3a8", "#1f6f5c"])
    step, label_font = _rows(len(rows), 0.32, 8.5)
    with matplotlib.rc_context(_RC):
        fig = _new_figure(6.6, 0.6 + step * len(rows))
        ax = fig.add_axes((0.16, 0.04, 0.74, 0.84))
        image = ax.imshow([[float(v) for v in r] for r in values], cmap=cmap, vmin=0, vmax=100, aspect="auto")
        legend_ax = fig.add_axes((0.925, 0.1, 0.012, 0.7))
        bar = fig.colorbar(image, cax=legend_ax, ticks=[0, 50, 100])
        bar.ax.tick_params(labelsize=7.5, length=0)
        bar.outline.set_visible(False)
        for i, r in enumerate(values):
            for j, v in enumerate(r):
                ax.text(j, i, f"{float(v):.1f}", ha="center", va="center", fontsize=7.5,
                        color="white" if float(v) >= 65 else INK)
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, fontsize=8)
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows, fontsize=label_font)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        return _to_svg(fig)


def distribution_svg(dist: dict) -> bytes:
    """The distribution of overall scores: one dot per county on a 0-100 line per zone type.

    ``dist`` is ``context["distribution"]``: parallel lists ``labels`` (county names),
    ``scores`` and ``zones``.
    """
    labels, scores, zones = dist["labels"], [float(s) for s in dist["scores"]], dist["zones"]
    if not (len(labels) == len(scores) == len(zones)) or not labels:
        raise ValueError("distribution needs one score and one zone per county")
    order = list(dict.fromkeys(zones))
    with matplotlib.rc_context(_RC):
        fig = _new_figure(6.6, 0.7 + 0.5 * len(order))
        ax = fig.add_axes((0.24, 0.2, 0.72, 0.75))
        for k, zone in enumerate(order):
            colour = ZONE_COLOURS.get(zone, FALLBACK_COLOURS[k % len(FALLBACK_COLOURS)])
            points = sorted((s, name) for s, name, z in zip(scores, labels, zones) if z == zone)
            ax.hlines(k, 0, 100, color=GRID, linewidth=0.6, zorder=1)
            size = 28 if len(scores) <= 100 else 6
            ax.scatter([s for s, _ in points], [k] * len(points), s=size, color=colour, zorder=3)
            for i, (s, name) in enumerate(points):
                if not name:  # an unlisted county in a large summary: a dot without a name
                    continue
                ax.annotate(name, (s, k), textcoords="offset points", xytext=(0, 7 if i % 2 == 0 else -11),
                            ha="center", fontsize=6.5, color=INK)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels(order, fontsize=8)
        ax.set_ylim(len(order) - 0.5, -0.6)
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 20, 40, 60, 80, 100])
        ax.tick_params(labelsize=7, length=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.spines["bottom"].set_color(GRID)
        return _to_svg(fig)
