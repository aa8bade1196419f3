"""Issue 21: GEP accounting from physical accounts and prices.

1. A hand-worked two-county, two-year account: every item, class, total, constant-price growth and conversion rate.
2. The 2023 sample: GEP computed from the accounts, 人均GEP traced to the account and price rows (workbook, portal
   provenance), a price correction re-issuing what changed with a 修订说明 naming the price.
3. A hostile physical-accounts table refused in Chinese.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from evaluation import gep, operations, pipeline
from evaluation.catalogue import load_catalogue
from evaluation.gep.config import GepConfig

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
EXACT = dict(rel=1e-12, abs=1e-12)


# -- 1. hand-worked ----------------------------------------------------------------------------------------------

def _small_config() -> GepConfig:
    return GepConfig(**{
        "ecosystems": {
            "forest": {"name": "森林", "area": "a_f", "runoff": "r_f", "evapotranspiration": "e_f", "nep": "n_f",
                       "c_factor": 0.01, "p_factor": 1},
            "grass": {"name": "草地", "area": "a_g", "runoff": "r_g", "evapotranspiration": "e_g", "nep": "n_g",
                      "c_factor": 0.05, "p_factor": 0.8},
        },
        "formulas": {"precipitation": "P", "erosivity": "R", "erodibility": "K", "slope_length": "LS"},
        "items": [
            {"id": "crops", "class": "supply", "name": "农业产品", "var": "crops", "unit": "万吨", "price": "p_crops",
             "method": "market_value"},
            {"id": "water", "class": "regulating", "name": "水源涵养", "formula": "water_balance", "reported": "w_direct",
             "unit": "万立方米", "price": "p_res", "method": "shadow_project"},
            {"id": "soil", "class": "regulating", "name": "土壤保持", "formula": "rusle", "unit": "万吨", "price": "p_soil",
             "method": "replacement_cost"},
            {"id": "carbon", "class": "regulating", "name": "固碳", "formula": "nep_carbon", "unit": "万吨二氧化碳",
             "price": "p_c", "method": "market_value"},
            {"id": "visits", "class": "cultural", "name": "休闲旅游", "var": "visits", "unit": "万人次",
             "price": "p_travel", "method": "travel_cost"},
        ],
        "realised": [{"var": "income"}, {"var": "comp"}],
        "cross_check": {"var": "typed", "tolerance": 0.05},
        "outputs": {"gep": "gep", "growth": "gep_growth", "conversion": "gep_conversion_rate"},
    })


def _catalogue(config: GepConfig):
    units = {"income": "亿元", "comp": "万元", "population": "万人", "gdp": "亿元"}
    return SimpleNamespace(gep=config, variables={k: SimpleNamespace(unit=u, name=k) for k, u in units.items()})


# County X (year 1): forest 100 km², grass 50 km²; P 800 mm; forest runoff 200, ET 500 (depth 100 mm); grass runoff
# 300, ET 450 (depth 50 mm). R 1000, K 0.02, LS 5 (potential erosion 100 t/ha); NEP forest 3, grass 1 tC/ha.
# County Y (year 1): forest 200 km² only; P 600, runoff 100, ET 400; reports 水源涵养 directly: 2,500 万m³.
# R 500, K 0.03, LS 4 (60 t/ha); NEP forest 2.
YEAR1 = pd.DataFrame({
    "X": {"a_f": 100, "a_g": 50, "P": 800, "r_f": 200, "e_f": 500, "r_g": 300, "e_g": 450, "w_direct": None,
          "R": 1000, "K": 0.02, "LS": 5, "n_f": 3, "n_g": 1, "crops": 2, "visits": 50,
          "p_crops": 3000, "p_res": 8, "p_soil": 2, "p_c": 60, "p_travel": 200,
          "income": 0.2, "comp": 500, "typed": 2.70, "population": 10, "gdp": 1.0},
    "Y": {"a_f": 200, "a_g": 0, "P": 600, "r_f": 100, "e_f": 400, "r_g": 0, "e_g": 0, "w_direct": 2500,
          "R": 500, "K": 0.03, "LS": 4, "n_f": 2, "n_g": 0, "crops": 1, "visits": 10,
          "p_crops": 3000, "p_res": 8, "p_soil": 2, "p_c": 60, "p_travel": 200,
          "income": 0.5, "comp": 0, "typed": 3.0, "population": 5, "gdp": 1.0},
}).T.astype("float64")
# Year 2: X grows crops to 2.2 万吨 and visits to 55 万人次; Y is unchanged; prices: crops 3,300, carbon 80.
YEAR2 = YEAR1.copy()
YEAR2.loc["X", ["crops", "visits"]] = [2.2, 55]
YEAR2[["p_crops", "p_c"]] = [3300.0, 80.0]


def test_a_hand_worked_two_county_two_year_account_is_reproduced_exactly():
    config = _small_config()
    cat = _catalogue(config)
    one = gep.account(YEAR1, cat)
    # X: water = 0.1 × (100 × 100 + 50 × 50) = 1,250 万m³ → × 8 元/m³ = 1.00 亿元
    #    soil  = (100 × 100 × 100 × (1 − 0.01) + 50 × 100 × 100 × (1 − 0.05 × 0.8)) / 10^4 = (990,000 + 480,000) / 10^4
    #          = 147 万吨 → × 2 元/吨 = 0.0294 亿元
    #    carbon = (100 × 100 × 3 + 50 × 100 × 1) × 44/12 / 10^4 = 12.8333… 万吨CO2 → × 60 = 0.077 亿元
    #    crops 2 万吨 × 3,000 = 0.6 亿元; visits 50 万人次 × 200 = 1.0 亿元
    assert one.quantity.loc["X", "water"] == pytest.approx(1250, **EXACT)
    assert one.quantity.loc["X", "soil"] == pytest.approx(147, **EXACT)
    assert one.quantity.loc["X", "carbon"] == pytest.approx(35000 * 44 / 12 / 1e4, **EXACT)
    assert one.value.loc["X"].to_dict() == pytest.approx(
        {"crops": 0.6, "water": 1.0, "soil": 0.0294, "carbon": 0.077, "visits": 1.0}, **EXACT)
    assert one.classes.loc["X"].to_dict() == pytest.approx({"supply": 0.6, "regulating": 1.1064, "cultural": 1.0}, **EXACT)
    assert one.total["X"] == pytest.approx(2.7064, **EXACT)
    # Y: water reported directly (2,500 万m³, the formula would give 0.1 × 200 × 100 = 2,000) → 2.0 亿元
    #    soil = 200 × 100 × 60 × 0.99 / 10^4 = 118.8 万吨 → 0.02376; carbon = 40,000 × 44/12 / 10^4 → × 60 = 0.088
    #    crops 0.3, visits 0.2 → GEP 2.61176
    assert one.basis.loc["Y", "water"] == gep.BASIS_REPORTED and one.basis.loc["X", "water"] == gep.BASIS_FORMULA
    assert one.value.loc["Y"].to_dict() == pytest.approx(
        {"crops": 0.3, "water": 2.0, "soil": 0.02376, "carbon": 0.088, "visits": 0.2}, **EXACT)
    assert one.total["Y"] == pytest.approx(2.61176, **EXACT)
    # conversion: X (0.2 亿 + 500 万元) / 2.7064 = 9.2374…%; Y 0.5 / 2.61176
    assert one.conversion["X"] == pytest.approx(0.25 / 2.7064 * 100, **EXACT)
    assert one.conversion["Y"] == pytest.approx(0.5 / 2.61176 * 100, **EXACT)
    # cross-check: X typed 2.70 (−0.24 %, within 5 %); Y typed 3.0 (+14.9 %): flagged
    assert one.flagged().to_dict() == {"X": False, "Y": True}
    assert one.per_capita["X"] == pytest.approx(0.27064, **EXACT)
    assert one.growth.isna().all()  # no previous year: no growth

    two = gep.account(YEAR2, cat, previous=YEAR1)
    # X, year 2 at current prices: crops 2.2 × 3,300 = 0.726; water 1.0; soil 0.0294; carbon 12.8333 × 80 = 0.10267;
    # visits 55 × 200 = 1.1 → 2.958067. At last year's prices: 0.66 + 1.0 + 0.0294 + 0.077 + 1.1 = 2.8664
    assert two.total["X"] == pytest.approx(0.726 + 1.0 + 0.0294 + 35000 * 44 / 12 / 1e4 * 80 / 1e4 + 1.1, **EXACT)
    assert two.growth["X"] == pytest.approx((2.8664 / 2.7064 - 1) * 100, **EXACT)  # 5.9119 %, not price inflation
    assert two.quantity_effect.loc["X"].sum() == pytest.approx(0.16, **EXACT)
    assert two.price_effect.loc["X"].sum() == pytest.approx(two.total["X"] - 2.8664, **EXACT)
    assert (two.quantity_effect + two.price_effect).sum(axis=1).to_dict() == pytest.approx(
        (two.total - one.total).to_dict(), **EXACT)
    # Y: same quantities, dearer crops and carbon: GEP up, constant-price growth exactly 0
    assert two.growth["Y"] == pytest.approx(0.0, abs=1e-12)
    assert two.total["Y"] == pytest.approx(0.33 + 2.0 + 0.02376 + 40000 * 44 / 12 / 1e4 * 80 / 1e4 + 0.2, **EXACT)
    # and the computed variables the index scores
    derived = gep.derive(YEAR2, cat, YEAR1)
    assert derived.loc["X", "gep"] == pytest.approx(two.total["X"], **EXACT)
    assert derived.loc["X", "gep_growth"] == pytest.approx(two.growth["X"], **EXACT)
    assert derived.loc["Y", "gep_conversion_rate"] == pytest.approx(two.conversion["Y"], **EXACT)


def test_a_water_surface_retains_no_soil_and_a_year_before_accounting_keeps_its_typed_gep(sample_year):
    catalogue, intakes, history = sample_year
    values = pipeline.assemble_values(intakes, catalogue, 2023, history)
    wetter = values.copy()
    wetter["area_wetland"] *= 3
    base, more = gep.account(values, catalogue), gep.account(wetter, catalogue)
    assert (more.quantity["soil_retention"] == base.quantity["soil_retention"]).all()  # wetland: no C factor, no RUSLE
    assert (more.quantity["water_conservation"] > base.quantity["water_conservation"]).any()
    # a year whose ledger holds no prices (before accounting began) keeps the GEP and growth the 发改委 typed then
    legacy = values.copy()
    legacy[[i.price for i in catalogue.gep.items]] = float("nan")
    legacy["gep"], legacy["gep_growth"] = 123.0, 4.5
    kept = gep.derive(legacy, catalogue)
    assert (kept["gep"] == 123.0).all() and (kept["gep_growth"] == 4.5).all()
    one = legacy.copy()
    one.loc["621202", "price_carbon"] = 68.0  # prices reported: the account's, missing where an input is
    assert pd.isna(gep.derive(one, catalogue).loc["621202", "gep"])


def test_a_missing_input_makes_gep_missing_not_smaller():
    cat = _catalogue(_small_config())
    values = YEAR1.copy()
    values.loc["X", "p_soil"] = float("nan")
    account = gep.account(values, cat)
    assert pd.isna(account.total["X"]) and pd.isna(account.value.loc["X", "soil"])
    assert account.total["Y"] == pytest.approx(2.61176, **EXACT)
    dry = YEAR1.copy()
    dry.loc["X", "e_g"] = 700  # runoff 300 + ET 700 > P 800: the grassland conserves nothing, never a negative amount
    assert gep.account(dry, cat).quantity.loc["X", "water"] == pytest.approx(1000, **EXACT)


def test_the_configured_catalogue_names_its_sources_and_reads_only_reported_variables():
    catalogue = load_catalogue()
    config = catalogue.gep
    assert {i.cls for i in config.items} == {"supply", "regulating", "cultural"}
    assert {"water_conservation", "soil_retention", "flood_regulation", "air_purification", "water_purification",
            "carbon_sequestration", "climate_regulation", "recreation", "landscape"} <= {i.id for i in config.items}
    assert all(i.source for i in config.items) and config.source and config.realised_source
    for name in config.inputs():
        assert not catalogue.variables[name].computed
    for name in config.output_ids():
        assert catalogue.variables[name].computed and not catalogue.department_variables("ndrc").count(
            catalogue.variables[name])
    # this year's carbon price moves GEP and the conversion rate, not the growth (at last year's prices); the typed
    # GEP and the price year move no value
    assert set(catalogue.feeds("price_carbon")) == {"gep_per_capita", "gep_conversion_rate"}
    assert set(catalogue.feeds("area_forest")) == {"gep_per_capita", "gep_growth", "gep_conversion_rate"}
    assert catalogue.feeds("gep_reported") == () and catalogue.feeds("price_base_year") == ()


# -- 2. the sample ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_year():
    catalogue = load_catalogue()
    history = {}
    for year in (2021, 2022):
        history[year] = pipeline.assemble_values(operations.check_folder(catalogue, SAMPLE, year), catalogue, year, history)
    intakes = operations.check_folder(catalogue, SAMPLE, 2023)
    return catalogue, intakes, history


def test_the_sample_computes_gep_from_its_accounts_and_scores_it(sample_year):
    catalogue, intakes, history = sample_year
    made = operations.evaluate(catalogue, intakes, 2023, run_date="2026-12-01", history=history, analyse=False)
    account = made.gep
    assert account is not None and account.total.notna().all()
    wudu = "621202"
    # 人均GEP = the account's total over the census population, as the index scores it
    assert made.result.raw.at[wudu, "gep_per_capita"] == pytest.approx(
        account.value.loc[wudu].sum() / made.values.at[wudu, "population"], rel=1e-12)
    assert made.values.at[wudu, "gep_growth"] == pytest.approx(account.growth[wudu], rel=1e-12)
    assert pd.notna(account.growth[wudu])
    # plausible against published accounts (武隆 9.13 × GDP, 宁海 2.09 ×): every county between 1.5 and 10 × GDP
    assert account.gdp_ratio.between(1.5, 10).all()
    # the scorecard carries the account and traces each formula item to its basis; 两当县 reports water directly
    context = made.report(wudu).context
    assert context["gep"]["total"] == f"{account.total[wudu]:,.2f}"
    assert next(r for r in context["gep"]["rows"] if r.get("id") == "water_conservation")["basis"] == gep.BASIS_FORMULA
    assert "水源涵养" in made.report("621228").context["gep"]["reported_items"]
    # 礼县's typed GEP is about 9 % off: a warning on its scorecard, none on 武都区's
    assert any("发改委填报的GEP" in n for n in made.report("621226").context["notes"])
    assert not any("发改委填报的GEP" in n for n in context["notes"])


def test_gep_per_capita_traces_to_the_account_and_price_rows_in_workbook_and_portal(sample_year, tmp_path):
    from openpyxl import load_workbook

    from evaluation.ledger import Ledger
    from evaluation.workbench import provenance

    catalogue, intakes, history = sample_year
    made = operations.evaluate(catalogue, intakes, 2023, run_date="2026-12-01", history=history, analyse=False)
    _, data = made.workbook()
    wb = load_workbook(io.BytesIO(data), read_only=True)
    rows = list(wb["GEP核算账户"].iter_rows(values_only=True))
    header = rows[0]
    used = {r[header.index("核算项目")]: r[header.index("所用报送数据及来源")] for r in rows[1:] if r[0] == "621202"}
    assert "碳汇价格 68（发改委《发改委_2023年生态产品价值实现.xlsx》第" in used["固碳"]
    assert "森林面积" in used["固碳"] and "林草局《林草局_2023年林草资源.xlsx》第" in used["固碳"]
    assert "年降水量" in used["水源涵养"] and "水务局《水务局_2023年水资源公报摘要.csv》第" in used["水源涵养"]
    summary = list(wb["GEP汇总"].iter_rows(values_only=True))
    assert summary[0][:3] == ("县区代码", "县区", "GEP（亿元）")

    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "store") as ledger:
        operations.record(ledger, intakes, catalogue, "2026-12-01T00:00:00+00:00")
        manifest = {"year": 2023, **pipeline.input_fingerprint(intakes, catalogue, "", allow_incomplete=False)}
        sources = provenance.figure(ledger, catalogue, manifest, "621202", "gep_per_capita")
    computed = next(s for s in sources if s.get("computed"))
    assert computed["variable"] == "gep" and computed["value"] == pytest.approx(made.gep.total["621202"], abs=1e-4)
    parts = {s["variable"]: s for s in sources if s.get("part_of") == "gep"}
    assert parts["price_carbon"]["file"] == "发改委_2023年生态产品价值实现.xlsx" and parts["price_carbon"]["row"] >= 3
    assert parts["area_forest"]["file"] == "林草局_2023年林草资源.xlsx"
    assert parts["et_forest"]["file"] == "水务局_2023年水资源公报摘要.csv"
    assert any(s["variable"] == "population" and not s.get("part_of") for s in sources)


# -- 3. at the boundary --------------------------------------------------------------------------------------------

def _copy_year(tmp_path: Path, year: int = 2023) -> Path:
    dest = tmp_path / "data"
    shutil.copytree(SAMPLE / str(year), dest / str(year))
    shutil.copy(SAMPLE / "SAMPLE.yaml", dest / "SAMPLE.yaml")
    return dest / str(year)


def _edit_xlsx(path: Path, header_row: int, edits: dict[tuple[str, str], object]) -> None:
    """Set cells by (county cell text, header) in an xlsx whose headers are on `header_row`."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb.worksheets[0] if "汇总" not in wb.sheetnames else wb["汇总"]
    headers = {c.value: c.column for c in ws[header_row]}
    for (county, header), value in edits.items():
        row = next(r for r in range(header_row + 1, ws.max_row + 1) if str(ws.cell(r, 1).value) == county)
        ws.cell(row, headers[header]).value = value  # (ws.cell(r, c, None) would leave the cell as it was)
    wb.save(path)


def test_a_hostile_physical_accounts_table_is_refused_in_chinese(tmp_path):
    catalogue = load_catalogue()
    folder = _copy_year(tmp_path)
    # forestry: a negative area (文县), and 康县's areas in 公顷 under the 平方公里 headers
    forestry = folder / "林草局_2023年林草资源.xlsx"
    _edit_xlsx(forestry, 3, {("文县", "森林面积（平方公里）"): -120.5,
                             ("康县", "森林面积（平方公里）"): 169_000.0, ("康县", "草地面积（平方公里）"): 41_000.0})
    # water: evapotranspiration above precipitation (徽县)
    water = folder / "水务局_2023年水资源公报摘要.csv"
    rows = list(csv.reader(io.StringIO(water.read_bytes().decode("gbk"))))
    head = rows[0]
    for r in rows[1:]:
        if r[0] == "徽县":
            r[head.index("森林蒸散发量（毫米）")] = str(float(r[head.index("年降水量（毫米）")]) + 150)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    water.write_bytes(buf.getvalue().encode("gbk"))
    # ndrc: a price without its base year (两当县)
    ndrc = folder / "发改委_2023年生态产品价值实现.xlsx"
    _edit_xlsx(ndrc, 2, {("621228", "价格基准年"): None})

    checked = {i.department: i for i in operations.check_folder(catalogue, folder.parent, 2023)
               if i.department in ("forestry", "water", "ndrc")}
    assert all(i.status == "rejected" for i in checked.values()), {k: i.status for k, i in checked.items()}

    def errors(dept):
        return [(f.rule, f.column, f.counties, f.found) for f in checked[dept].report.findings if f.severity == "error"]

    forestry_errors = errors("forestry")
    assert any("数值超出合理范围" in rule and "森林面积" in column and "文县" in counties and "-120.5" in found
               for rule, column, counties, found in forestry_errors), forestry_errors
    unit = next(e for e in forestry_errors if "国土面积" in e[0])
    assert "公顷" in unit[0] and unit[2] == ["康县"] and unit[3][0].startswith("2958 与 2100")  # land area, then the areas summed (with the wetland)
    water_errors = errors("water")
    assert any("森林蒸散发量不能超过年降水量" in rule and counties == ["徽县"] for rule, _c, counties, _f in water_errors)
    ndrc_errors = errors("ndrc")
    assert any("价格必须注明基准年" in rule and column == "价格基准年" and counties == ["两当县"]
               for rule, column, counties, _f in ndrc_errors), ndrc_errors
    # the bureau's rejection report says it row by row, in Chinese
    text = checked["forestry"].report.to_text() if hasattr(checked["forestry"].report, "to_text") else \
        "\n".join(f.rule for f in checked["forestry"].report.findings)
    assert "公顷" in text


def test_a_price_correction_reissues_what_changed_with_a_revision_naming_the_price(tmp_path):
    import subprocess

    from evaluation.resources import open_ledger

    catalogue = load_catalogue()
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    out = tmp_path / "reports"
    with open_ledger(out) as ledger:
        first = operations.annual(catalogue, data, out, 2023, ledger=ledger, run_date="2026-12-01",
                                  received_at="2026-12-01T00:00:00+00:00", workers=2)
        # the 发改委 corrects one price: 武都区's carbon price, 68 → 80 元/吨二氧化碳
        fixed = tmp_path / "发改委_2023年生态产品价值实现_更正.xlsx"
        shutil.copy(data / "2023" / "发改委_2023年生态产品价值实现.xlsx", fixed)
        _edit_xlsx(fixed, 2, {("621202", "碳汇价格（元/吨二氧化碳）"): 80})
        checked, recorded = operations.correct(ledger, catalogue, "ndrc", 2023, fixed, "武都区碳汇价格按当年成交均价更正",
                                               "2026-12-02T00:00:00+00:00")
        assert checked.accepted and recorded.new
        second = operations.annual(catalogue, data, out, 2023, ledger=ledger, run_date="2026-12-02",
                                   received_at="2026-12-02T00:00:00+00:00", workers=2)
    assert (first.version, second.status, second.version) == (1, "issued", 2)
    m1, m2 = first.manifest, second.manifest
    changed = {f for f in m2["outputs"] if m1["content_keys"].get(f) != m2["content_keys"].get(f)}
    wudu = "621202_武都区_2023年度两山转化绩效评价.pdf"
    # exactly the documents whose content changed are re-issued; the rest keep their bytes
    assert set(second.rendered) == changed and wudu in changed
    assert all(m2["outputs"][f] == m1["outputs"][f] for f in second.carried)
    assert "621221_成县_2023年度两山转化绩效评价.pdf" in second.carried  # another zone type, nothing of it moved
    note = "\n".join(m2["revisions"]["621202"])
    assert "碳汇价格：68 → 80 元/吨二氧化碳（发展和改革委员会" in note and "武都区碳汇价格按当年成交均价更正" in note
    gep_line = next(line for line in m2["revisions"]["621202"] if line.startswith("生态产品总值（GEP）按更正后的数据重新核算"))
    old, new = (float(x.replace(",", "")) for x in gep_line.split("：")[1].removesuffix(" 亿元。").split(" → "))
    assert new > old  # a dearer carbon price: 固碳 worth more
    text = subprocess.run(["pdftotext", "-layout", str(second.folder / wudu), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "碳汇价格" in text and "生态产品总值（GEP）核算账户" in text and "本版更正" in text
