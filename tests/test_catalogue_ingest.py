"""Catalogue checks, the sample data, ingest and the GX gate."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from evaluation.catalogue import CatalogueError, load_catalogue
from evaluation.ingest import discover, parse_number, read_submission, submission_id
from evaluation.validation import suite_drift, validate_submission

REPO = Path(__file__).resolve().parent.parent
LONGNAN = {"621202": "武都区", "621221": "成县", "621222": "文县", "621223": "宕昌县", "621224": "康县",
           "621225": "西和县", "621226": "礼县", "621227": "徽县", "621228": "两当县"}


def _config_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "config"
    shutil.copytree(REPO / "config", dest)
    return dest


def test_catalogue_matches_the_brief(catalogue):
    assert {c.code: c.name for c in catalogue.counties} == LONGNAN
    assert all(not c.verified for c in catalogue.counties)
    assert len(catalogue.dimensions) == 5
    assert len(catalogue.indicators) >= 20
    assert len(catalogue.sources) >= 5
    for zone in catalogue.zone_types:
        assert sum(catalogue.zone_weights(zone).values()) == pytest.approx(1)
    # a key ecological-function county is not judged on GDP-based indicators
    gdp_based = {"gdp_per_capita", "energy_per_gdp", "water_per_gdp"}
    assert not gdp_based & {i.id for i in catalogue.indicators_for("key_ecological")}


def test_weights_not_summing_to_one_are_refused(tmp_path):
    cfg = _config_copy(tmp_path)
    zones = yaml.safe_load((cfg / "zones.yaml").read_text(encoding="utf-8"))
    zones["weight_sets"]["eco_priority"]["A"] = 0.5
    (cfg / "zones.yaml").write_text(yaml.safe_dump(zones, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"weight set eco_priority: weights sum to 1\.15, not 1"):
        load_catalogue(cfg)


def test_unknown_references_are_listed_together(tmp_path):
    cfg = _config_copy(tmp_path)
    text = (cfg / "indicators.yaml").read_text(encoding="utf-8")
    text = text.replace("dimension: E, var: public_satisfaction", "dimension: F, var: public_happiness")
    (cfg / "indicators.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(cfg)
    assert "unknown dimension 'F'" in str(info.value)
    assert "unknown variable 'public_happiness'" in str(info.value)


def test_broken_yaml_is_a_clear_error(tmp_path):
    cfg = _config_copy(tmp_path)
    (cfg / "zones.yaml").write_text("zone_types: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogueError, match="不是有效的 YAML"):
        load_catalogue(cfg)


def test_sample_data_is_reproducible_from_its_seed(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_data", REPO / "scripts" / "make_sample_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.generate(tmp_path)
    committed = REPO / "data" / "sample"
    assert len(written) == 3 * 8 + 1
    for path in written:
        rel = path.relative_to(tmp_path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == \
            hashlib.sha256((committed / rel).read_bytes()).hexdigest(), rel


def test_sample_formats_are_realistic():
    year = REPO / "data" / "sample" / "2023"
    raw = (year / "水务局_2023年水资源公报摘要.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.decode("gbk").startswith("县区名称")
    assert (year / "农业农村局_2023年特色农业.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_every_sample_file_reads_with_provenance(catalogue):
    for year in (2021, 2022, 2023):
        for expected in discover(REPO / "data" / "sample", year, catalogue):
            assert expected.present, expected.path
            sub = read_submission(expected.path, catalogue.sources[expected.department], catalogue, year)
            facts = sub.facts(catalogue)
            assert set(facts["county_code"]) == set(LONGNAN)
            sha = hashlib.sha256(expected.path.read_bytes()).hexdigest()
            assert sub.submission_id == submission_id(expected.department, year, sha)
            optional = {v.id for v in catalogue.variables.values() if v.optional}  # blank where the formula serves
            assert facts[~facts["variable_id"].isin(optional)]["value"].notna().all()
            assert (facts["submission_id"] == sub.submission_id).all()
            assert facts["row"].min() == catalogue.sources[expected.department].header_row + 1


def test_stats_xlsx_title_row_codes_and_units(catalogue):
    path = REPO / "data" / "sample" / "2023" / "统计局_2023年主要经济指标.xlsx"
    sub = read_submission(path, catalogue.sources["stats"], catalogue, 2023)
    facts = sub.facts(catalogue).set_index(["county_code", "variable_id"])
    assert sub.sheet == "主要指标"
    row = facts.loc[("621202", "population")]
    assert row["unit"] == "万人" and row["row"] == 3 and 50 < row["value"] < 56


def test_unit_scale_is_applied(catalogue):
    # the agriculture bureau reports 特色农产品产值 in 万元; the catalogue unit is 亿元
    path = REPO / "data" / "sample" / "2023" / "农业农村局_2023年特色农业.csv"
    text = path.read_text(encoding="utf-8-sig").splitlines()
    wudu_wan = float(text[1].split(",")[1])
    sub = read_submission(path, catalogue.sources["agri"], catalogue, 2023)
    value = sub.table.set_index("county_code").at["621202", "specialty_agri_output"]
    assert value == pytest.approx(wudu_wan / 10000)


@pytest.mark.parametrize("raw,expected", [("1,234", 1234.0), ("12.5%", 12.5), ("１２．５", 12.5), (" 7 ", 7.0),
                                          ("—", None), ("", None), (3, 3.0)])
def test_parse_number(raw, expected):
    assert parse_number(raw) == expected


def test_generated_suites_are_committed_and_in_sync(catalogue):
    for dept in catalogue.sources:
        assert suite_drift(catalogue, dept) == [], f"{dept}: run `make suites`"


def test_gx_gate_accepts_the_sample(catalogue):
    for expected in discover(REPO / "data" / "sample", 2023, catalogue):
        sub = read_submission(expected.path, catalogue.sources[expected.department], catalogue, 2023)
        report = validate_submission(sub, catalogue)
        assert report.accepted, report.summary_zh()


def test_gx_gate_rejects_with_row_column_rule_and_value(catalogue, sample_copy):
    path = sample_copy / "2023" / "水务局_2023年水资源公报摘要.csv"
    lines = path.read_bytes().decode("gbk").splitlines()
    lines[2] = lines[2].split(",")[0] + ",65.5,-5"  # 成县: negative water use
    lines[3] = "某县," + ",".join(lines[3].split(",")[1:])  # not a Longnan county
    lines[4] = lines[4].split(",")[0] + ",很好," + lines[4].split(",")[2]  # text in a number column
    lines.append(lines[1])  # 武都区 twice
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    sub = read_submission(path, catalogue.sources["water"], catalogue, 2023)
    report = validate_submission(sub, catalogue)
    assert not report.accepted
    text = report.summary_zh()
    assert ("[错误] 第 3 行，列“用水总量（万立方米）”：数值超出合理范围（100 至 200000 万立方米）；"
            "实际值：-5；应为：100 ～ 200000 万立方米") in text
    assert "第 4 行，列“县区名称”：县区必须是陇南市所辖县区（代码、全称或简称）；实际值：某县" in text
    assert "第 5 行，列“水土保持率（%）”：必须是数值；实际值：很好；应为：数值" in text
    assert "每个县区只能填报一行" in text
    assert "缺少：文县" in text


def test_another_county_list_is_validated_against_its_own_catalogue(tmp_path):
    """A --config with other counties (here 12 synthetic ones from the national benchmark) gets suites
    built from that catalogue, not Longnan's committed ones, with its own name and count in the messages."""
    import sys

    from evaluation import operations
    from evaluation.catalogue import load_catalogue
    from evaluation.validation import build_suite_dict, suite_for

    sys.path.insert(0, str(REPO / "benchmarks"))
    import national

    config, data = national.make(tmp_path, 12)
    other = load_catalogue(config)
    assert len(other.counties) == 12 and other.city.code == "900000"
    intakes = operations.check_folder(other, data, 2023)
    assert [i.status for i in intakes] == ["accepted"] * 8, [i.message for i in intakes if not i.accepted]
    suite = suite_for(other, "stats")
    assert suite == build_suite_dict(other, "stats")
    assert any(e["meta"].get("expected_zh") == "全国合成样本所辖 12 个县区之一" for e in suite["expectations"])
    eco = data / "2023" / "生态环境局_2023年生态环境质量.csv"
    eco.write_text(eco.read_text(encoding="utf-8").replace("合成县0003,", "武都区,", 1), encoding="utf-8")
    (intake,) = operations.check_folder(other, data, 2023, departments={"eco"})
    assert intake.status in ("rejected", "unreadable") and "武都区" in intake.message
