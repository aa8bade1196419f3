"""Write the illustrative (示例数据) bureau submissions under data/sample/.

The figures are invented from a fixed seed and anchored on published ones where known:

- 常住人口: the 2020 census (陇南市第七次全国人口普查公报), held for every sample year (sum 240.7272万, the city's
  census total); the yearly resident-population estimates are not anchored;
- 地区生产总值: 武都区 137.27亿元 (2020); 成县 64.26亿元 (2019) and 87.62亿元 (2023, so 2021-2022 lie on the
  constant-growth path between them); 礼县 41.62亿元 (2019); the rest invented at a plausible scale;
- city-wide: 森林覆盖率 about 45 %, 空气质量优良天数比例 97-98 % (2023), every monitored surface-water section
  good (2023: every county 100 %), 生态产业增加值占GDP about 23 % (2022).

GEP physical accounts and prices (config/gep.yaml) are drawn from a second seeded stream, so the figures above
do not move with them. Their magnitudes are shaped by published accounts:

- GEP against GDP: 重庆武隆 2021 GEP 2,393亿元 = 9.13 × GDP (58.82万元 per person), 浙江宁海 2018 2.09 × GDP
  with regulating services 53 % of GEP: the sample's 2021 GEP is 4-7.5 × GDP for key ecological-function
  counties, 3-4.5 × for agricultural ones and 1.8-2.6 × for urbanised ones, 气候调节 (a reported quantity)
  being the item that closes the gap;
- ecosystem areas: 森林面积 = 国土面积 (zones.yaml) × the sample's 森林覆盖率, so the two bureaus agree;
- prices: 碳汇价格 near the national carbon market's yearly averages (about 43, 55 and 68 元/吨, 2021-2023);
  花椒 and pork prices falling in 2022-2023 (林产品、畜产品综合价格); the others held near plausible levels.
  Every price is illustrative, not a 价格认定 result.
- 两当县 reports its 水源涵养量 directly (the account says so); 礼县's typed GEP differs from the computed one by
  about 9 % in 2023, so its scorecard shows the cross-check warning.

Everything else is invented; nothing here is an official statistic. The output is byte-for-byte reproducible:

    python scripts/make_sample_data.py [--out data/sample]

Each bureau gets the format it plausibly uses: xlsx with a title row over the
header, plain UTF-8 csv, UTF-8 csv with a BOM, and GBK csv.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from evaluation.exports import reproducible_xlsx

SEED = 20240622
YEARS = (2021, 2022, 2023)
FIXED_ZIP_TIME = (2024, 1, 1, 0, 0, 0)

# code, full name, short name, 2020 census population (万人, published), 2020 GDP (亿元), profile
# The GDP of 武都区 is published (2020); 成县's and 礼县's are carried from their published 2019 figures at 5 %;
# the rest are invented at a plausible scale.
COUNTIES = [
    ("621202", "武都区", "武都", 54.6616, 137.27, "eco"),
    ("621221", "成县", "成县", 24.1587, 64.26 * 1.05, "urban"),
    ("621222", "文县", "文县", 19.6906, 50.0, "eco"),
    ("621223", "宕昌县", "宕昌", 25.4944, 36.0, "eco"),
    ("621224", "康县", "康县", 16.2418, 34.0, "eco"),
    ("621225", "西和县", "西和", 35.1069, 43.0, "agri"),
    ("621226", "礼县", "礼县", 42.4135, 41.62 * 1.05, "agri"),
    ("621227", "徽县", "徽县", 18.9888, 78.0, "urban"),
    ("621228", "两当县", "两当", 3.9709, 15.0, "eco"),
]
CENSUS_TOTAL = 240.7272  # 万人, 陇南市 2020 census
# published GDP (亿元) that the sample reproduces exactly: (county, year) -> value; 2019 anchors set the path
GDP_ANCHORS = {("621221", 2019): 64.26, ("621221", 2023): 87.62}

TITLE_SUFFIX = "（示例数据，仅供演示）"

# 国土面积 (平方公里), as config/zones.yaml holds them
LAND_AREA = {"621202": 4683, "621221": 1676, "621222": 4994, "621223": 3331, "621224": 2958, "621225": 1861,
             "621226": 4300, "621227": 2722, "621228": 1408}
# GEP prices, the same for every county (the 发改委's price table): year -> variable -> 元 per unit
PRICES = {
    2021: {"price_agri": 2600, "price_forest_products": 22000, "price_livestock": 26000, "price_fishery": 16000,
           "price_power": 0.28, "price_reservoir": 8.6, "price_soil": 3.2, "price_air": 1500,
           "price_water_treatment": 2800, "price_carbon": 43, "price_electricity": 0.51, "price_travel": 380,
           "price_landscape": 300},
    2022: {"price_agri": 2700, "price_forest_products": 23000, "price_livestock": 24000, "price_fishery": 16500,
           "price_power": 0.28, "price_reservoir": 8.8, "price_soil": 3.3, "price_air": 1520,
           "price_water_treatment": 2850, "price_carbon": 55, "price_electricity": 0.51, "price_travel": 360,
           "price_landscape": 300},
    2023: {"price_agri": 2750, "price_forest_products": 21500, "price_livestock": 22500, "price_fishery": 16800,
           "price_power": 0.29, "price_reservoir": 9.0, "price_soil": 3.4, "price_air": 1550,
           "price_water_treatment": 2900, "price_carbon": 68, "price_electricity": 0.51, "price_travel": 420,
           "price_landscape": 310},
}
GEP_TO_GDP = {"eco": (4.0, 7.5), "agri": (3.0, 4.5), "urban": (1.8, 2.6)}
DIRECT_WATER_CONSERVATION = {"621228"}  # counties that report 水源涵养量 directly
TYPED_GEP_OFF = {("621226", 2023): 1.09}  # (county, year) -> typed / computed GEP


# the GEP columns of each bureau's table: (header, variable), as config/sources.yaml reads them
FORESTRY_GEP = [("森林面积（平方公里）", "area_forest"), ("草地面积（平方公里）", "area_grassland"),
                ("湿地面积（平方公里）", "area_wetland"), ("森林净生态系统生产力（吨碳/公顷）", "nep_forest"),
                ("草地净生态系统生产力（吨碳/公顷）", "nep_grassland"), ("湿地净生态系统生产力（吨碳/公顷）", "nep_wetland"),
                ("林产品产量（万吨）", "forest_products")]
WATER_GEP = [("年降水量（毫米）", "precipitation"), ("森林地表径流深（毫米）", "runoff_forest"),
             ("草地地表径流深（毫米）", "runoff_grassland"), ("湿地地表径流深（毫米）", "runoff_wetland"),
             ("森林蒸散发量（毫米）", "et_forest"), ("草地蒸散发量（毫米）", "et_grassland"),
             ("湿地蒸散发量（毫米）", "et_wetland"), ("水源涵养量（直接报送，万立方米）", "water_conservation_reported"),
             ("降雨侵蚀力因子R", "rusle_r"), ("土壤可蚀性因子K", "rusle_k"), ("坡长坡度因子LS", "rusle_ls"),
             ("洪水调蓄量（万立方米）", "flood_storage")]
ECO_GEP = [("大气污染物净化量（吨）", "air_purified"), ("水体污染物净化量（吨）", "water_purified"),
           ("植被蒸腾与水面蒸发消耗能量（折电量，亿千瓦时）", "climate_energy")]
AGRI_GEP = [("农产品产量（万吨）", "agri_products"), ("畜产品产量（万吨）", "livestock_products"),
            ("水产品产量（万吨）", "fishery_products")]
NDRC_GEP = [("水电发电量（亿千瓦时）", "hydropower"), ("价格基准年", "price_base_year"),
            ("农产品综合价格（元/吨）", "price_agri"), ("林产品综合价格（元/吨）", "price_forest_products"),
            ("畜产品综合价格（元/吨）", "price_livestock"), ("水产品综合价格（元/吨）", "price_fishery"),
            ("水电上网电价（元/千瓦时）", "price_power"), ("水库单位库容造价（元/立方米）", "price_reservoir"),
            ("土壤保持单位价值（元/吨）", "price_soil"), ("大气污染物治理成本（元/吨）", "price_air"),
            ("水污染物治理成本（元/吨）", "price_water_treatment"), ("碳汇价格（元/吨二氧化碳）", "price_carbon"),
            ("电价（元/千瓦时）", "price_electricity"), ("人均旅行费用（元/人次）", "price_travel"),
            ("景观单位面积溢价（元/平方米）", "price_landscape")]


def _r(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high)


def county_profile(rng: random.Random, code: str, pop: float, gdp: float, kind: str) -> dict[str, float]:
    """Base-year (2021) values for one county."""
    eco = kind == "eco"
    urban = kind == "urban"
    agri = kind == "agri"
    rural_income = _r(rng, 9500, 12500) + (800 if urban else 0)
    return {
        "population": pop,  # the 2020 census, every year
        "gdp": gdp * _r(rng, 1.04, 1.09),
        "rural_income": rural_income,
        "urban_income": rural_income * _r(rng, 2.6, 3.3),
        "eco_industry_share": _r(rng, 20, 28) if eco else _r(rng, 15, 23),  # city about 23 % in 2022
        "eqi": _r(rng, 62, 76) if eco else _r(rng, 52, 64),
        "good_air_days": _r(rng, 96, 99.6) if eco else _r(rng, 94, 98),  # city 97-98 % in 2023
        "surface_water_good": _r(rng, 94, 100) if eco else _r(rng, 90, 100),  # 2023: every section good
        "rural_sewage_treated": _r(rng, 25, 45) if not urban else _r(rng, 40, 60),
        "public_satisfaction": _r(rng, 84, 93),
        "forest_cover": _r(rng, 42, 60) if eco else _r(rng, 30, 44),  # city about 45 %
        "grain_output": pop * (_r(rng, 0.38, 0.52) if agri else _r(rng, 0.18, 0.32)),  # 万吨
        "protected_area_share": _r(rng, 8, 26) if eco else _r(rng, 1, 6),
        "soil_conservation_rate": _r(rng, 62, 78) if eco else _r(rng, 55, 68),
        "water_use": gdp * _r(rng, 60, 110) if not agri else gdp * _r(rng, 110, 160),
        "specialty_agri_output": pop * (_r(rng, 0.45, 0.8) if agri else _r(rng, 0.2, 0.45)),
        "green_certified_products": round(_r(rng, 12, 40) if agri else _r(rng, 4, 22)),
        "tourism_revenue": pop * (_r(rng, 0.5, 1.3) if eco else _r(rng, 0.3, 0.7)),
        "tourist_visits": pop * _r(rng, 15, 40),
        "gep": pop * (_r(rng, 18, 45) if eco else _r(rng, 6, 14)),
        "gep_growth": _r(rng, 1.5, 6.5),
        "eco_trade_value": _r(rng, 200, 3500) if eco else _r(rng, 50, 1500),
        "eod_projects": round(_r(rng, 0, 3)),
        "energy_use": gdp * (_r(rng, 0.75, 1.1) if urban else _r(rng, 0.45, 0.8)),
        "non_fossil_share": _r(rng, 28, 52) if eco else _r(rng, 15, 32),
        "eco_compensation": pop * (_r(rng, 500, 1100) if eco else _r(rng, 150, 400)),
        "green_loans": gdp * _r(rng, 0.04, 0.12),
        "total_loans": gdp * _r(rng, 0.9, 1.4),
    }


# yearly drift: multiplicative growth for levels, additive for shares
GROWTH = {
    "gdp": (0.04, 0.08), "grain_output": (-0.02, 0.03), "rural_income": (0.06, 0.09),
    "urban_income": (0.04, 0.065), "water_use": (-0.03, 0.01), "specialty_agri_output": (0.04, 0.12),
    "tourism_revenue": (0.05, 0.35), "tourist_visits": (0.05, 0.3), "gep": (0.02, 0.07),
    "eco_trade_value": (0.0, 0.4), "energy_use": (0.0, 0.04), "eco_compensation": (0.0, 0.1),
    "green_loans": (0.08, 0.25), "total_loans": (0.04, 0.09),
}
SHARE_DRIFT = {
    "eco_industry_share": (0.2, 1.5), "eqi": (-0.5, 1.2), "good_air_days": (-0.8, 0.8),
    "surface_water_good": (-1.5, 2.0), "rural_sewage_treated": (2.0, 6.0), "public_satisfaction": (-0.5, 1.5),
    "forest_cover": (0.1, 0.6), "protected_area_share": (0.0, 0.3), "soil_conservation_rate": (0.3, 1.0),
    "non_fossil_share": (0.3, 2.0), "gep_growth": (-1.0, 1.0),
}
CAPS = {"good_air_days": 100.0, "surface_water_good": 100.0, "public_satisfaction": 99.0}


def build_values(rng: random.Random) -> dict[int, dict[str, dict[str, float]]]:
    """year -> county code -> variable -> value."""
    out: dict[int, dict[str, dict[str, float]]] = {y: {} for y in YEARS}
    for code, _name, _short, pop, gdp, kind in COUNTIES:
        values = county_profile(rng, code, pop, gdp, kind)
        for year in YEARS:
            if year != YEARS[0]:
                for var, (lo, hi) in GROWTH.items():
                    values[var] *= 1 + rng.uniform(lo, hi)
                for var, (lo, hi) in SHARE_DRIFT.items():
                    values[var] = min(values[var] + rng.uniform(lo, hi), CAPS.get(var, 100.0))
                values["eod_projects"] = max(0, values["eod_projects"] + rng.choice([0, 0, 1]))
                values["green_certified_products"] += rng.choice([0, 1, 2, 3])
            out[year][code] = dict(values)
    _anchor_gdp(out)
    for year in YEARS:  # published in 2023: every monitored surface-water section good
        if year == 2023:
            for code in out[year]:
                out[year][code]["surface_water_good"] = 100.0
    # the GEP accounts from their own stream (the figures above stay as they were drawn)
    gep_accounts(random.Random(SEED + 21), out, [(c[0], c[5], 0.0) for c in COUNTIES], LAND_AREA)
    return out


def gep_accounts(rng: random.Random, out: dict[int, dict[str, dict[str, float]]],
                 units: list[tuple[str, str, float]], land: dict[str, float],
                 prices: dict[int, dict[str, float]] | None = None) -> None:
    """Add the GEP physical accounts, prices and the typed GEP to `out` (year -> county -> variable), for
    `units` = (code, profile, unused); see the module docstring for the anchors. Vectorised where it counts
    (the national benchmark calls it for 2,844 counties)."""
    import pandas as pd

    from evaluation import gep
    from evaluation.catalogue import load_catalogue

    catalogue = load_catalogue()
    prices = prices or PRICES
    years = sorted(out)
    ratio, climate_step = {}, {}
    for code, kind, _ in units:
        first = out[years[0]][code]
        area = land[code]
        base = {
            "grass_share": _r(rng, 0.08, 0.2), "wet_share": _r(rng, 0.003, 0.012),
            "precipitation": _r(rng, 450, 850),
            "rf": _r(rng, 0.15, 0.28), "rg": _r(rng, 0.2, 0.33), "rw": _r(rng, 0.3, 0.42),
            "ef": _r(rng, 0.45, 0.6), "eg": _r(rng, 0.5, 0.62), "ew": _r(rng, 0.5, 0.66),
            "nep_forest": _r(rng, 1.5, 3.5), "nep_grassland": _r(rng, 0.3, 1.0), "nep_wetland": _r(rng, 0.5, 1.5),
            "rusle_r": _r(rng, 1200, 2600), "rusle_k": _r(rng, 0.02, 0.04), "rusle_ls": _r(rng, 3, 8),
            "flood_storage": _r(rng, 500, 4000), "air_per_km2": _r(rng, 5, 12), "water_per_km2": _r(rng, 0.5, 1.5),
            "agri_products": first["population"] * _r(rng, 0.6, 1.2),
            "forest_products": _r(rng, 1.0, 4.0) if kind == "eco" else _r(rng, 0.4, 1.5),
            "livestock_products": first["population"] * _r(rng, 0.04, 0.08),
            "fishery_products": first["population"] * _r(rng, 0.0005, 0.003),
            "hydropower": _r(rng, 2.0, 12.0) if kind == "eco" else _r(rng, 0.2, 3.0),
            "landscape_area": first["population"] * _r(rng, 1.0, 4.0),
        }
        ratio[code] = _r(rng, *GEP_TO_GDP[kind])
        for i, year in enumerate(years):
            row = out[year][code]
            if i:
                for key in ("agri_products", "forest_products", "livestock_products", "fishery_products",
                            "hydropower", "landscape_area", "flood_storage"):
                    base[key] *= 1 + rng.uniform(-0.03, 0.07)
                base["precipitation"] *= 1 + rng.uniform(-0.12, 0.12)
                base["grass_share"] *= 1 + rng.uniform(-0.01, 0.01)
                for key in ("nep_forest", "nep_grassland", "nep_wetland"):
                    base[key] *= 1 + rng.uniform(-0.05, 0.06)
            p = base["precipitation"]
            row.update({
                "area_forest": area * row["forest_cover"] / 100, "area_grassland": area * base["grass_share"],
                "area_wetland": area * base["wet_share"], "precipitation": p,
                "runoff_forest": p * base["rf"], "runoff_grassland": p * base["rg"], "runoff_wetland": p * base["rw"],
                "et_forest": p * base["ef"], "et_grassland": p * base["eg"], "et_wetland": p * base["ew"],
                "air_purified": area * row["forest_cover"] / 100 * base["air_per_km2"],
                "water_purified": area * base["water_per_km2"], "climate_energy": 0.0,
                **{k: base[k] for k in ("nep_forest", "nep_grassland", "nep_wetland", "rusle_r", "rusle_k", "rusle_ls",
                                        "flood_storage", "agri_products", "forest_products", "livestock_products",
                                        "fishery_products", "hydropower", "landscape_area")},
                "price_base_year": year, **prices[year],
            })
        climate_step[code] = [1.0] + [1 + rng.uniform(-0.02, 0.05) for _ in years[1:]]

    def frame(year: int) -> pd.DataFrame:
        return pd.DataFrame({c: {k: fmt(k, v) if isinstance(v, float) else v for k, v in out[year][c].items()}
                             for c, *_ in units}).T.astype("float64")

    # the first year: climate regulation closes the gap to the anchored GEP/GDP ratio (at least 15 % of GEP)
    first = years[0]
    others = gep.account(frame(first), catalogue).total
    electricity = prices[first]["price_electricity"]
    climate = {}
    for code, *_ in units:
        target = ratio[code] * out[first][code]["gdp"]
        climate[code] = max(target - float(others[code]), 0.15 * target) / electricity
    for i, year in enumerate(years):
        for code, *_ in units:
            climate[code] *= climate_step[code][i]
            out[year][code]["climate_energy"] = climate[code]
    # a county that reports 水源涵养量 directly; the typed GEP (the cross-check): the computed one, off where
    # TYPED_GEP_OFF says
    for year in years:
        direct = gep.formulas.water_balance(frame(year), catalogue.gep)
        for c in DIRECT_WATER_CONSERVATION & set(out[year]):
            out[year][c]["water_conservation_reported"] = float(direct[c]) * 1.04
        total = gep.account(frame(year), catalogue).total
        for c, *_ in units:
            out[year][c]["gep_reported"] = float(total[c]) * TYPED_GEP_OFF.get((c, year), 1.0)


def _anchor_gdp(out: dict[int, dict[str, dict[str, float]]]) -> None:
    """Put each county with two published GDP figures on the constant-growth path between them (exact at the
    anchors); the energy and water use move with it, so their intensities stay as drawn."""
    for code in {c for c, _ in GDP_ANCHORS}:
        years = sorted(y for c, y in GDP_ANCHORS if c == code)
        if len(years) < 2:
            continue
        (y0, y1), (v0, v1) = years[:2], (GDP_ANCHORS[(code, years[0])], GDP_ANCHORS[(code, years[1])])
        growth = (v1 / v0) ** (1 / (y1 - y0))
        for year in YEARS:
            row = out[year][code]
            value = v1 if year == y1 else v0 * growth ** (year - y0)
            scale = value / row["gdp"]
            row["gdp"] = value
            for var in ("energy_use", "water_use", "green_loans", "total_loans"):
                row[var] *= scale


def fmt(var: str, value: float) -> float | int:
    if var in ("eod_projects", "green_certified_products", "price_base_year"):
        return int(value)
    if var in ("rusle_k",):
        return round(value, 4)
    if var.startswith("price_"):
        return value
    if var in ("urban_income", "rural_income", "water_use", "eco_trade_value", "eco_compensation"):
        return int(round(value))
    if var in ("specialty_agri_output",):  # reported in 万元
        return int(round(value * 10000))
    if var == "population":  # the census gives 万人 to four decimals
        return round(value, 4)
    return round(value, 2)


# -- writers -------------------------------------------------------------------


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite an xlsx (a zip) with fixed timestamps so the bytes are reproducible."""
    return reproducible_xlsx(data, datetime(*FIXED_ZIP_TIME))


def write_xlsx(path: Path, sheet: str, title_rows: list[str], header: list[str], rows: list[list]) -> None:
    import datetime as dt

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for i, text in enumerate(title_rows, start=1):
        ws.cell(row=i, column=1, value=text)
        ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=len(header))
        ws.cell(row=i, column=1).font = Font(bold=i == 1, size=14 if i == 1 else 10)
        ws.cell(row=i, column=1).alignment = Alignment(horizontal="center" if i == 1 else "left")
    header_row = len(title_rows) + 1
    for j, text in enumerate(header, start=1):
        ws.cell(row=header_row, column=j, value=text).font = Font(bold=True)
        ws.column_dimensions[ws.cell(row=header_row, column=j).column_letter].width = max(12, len(text) * 2)
    for i, row in enumerate(rows, start=header_row + 1):
        for j, value in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=value)
    stamp = dt.datetime(2024, 1, 1)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "twomountains sample generator"
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(_normalise_zip(buf.getvalue()))


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def county_label(code: str, style: str) -> str:
    for c_code, name, short, *_ in COUNTIES:
        if c_code == code:
            return {"code": c_code, "name": name, "short": short}[style]
    raise KeyError(code)


def generate(out: Path) -> list[Path]:
    rng = random.Random(SEED)
    values = build_values(rng)
    written: list[Path] = []
    for year in YEARS:
        ydir = out / str(year)
        ydir.mkdir(parents=True, exist_ok=True)
        data = values[year]
        codes = [c[0] for c in COUNTIES]

        def cols(*vars_: str, label: str = "name") -> list[list]:
            return [[county_label(code, label)] + [fmt(v, data[code][v]) if v in data[code] else "" for v in vars_]
                    for code in codes]

        # statistics bureau: xlsx, title row, codes plus names
        p = ydir / f"统计局_{year}年主要经济指标.xlsx"
        stat_vars = ["population", "gdp", "urban_income", "rural_income", "eco_industry_share"]
        rows = [[code, county_label(code, "name")] + [fmt(v, data[code][v]) for v in stat_vars] for code in codes]
        write_xlsx(p, "主要指标", [f"{year}年陇南市各县区主要经济指标{TITLE_SUFFIX}"],
                   ["区县代码", "区县名称", "常住人口（万人）", "地区生产总值（亿元）", "城镇居民人均可支配收入（元）",
                    "农村居民人均可支配收入（元）", "生态产业增加值占GDP比重（%）"], rows)
        written.append(p)

        # ecology-environment bureau: UTF-8 csv, full names
        p = ydir / f"生态环境局_{year}年生态环境质量.csv"
        write_csv(p, ["县区", "生态质量指数EQI", "空气质量优良天数比例（%）", "地表水达到或好于Ⅲ类水体比例（%）",
                      "农村生活污水治理率（%）", "公众生态环境满意度（%）"] + [h for h, _ in ECO_GEP],
                  cols("eqi", "good_air_days", "surface_water_good", "rural_sewage_treated", "public_satisfaction",
                       *(v for _, v in ECO_GEP)), "utf-8")
        written.append(p)

        # forestry: xlsx, two rows above the header, short names
        p = ydir / f"林草局_{year}年林草资源.xlsx"
        write_xlsx(p, "Sheet1", [f"{year}年陇南市林草资源主要指标{TITLE_SUFFIX}", "填报单位：陇南市林业和草原局"],
                   ["单位", "森林覆盖率（%）", "自然保护地面积占国土面积比例（%）"] + [h for h, _ in FORESTRY_GEP],
                   cols("forest_cover", "protected_area_share", *(v for _, v in FORESTRY_GEP), label="short"))
        written.append(p)

        # water bureau: GBK csv
        p = ydir / f"水务局_{year}年水资源公报摘要.csv"
        write_csv(p, ["县区名称", "水土保持率（%）", "用水总量（万立方米）"] + [h for h, _ in WATER_GEP],
                  cols("soil_conservation_rate", "water_use", *(v for _, v in WATER_GEP)), "gbk")
        written.append(p)

        # agriculture bureau: UTF-8 with BOM, short names, output in 万元
        p = ydir / f"农业农村局_{year}年特色农业.csv"
        write_csv(p, ["县区", "特色农产品产值（万元）", "绿色有机地理标志农产品数量（个）", "粮食总产量（万吨）"]
                  + [h for h, _ in AGRI_GEP],
                  cols("specialty_agri_output", "green_certified_products", "grain_output", *(v for _, v in AGRI_GEP),
                       label="short"), "utf-8-sig")
        written.append(p)

        # tourism bureau: xlsx with a title row
        p = ydir / f"文旅局_{year}年旅游统计.xlsx"
        write_xlsx(p, "旅游", [f"{year}年陇南市各县区旅游接待情况{TITLE_SUFFIX}"],
                   ["县区", "旅游综合收入（亿元）", "接待游客人次（万人次）", "景观增值受益房产面积（万平方米）"],
                   cols("tourism_revenue", "tourist_visits", "landscape_area"))
        written.append(p)

        # development and reform commission: xlsx, named sheet, codes
        p = ydir / f"发改委_{year}年生态产品价值实现.xlsx"
        ndrc_vars = ["gep_reported", "eco_trade_value", "eod_projects", "energy_use", "non_fossil_share"]
        write_xlsx(p, "汇总", [f"{year}年陇南市生态产品价值实现情况{TITLE_SUFFIX}"],
                   ["行政区划代码", "GEP（亿元）", "生态产品交易额（万元）", "EOD项目数（个）",
                    "能源消费总量（万吨标准煤）", "非化石能源占比（%）"] + [h for h, _ in NDRC_GEP],
                   cols(*ndrc_vars, *(v for _, v in NDRC_GEP), label="code"))
        written.append(p)

        # finance bureau: GBK csv
        p = ydir / f"财政局_{year}年生态补偿与绿色金融.csv"
        write_csv(p, ["县区", "生态补偿资金（万元）", "绿色贷款余额（亿元）", "各项贷款余额（亿元）"],
                  cols("eco_compensation", "green_loans", "total_loans"), "gbk")
        written.append(p)

    marker = out / "SAMPLE.yaml"
    marker.write_text(
        "# This folder holds illustrative data generated by scripts/make_sample_data.py.\n"
        "# Every report made from it is stamped 示例数据.\n"
        f"illustrative: true\nseed: {SEED}\nlabel: 示例数据\n",
        encoding="utf-8",
    )
    written.append(marker)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "sample")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
