"""The composite-indicator engine on COINr-style tables, driven by a spec of named steps.

    iData: uCode, uName, *_group columns, Time, denominators, one column per indicator
    iMeta: iCode, iName, Level, Parent, Direction, Weight, Type, Denominator, Unit, Target

A spec lists steps in order; each runs on the previous stage and every stage is kept:

    steps:
      - denominate: {}
      - screen: {min_availability: 0.9}
      - impute: {method: group_mean, group: EurAsia_group}     # or floor (value:), column_min, none
      - treat: {method: skew_kurt_winsorise, winmax: 5, skew: 2.0, kurt: 3.5, fallback: log_ct}
      - normalise: {method: minmax, range: [0, 100]}
      - weight: {method: equal}                                # or meta (default), entropy, critic, pca, ahp, by_group
      - aggregate: {method: arithmetic_mean}                   # or geometric_mean, harmonic_mean, generalised_mean (p:)

Two steps make an index whose rules differ by group of units (the county index: one
indicator subset and one set of dimension weights per main functional zone type):

      - mask: {group: zone, applies: {重点生态功能区: [forest_cover, ...], ...}}
      - weight: {method: by_group, group: zone, weights: {重点生态功能区: {eco: 0.4, ...}, ...}}

`mask` blanks the indicators that do not apply to a unit's group; they are then skipped by
aggregation (their siblings' weights renormalised), and a later `impute` fills only the cells
that do apply. `by_group` gives the listed codes a weight per group instead of iMeta's.

The county index runs through these steps too (`scoring.IndexSpec.steps`), and each version's
manifest keeps its iData, iMeta, steps and build log: `twomountains index --manifest` redoes it.

The result table has uCode, Rank, then one column per aggregate, highest level first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from evaluation.index import methods
from evaluation.yamlsafe import load_yaml

REQUIRED_META = ["iCode", "Level", "Parent", "Direction", "Weight", "Type"]
STEP_NAMES = ("denominate", "screen", "mask", "impute", "treat", "normalise", "weight", "aggregate", "audit")


class SpecError(ValueError):
    """The tables or the spec are not usable; the message says why (Chinese + English)."""


@dataclass
class Coin:
    data: pd.DataFrame  # uCode x indicator (Raw)
    units: pd.DataFrame  # uCode x unit metadata (names, groups, denominators)
    meta: pd.DataFrame  # iMeta rows of the tree (Indicator + Aggregate), indexed by iCode
    denominators: dict[str, str]  # indicator -> iData column

    @property
    def indicators(self) -> list[str]:
        return list(self.meta.index[self.meta["Type"] == "Indicator"])

    def levels(self) -> list[int]:
        return sorted(int(v) for v in self.meta["Level"].dropna().unique())


@dataclass
class IndexResult:
    stages: dict[str, pd.DataFrame]
    weights: pd.Series  # iCode -> weight within its parent
    results: pd.DataFrame  # uCode, Rank, aggregates (highest level first)
    treatment: dict[str, methods.Treatment] = field(default_factory=dict)
    screened_out: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    applicable: pd.DataFrame | None = None  # uCode x indicator, after a `mask` step
    unit_weights: pd.DataFrame | None = None  # uCode x iCode, after a `by_group` weight step
    audit: list | None = None  # evaluation.index.audit.GroupAudit per group, after an `audit` step


def _read_csv(path: Path | str, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"找不到{what}文件 / {what} file not found: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SpecError(f"{what}文件无法解析 / cannot parse {what}: {exc}") from None


def load_coin(idata: Path | str | pd.DataFrame, imeta: Path | str | pd.DataFrame) -> Coin:
    data = idata if isinstance(idata, pd.DataFrame) else _read_csv(idata, "iData")
    meta = imeta if isinstance(imeta, pd.DataFrame) else _read_csv(imeta, "iMeta")
    missing = [c for c in REQUIRED_META if c not in meta.columns]
    if missing:
        raise SpecError(f"iMeta 缺少列 / iMeta lacks columns: {', '.join(missing)}")
    if "uCode" not in data.columns:
        raise SpecError("iData 缺少 uCode 列 / iData lacks a uCode column")
    if data["uCode"].duplicated().any():
        dupes = ", ".join(map(str, data.loc[data["uCode"].duplicated(), "uCode"].unique()[:5]))
        raise SpecError(f"iData 中 uCode 重复 / duplicate uCode in iData: {dupes}")
    tree = meta[meta["Type"].isin(["Indicator", "Aggregate"])].copy()
    if tree["iCode"].duplicated().any():
        raise SpecError("iMeta 中 iCode 重复 / duplicate iCode in iMeta")
    tree = tree.set_index("iCode")
    indicators = list(tree.index[tree["Type"] == "Indicator"])
    absent = [i for i in indicators if i not in data.columns]
    if absent:
        raise SpecError(f"iData 缺少指标列 / iData lacks indicator columns: {', '.join(absent[:10])}")
    codes = set(tree.index)
    for code, parent in tree["Parent"].items():
        if pd.notna(parent) and parent not in codes:
            raise SpecError(f"{code} 的上级 {parent} 不在 iMeta 中 / parent {parent} of {code} is not in iMeta")
    data = data.copy()
    data["uCode"] = data["uCode"].astype(str)
    data = data.set_index("uCode").sort_index()
    denoms = {}
    if "Denominator" in tree.columns:
        for code, den in tree["Denominator"].items():
            if pd.notna(den) and str(den).strip():
                if den not in data.columns:
                    raise SpecError(f"{code} 的分母 {den} 不在 iData 中 / denominator {den} of {code} is not in iData")
                denoms[code] = str(den)
    numeric = data[indicators].apply(pd.to_numeric, errors="coerce").astype("float64")
    units = data.drop(columns=indicators)
    for goal in ("GoalLow", "GoalHigh"):
        if goal in tree.columns:
            tree[goal] = pd.to_numeric(tree[goal], errors="coerce")
    tree["Direction"] = pd.to_numeric(tree["Direction"], errors="coerce").fillna(1.0)
    tree["Weight"] = pd.to_numeric(tree["Weight"], errors="coerce").fillna(1.0)
    return Coin(numeric, units, tree, denoms)


def load_spec(path: Path | str) -> list[dict]:
    try:
        doc = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SpecError(f"找不到方法配置文件 / spec not found: {path}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"方法配置不是有效的 YAML / spec is not valid YAML: {exc}") from None
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list) or not steps:
        raise SpecError("方法配置需要 steps 列表 / the spec needs a list of steps")
    return steps


def manifest_inputs(path: Path | str) -> tuple[Coin, list]:
    """The engine's tables and steps as a version's manifest.json kept them (its `index` section)."""
    import json

    try:
        record = json.loads(Path(path).read_text(encoding="utf-8")).get("index")
    except FileNotFoundError:
        raise SpecError(f"找不到版本清单 / manifest not found: {path}") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise SpecError(f"版本清单无法读取 / cannot read the manifest: {path}: {exc}") from None
    if not isinstance(record, dict) or not all(k in record for k in ("iData", "iMeta", "steps")):
        raise SpecError(f"该版本清单没有保存综合指数的数据与步骤（较早的版本）/ this manifest keeps no index inputs: {path}")
    return load_coin(pd.DataFrame(record["iData"]), pd.DataFrame(record["iMeta"])), list(record["steps"])


def _step(entry) -> tuple[str, dict]:
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, params),) = entry.items()
        params = dict(params or {})
    else:
        raise SpecError(f"每个步骤应写成 {{名称: {{参数}}}} / each step is {{name: {{params}}}}: {entry!r}")
    if name not in STEP_NAMES:
        raise SpecError(f"未知步骤 / unknown step: {name} (choose {', '.join(STEP_NAMES)})")
    return name, params


def run(coin: Coin, steps: list) -> IndexResult:
    """Run the spec's steps in order, keeping every stage."""
    result = run_stages(coin, steps)
    if "aggregate" not in result.stages:
        raise SpecError("方法配置缺少 aggregate 步骤 / the spec has no aggregate step")
    result.results = results_table(coin, result.stages["aggregate"])
    return result


def run_stages(coin: Coin, steps: list) -> IndexResult:
    """Run steps in order, keeping every stage (a spec may stop before aggregating)."""
    current = coin.data.copy()
    stages: dict[str, pd.DataFrame] = {"raw": current}
    weights = coin.meta["Weight"].copy()
    result = IndexResult(stages=stages, weights=weights, results=pd.DataFrame())
    for entry in steps:
        name, params = _step(entry)
        if name == "denominate":
            current = current.copy()
            for code, den in coin.denominators.items():
                denom = coin.units.loc[current.index, den].astype(float)
                current[code] = current[code] / denom.where(denom != 0)
            result.log.append(f"denominate: {len(coin.denominators)} indicators")
        elif name == "mask":
            result.applicable = _mask(coin, current, params)
            current = current.where(result.applicable)
            result.log.append(f"mask: {int((~result.applicable).to_numpy().sum())} cells do not apply "
                              f"(by {params['group']})")
        elif name == "screen":
            threshold = float(params.get("min_availability", 0.9))
            availability = current.notna().mean(axis=1)
            keep = availability >= threshold
            result.screened_out = sorted(current.index[~keep])
            current = current[keep]
            result.log.append(f"screen: {int((~keep).sum())} units below {threshold:g}")
        elif name == "impute":
            current = _impute(current, coin, params, result.applicable, coin.data.isna())
            result.log.append(f"impute: {params.get('method', 'none')}"
                              + (f" {float(params['value']):g}" if "value" in params else ""))
        elif name == "treat":
            method = params.get("method", "skew_kurt_winsorise")
            if method != "skew_kurt_winsorise":
                raise SpecError(f"未知的处理方法 / unknown treat method: {method}")
            current, result.treatment = methods.treat(
                current, winmax=int(params.get("winmax", 5)), skew=float(params.get("skew", 2.0)),
                kurt=float(params.get("kurt", 3.5)), fallback=params.get("fallback", "log_ct"))
            treated = sorted(k for k, t in result.treatment.items() if t.method in ("winsorised", "log_ct"))
            result.log.append(f"treat: {len(treated)} indicators treated")
        elif name == "normalise":
            method = params.pop("method", "minmax")
            if method == "goalposts":
                params.setdefault("low", coin.meta["GoalLow"] if "GoalLow" in coin.meta else None)
                params.setdefault("high", coin.meta["GoalHigh"] if "GoalHigh" in coin.meta else None)
            if method == "dist_to_target":
                params.setdefault("targets", coin.meta["Target"] if "Target" in coin.meta else None)
            current = methods.normalise(current, coin.meta["Direction"], method, **params)
            result.log.append(f"normalise: {method}")
        elif name == "weight":
            if params.get("method") == "by_group":
                result.unit_weights = _group_weights(coin, current, params)
            else:
                weights = _weights(coin, current, params)
            result.weights = weights
            result.log.append(f"weight: {params.get('method', 'meta')}")
        elif name == "aggregate":
            method = params.pop("method", "arithmetic_mean")
            aggregated = aggregate(coin, current, weights, method, result.unit_weights, **params)
            result.log.append(f"aggregate: {method}" + (f" p={float(params['p']):g}" if "p" in params else ""))
            current = aggregated
        elif name == "audit":
            from evaluation.index import audit as audit_mod

            dset = params.get("dset", "normalise" if "normalise" in stages else "raw")
            if dset not in stages:
                raise SpecError(f"audit: 没有名为 {dset} 的阶段 / no stage named {dset} (have {', '.join(stages)})")
            level = int(params.get("level", 2))
            groups = {parent: children for parent, children in _children(coin).items()
                      if parent in coin.meta.index and int(coin.meta.at[parent, "Level"]) == level}
            scores = stages.get("aggregate")
            result.audit = audit_mod.audit(stages[dset], groups, scores,
                                           collinear=float(params.get("collinear", audit_mod.COLLINEAR)),
                                           negative=float(params.get("negative", audit_mod.NEGATIVE)))
            result.log.append(f"audit: {len(groups)} groups at level {level} on {dset}")
            continue  # an audit changes no data
        stages[name] = current
    return result


def _group_column(coin: Coin, params: dict, step: str) -> pd.Series:
    group = params.get("group")
    if group not in coin.units.columns:
        raise SpecError(f"{step}：分组列不存在 / {step}: group column not found: {group}")
    return coin.units[group].astype(str)


def _mask(coin: Coin, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Which indicators apply to each unit, from its group: {group value: [iCode, ...]}."""
    groups = _group_column(coin, params, "mask").reindex(frame.index)
    applies = params.get("applies")
    if not isinstance(applies, dict):
        raise SpecError("mask 需要 applies：{分组: [指标...]} / mask needs applies: {group: [iCodes]}")
    unknown = sorted(set(groups) - set(map(str, applies)))
    if unknown:
        raise SpecError(f"mask：分组 {', '.join(unknown)} 未列出适用指标 / no applicable indicators listed for {unknown}")
    rows = {str(group): frame.columns.isin(list(codes or [])) for group, codes in applies.items()}
    return pd.DataFrame(np.stack([rows[g] for g in groups.to_numpy()]) if len(groups) else np.zeros((0, frame.shape[1]), bool),
                        index=frame.index, columns=frame.columns)


def _group_weights(coin: Coin, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Per-unit weights of the codes listed for each group: {group value: {iCode: weight}}."""
    groups = _group_column(coin, params, "weight").reindex(frame.index)
    table = pd.DataFrame({str(g): {str(k): float(v) for k, v in (w or {}).items()}
                          for g, w in (params.get("weights") or {}).items()}).T
    unknown = sorted(set(groups) - set(table.index))
    if unknown:
        raise SpecError(f"by_group：分组 {', '.join(unknown)} 没有权重 / no weights for groups {unknown}")
    return table.loc[groups.to_numpy()].set_axis(frame.index).astype(float)


def _impute(frame: pd.DataFrame, coin: Coin, params: dict, applicable: pd.DataFrame | None = None,
            missing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fill missing values. After a `mask` step, only the cells that apply and were missing in iData
    (not a value a later step left undefined, e.g. min-max of a column where every unit is equal)."""
    method = params.get("method", "none")
    if method == "none":
        return frame
    if applicable is not None and method in ("floor", "column_min"):
        fill = frame.min() if method == "column_min" else _floor(params)
        gaps = applicable.reindex_like(frame).fillna(False).astype(bool) & missing.reindex_like(frame).fillna(False).astype(bool)
        return frame.mask(gaps, frame.fillna(fill))
    if method == "column_min":
        return frame.fillna(frame.min())
    if method == "group_mean":
        group = params.get("group")
        if group not in coin.units.columns:
            raise SpecError(f"分组列不存在 / group column not found: {group}")
        keys = coin.units.loc[frame.index, group]
        means = frame.groupby(keys).transform("mean")
        return frame.fillna(means)
    if method == "floor":
        return frame.fillna(_floor(params))
    raise SpecError(f"未知的插补方法 / unknown impute method: {method} (choose none, group_mean, floor, column_min)")


def _floor(params: dict) -> float:
    if "value" not in params:
        raise SpecError("floor 插补需要 value / floor imputation needs a value")
    return float(params["value"])


def _children(coin: Coin) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {}
    for code, parent in coin.meta["Parent"].items():
        if pd.notna(parent):
            kids.setdefault(str(parent), []).append(code)
    return kids


def _weights(coin: Coin, current: pd.DataFrame, params: dict) -> pd.Series:
    method = params.get("method", "meta")
    weights = coin.meta["Weight"].copy()
    if method == "meta":
        return weights
    kids = _children(coin)
    if method == "equal":
        return pd.Series(1.0, index=weights.index)
    if method == "entropy":
        for parent, codes in kids.items():
            inds = [c for c in codes if c in current.columns]
            if inds:
                weights.loc[inds] = methods.w_entropy(current[inds]).to_numpy()
        return weights
    if method in ("critic", "pca"):
        fn = methods.w_critic if method == "critic" else methods.w_pca
        weights = weights.astype(float)
        for parent, codes in kids.items():
            inds = [c for c in codes if c in current.columns]
            if len(inds) == 1:
                weights.loc[inds] = 1.0  # an only child takes its parent's whole weight
            elif inds:
                weights.loc[inds] = fn(current[inds]).to_numpy()
        return weights
    if method == "ahp":
        for parent, matrix in (params.get("matrices") or {}).items():
            names = kids.get(parent)
            if names is None:
                raise SpecError(f"AHP：未知的上级指标 / unknown parent for AHP: {parent}")
            w, _ = methods.ahp(matrix, names, float(params.get("max_cr", 0.1)))
            weights.loc[names] = w.to_numpy()
        return weights
    raise SpecError(f"未知的赋权方法 / unknown weight method: {method} (choose meta, equal, entropy, critic, pca, ahp, by_group)")


def aggregate(coin: Coin, normalised: pd.DataFrame, weights: pd.Series, method: str,
              unit_weights: pd.DataFrame | None = None, **params) -> pd.DataFrame:
    """Aggregate level by level up the hierarchy; returns indicators plus every aggregate column.
    Children with per-unit weights (`unit_weights`, from `by_group`) use those. `params` go to the
    aggregation method (e.g. p for generalised_mean)."""
    fn = methods.aggregator(method, **params)
    out = normalised.copy()
    meta = coin.meta
    for level in coin.levels()[1:]:
        for code in meta.index[meta["Level"] == level]:
            kids = [k for k in meta.index[meta["Parent"] == code] if k in out.columns]
            if not kids:
                out[code] = np.nan
                continue
            if unit_weights is not None and all(k in unit_weights.columns for k in kids):
                out[code] = fn(out[kids], unit_weights[kids])
            else:
                out[code] = fn(out[kids], weights.reindex(kids))
    return out


def results_table(coin: Coin, aggregated: pd.DataFrame) -> pd.DataFrame:
    meta = coin.meta
    aggs = [c for level in sorted(coin.levels()[1:], reverse=True) for c in meta.index[meta["Level"] == level]]
    top = aggs[0]
    table = aggregated[aggs].copy()
    table.insert(0, "Rank", table[top].rank(ascending=False, method="min").astype("Int64"))
    table = table.reset_index().rename(columns={"index": "uCode"})
    return table.sort_values(["Rank", "uCode"], na_position="last").reset_index(drop=True)
