"""Charts for the PDF reports, as deterministic SVG.

The two charts of every scorecard (radar, trend) are written directly as small SVG documents:
a few dozen elements, text at print size, so neither drawing them nor WeasyPrint painting them
costs much in a run of thousands of scorecards. The city summary's charts (bar, heat map) are
matplotlib figures. Text stays real text in the SVG (``svg.fonttype = "none"``) and uses the same
font as the report body, so WeasyPrint draws it with "Noto Sans CJK SC" and
``pdftotext`` can read chart labels back. All matplotlib settings are applied
through ``rc_context`` and figures are attached to an explicit Agg canvas, so
nothing here touches pyplot or global matplotlib state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

# matplotlib is imported by the summary's charts only: a render worker drawing scorecards never loads it.

FONT_FAMILY = "Noto Sans CJK SC"
# the scorecard charts' SVG text: the reports' GB 2312 copy of the font first, as in the stylesheets (fonts.py)
SVG_FONT_FAMILIES = "Noto Sans CJK SC GB2312, Noto Sans CJK SC"

# Restrained palette shared with templates/common.css.
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
    "城市化地区": "#4a6a8a",
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


def _to_svg(fig: "Figure") -> bytes:
    """Serialise a figure to SVG bytes without a timestamp."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    return buffer.getvalue()


def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def _new_figure(width_in: float, height_in: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _text_width(text: str, size: float) -> float:
    """Approximate printed width (pt) of a label: CJK and full-width characters one em, others 0.6 em."""
    return sum(size if ord(ch) > 0x2E7F else 0.6 * size for ch in text)


def _num(value: float) -> str:
    """A coordinate in the SVG: two decimals, no trailing zeros (deterministic, compact)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _score(value: float) -> float:
    """A score clamped to the charts' 0-100 scale."""
    return min(max(value, 0.0), 100.0)


def _svg(width: float, height: float, body: list[str]) -> bytes:
    """A compact SVG document in points (1 user unit = 1 pt at print size), text in the report's font."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}pt" height="{_num(height)}pt" '
            f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{SVG_FONT_FAMILIES}">')
    return (head + "".join(body) + "</svg>").encode("utf-8")


def _label(x: float, y: float, text: str, size: float, *, anchor: str = "middle", colour: str = INK,
           bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}" text-anchor="{anchor}" '
            f'fill="{colour}"{weight}>{escape(text)}</text>')


RADAR_WIDTH, RADAR_HEIGHT = 184.0, 150.0  # pt: the chart is printed 65 mm wide
RADAR_FONT = 8.0


def radar_svg(radar: dict) -> bytes:
    """Radar chart of the county's dimension scores (filled, solid) against its zone average (dashed).

    ``radar`` is ``context["radar"]``: ``labels``, ``county``, ``zone_avg`` (scores on 0-100),
    ``county_label`` and ``zone_label``. Drawn directly as a small SVG (about 30 elements, text at
    print size); the legend is HTML under the chart in the template, so a long zone name wraps
    instead of being cut off.
    """
    labels: Sequence[str] = radar["labels"]
    county = [float(v) for v in radar["county"]]
    zone_avg = [float(v) for v in radar["zone_avg"]]
    if not (len(labels) == len(county) == len(zone_avg)) or len(labels) < 3:
        raise ValueError("radar needs at least 3 labels and one value per label for each series")
    count = len(labels)
    angles = [2 * math.pi * i / count for i in range(count)]  # clockwise from the top
    cx, gap, margin = RADAR_WIDTH / 2, 4.0, 1.0
    # the largest radius at which every label fits beside its spoke
    radius = 50.0
    for angle, label in zip(angles, labels):
        side = abs(math.sin(angle))
        if side > 0.2:
            radius = min(radius, (cx - margin - gap - _text_width(label, RADAR_FONT)) / side)
    cy = (RADAR_HEIGHT + RADAR_FONT * 0.3) / 2

    def point(angle: float, r: float) -> tuple[float, float]:
        return cx + r * math.sin(angle), cy - r * math.cos(angle)

    def vertices(values: Sequence[float]) -> list[tuple[float, float]]:
        return [point(a, radius * _score(v) / 100) for a, v in zip(angles, values)]

    def polygon(values: Sequence[float]) -> str:
        return " ".join(f"{_num(x)},{_num(y)}" for x, y in vertices(values))

    body = []
    for level in (20, 40, 60, 80, 100):  # rings
        ring = polygon([level] * count)
        body.append(f'<polygon points="{ring}" fill="none" stroke="{GRID}" stroke-width="0.6"/>')
    for angle in angles:  # spokes
        x, y = point(angle, radius)
        body.append(f'<line x1="{_num(cx)}" y1="{_num(cy)}" x2="{_num(x)}" y2="{_num(y)}" stroke="{GRID}" '
                    f'stroke-width="0.6"/>')
    for level in (40, 80):  # scale, beside the top spoke
        body.append(_label(cx + 2, cy - radius * level / 100 + 2.6, str(level), 7.5, anchor="start", colour=MUTED))
    body.append(f'<polygon points="{polygon(county)}" fill="{ACCENT}" fill-opacity="0.14" stroke="{ACCENT}" '
                f'stroke-width="1.8" stroke-linejoin="round"/>')
    body.append(f'<polygon points="{polygon(zone_avg)}" fill="none" stroke="{REFERENCE}" stroke-width="1.2" '
                f'stroke-dasharray="4 2"/>')
    for x, y in vertices(county):
        body.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="1.6" fill="{ACCENT}"/>')
    for angle, label in zip(angles, labels):
        x, y = point(angle, radius + gap)
        sin, cos = math.sin(angle), math.cos(angle)
        anchor = "start" if sin > 0.2 else "end" if sin < -0.2 else "middle"
        y += RADAR_FONT * (0.35 - 0.55 * cos)  # above the top spoke, below the bottom one, centred beside
        body.append(_label(x, y, label, RADAR_FONT, anchor=anchor))
    return _svg(RADAR_WIDTH, RADAR_HEIGHT, body)


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

    with _rc():
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

        from matplotlib.patches import Patch

        handles = [Patch(facecolor=colour, edgecolor="none", label=zone)
                   for zone, colour in colours.items()]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3),
                   frameon=False, fontsize=8, handlelength=1.2, handleheight=0.9,
                   bbox_to_anchor=(0.5, 0.0))
        return _to_svg(fig)


TREND_STYLES = (  # colour, line width, dash pattern, marker radius: the county, its zone average, a third line
    (ACCENT, 2.2, "", 2.4), (REFERENCE, 1.3, "4 2", 1.8), ("#4a6a8a", 1.3, "1 1.5", 1.8))
TREND_WIDTH, TREND_HEIGHT = 504.0, 118.0  # pt: printed across the text width


def trend_svg(trend: dict) -> bytes:
    """The composite over the evaluation years: at most three lines (the county bold, with its values).

    ``trend`` is ``context["trend"]``: ``years`` (list of int), ``series`` (a list of
    ``{"label": str, "values": [score or None per year]}``, the county first) and ``unit`` (y axis).
    Drawn directly as a small SVG; the legend (the series' labels) is HTML in the template.
    """
    years = [int(y) for y in trend["years"]]
    series = trend["series"][:len(TREND_STYLES)]
    if not years or not series:
        raise ValueError("trend needs at least one year and one series")
    left, right, top, bottom = 34.0, TREND_WIDTH - 12.0, 14.0, TREND_HEIGHT - 16.0
    span = max(len(years) - 1, 1)
    pad = (right - left) / (2 * span + 2) if len(years) > 1 else (right - left) / 2

    def x_of(year: int) -> float:
        return left + pad + (right - left - 2 * pad) * (year - years[0]) / span if len(years) > 1 else (left + right) / 2

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * _score(value) / 100

    body = [_label(2, top - 6, trend.get("unit", "分"), 7.5, anchor="start", colour=MUTED)]
    for level in (0, 25, 50, 75, 100):
        y = y_of(level)
        colour = MUTED if level == 0 else GRID
        body.append(f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(right)}" y2="{_num(y)}" stroke="{colour}" '
                    f'stroke-width="0.6"/>')
        body.append(_label(left - 5, y + 2.6, str(level), 7.5, anchor="end", colour=MUTED))
    for year in years:
        body.append(_label(x_of(year), bottom + 11, f"{year}年", 8, colour=MUTED))
    for i in reversed(range(len(series))):  # the county last, on top
        colour, width, dash, marker = TREND_STYLES[i]
        points = [(x_of(y), y_of(float(v)), float(v)) for y, v in zip(years, series[i]["values"]) if v is not None]
        if not points:
            continue
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        if len(points) > 1:
            path = " ".join(f"{_num(x)},{_num(y)}" for x, y, _ in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{width}"{dashes} '
                        f'stroke-linejoin="round"/>')
        body.extend(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{marker}" fill="{colour}"/>' for x, y, _ in points)
        if i == 0:
            body.extend(_label(x, y - 6, f"{v:.1f}", 8, bold=True) for x, y, v in points)
    return _svg(TREND_WIDTH, TREND_HEIGHT, body)


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
    with _rc():
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
    with _rc():
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


SOBOL_WIDTH = 504.0  # pt: printed across the text width


def sobol_svg(sobol: dict) -> bytes:
    """Paired horizontal bars per uncertain input: first-order (S1, light) and total (ST, dark) Sobol indices on
    0-1. ``sobol``: ``rows`` of {label, s1, st}."""
    rows = sobol["rows"]
    label_w, top, row_h, font = 150.0, 16.0, 22.0, 8.0
    plot_w = SOBOL_WIDTH - label_w - 40.0
    height = top + row_h * len(rows) + 22.0
    body = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + plot_w * tick
        body.append(f'<line x1="{_num(x)}" y1="{_num(top - 4)}" x2="{_num(x)}" y2="{_num(height - 18)}" '
                    f'stroke="{GRID}" stroke-width="0.6"/>')
        body.append(_label(x, height - 8, f"{tick:g}", 7, colour=MUTED))
    for k, row in enumerate(rows):
        y = top + row_h * k
        body.append(_label(label_w - 6, y + 12, row["label"], font, anchor="end"))
        for offset, value, colour in ((2.0, row["s1"], "#9cc3b4"), (10.0, row["st"], ACCENT)):
            width = plot_w * min(max(float(value), 0.0), 1.0)
            body.append(f'<rect x="{_num(label_w)}" y="{_num(y + offset)}" width="{_num(width)}" height="7" '
                        f'fill="{colour}"/>')
        body.append(_label(label_w + plot_w * min(max(float(row["st"]), 0.0), 1.0) + 4, y + 16.5,
                           f"{float(row['st']):.2f}", 7, anchor="start", colour=INK))
    body.append(f'<rect x="{_num(label_w)}" y="2" width="8" height="6" fill="#9cc3b4"/>')
    body.append(_label(label_w + 11, 8, "一阶指数 S1", 7, anchor="start", colour=MUTED))
    body.append(f'<rect x="{_num(label_w + 80)}" y="2" width="8" height="6" fill="{ACCENT}"/>')
    body.append(_label(label_w + 91, 8, "总效应指数 ST", 7, anchor="start", colour=MUTED))
    return _svg(SOBOL_WIDTH, height, body)


def intervals_svg(intervals: dict) -> bytes:
    """Each county's rank: its 5-95 % Monte Carlo interval as a line, the median as a dot, the nominal rank as a
    tick. ``intervals``: ``rows`` of {label, rank, p05, median, p95} (in ranking order) and ``of`` (counties)."""
    rows, of = intervals["rows"], max(int(intervals["of"]), 1)
    label_w, top, row_h = 70.0, 14.0, 13.0
    plot_w = SOBOL_WIDTH - label_w - 20.0
    height = top + row_h * len(rows) + 20.0
    x_of = lambda rank: label_w + plot_w * (float(rank) - 1) / max(of - 1, 1)  # noqa: E731
    body = []
    for tick in sorted({1, of} | {round(of * q) for q in (0.25, 0.5, 0.75)}):
        x = x_of(max(tick, 1))
        body.append(f'<line x1="{_num(x)}" y1="{_num(top - 4)}" x2="{_num(x)}" y2="{_num(height - 16)}" '
                    f'stroke="{GRID}" stroke-width="0.6"/>')
        body.append(_label(x, height - 6, str(max(tick, 1)), 7, colour=MUTED))
    for k, row in enumerate(rows):
        y = top + row_h * k + 6
        body.append(_label(label_w - 6, y + 3, row["label"], 7.5, anchor="end"))
        body.append(f'<line x1="{_num(x_of(row["p05"]))}" y1="{_num(y)}" x2="{_num(x_of(row["p95"]))}" y2="{_num(y)}" '
                    f'stroke="{ACCENT}" stroke-width="2.4" stroke-linecap="round" opacity="0.45"/>')
        body.append(f'<circle cx="{_num(x_of(row["median"]))}" cy="{_num(y)}" r="2.6" fill="{ACCENT}"/>')
        body.append(f'<line x1="{_num(x_of(row["rank"]))}" y1="{_num(y - 4.5)}" x2="{_num(x_of(row["rank"]))}" '
                    f'y2="{_num(y + 4.5)}" stroke="{REFERENCE}" stroke-width="1.4"/>')
    body.append(_label(label_w, 8, "线段：5%–95%排名区间；圆点：中位排名；竖线：本次排名", 7, anchor="start", colour=MUTED))
    return _svg(SOBOL_WIDTH, height, body)
