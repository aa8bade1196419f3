"""The statistical audit of a composite indicator (OECD/JRC Handbook, step 4; COINr's `get_corr`,
`get_cronbach`, `get_PCA` and `get_corr_flags`): do the indicators of each group hang together?

Per group (a parent in the index tree, e.g. a dimension or an ASEM pillar), over the units with every
child present (COINr drops incomplete rows, `na.omit`):

    cronbach_alpha   k/(k-1) * (1 - sum of the items' variances / variance of their sum), from the
                     covariance matrix (COINr: `(k/(k-1)) * (1 - sum(diag(cov)) / sum(cov))`)
    pc1_share        the first principal component's share of the variance of the standardised children
                     (COINr's `prcomp(scale. = TRUE)`: the largest eigenvalue of the correlation matrix / k)
    flags            a child correlated negatively with its parent's score, a pair of children with
                     |r| above `collinear` (0.9), a child with (near) zero variance across units

Pure functions over DataFrames (units x indicators): the engine's `audit` step and the evaluation call them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

COLLINEAR = 0.9
NEGATIVE = 0.0
FLAG_ZH = {"negative": "与所属维度负相关", "collinear": "高度共线", "no_variance": "各单元数值（几乎）相同，无区分度",
           "bunched": "过半县区落在同一目标值端点，区分度不足"}


def complete(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with every column present (as COINr's `na.omit`)."""
    return frame.dropna(how="any").astype("float64")


def correlations(frame: pd.DataFrame, method: str = "pearson") -> pd.DataFrame:
    """Pairwise correlations of the columns (pairwise complete observations, as COINr's `get_corr`)."""
    return frame.astype("float64").corr(method=method)


def cronbach_alpha(frame: pd.DataFrame) -> float:
    """Cronbach's alpha of the columns over the complete rows (NaN with fewer than 2 columns or rows)."""
    data = complete(frame)
    k = data.shape[1]
    if k < 2 or len(data) < 2:
        return float("nan")
    cov = np.cov(data.to_numpy(), rowvar=False, ddof=1)
    total = cov.sum()
    if total <= 0:
        return float("nan")
    return float(k / (k - 1) * (1.0 - np.trace(cov) / total))


def pc1_share(frame: pd.DataFrame) -> float:
    """The first principal component's share of variance of the standardised columns (complete rows);
    columns without variance are left out (they cannot be standardised)."""
    data = complete(frame)
    data = data.loc[:, data.std(ddof=1) > 0]
    k = data.shape[1]
    if k < 2 or len(data) < 2:
        return float("nan")
    eigen = np.linalg.eigvalsh(np.corrcoef(data.to_numpy(), rowvar=False))
    return float(eigen.max() / eigen.sum())


def no_variance(series: pd.Series, tolerance: float = 1e-9) -> bool:
    """Whether a column is (near) constant across the units that have it."""
    values = series.dropna().astype("float64")
    if len(values) < 2:
        return True
    return bool(values.std(ddof=1) <= tolerance * max(1.0, float(values.abs().mean())))


@dataclass
class GroupAudit:
    group: str
    children: list[str]
    units: int  # complete rows used for alpha and the PCA
    cronbach_alpha: float
    pc1_share: float
    correlations: pd.DataFrame  # children x children
    with_parent: pd.Series  # child -> correlation with the group's score (NaN without one)
    flags: list[dict] = field(default_factory=list)


def audit_group(group: str, children: pd.DataFrame, parent: pd.Series | None = None, *,
                collinear: float = COLLINEAR, negative: float = NEGATIVE) -> GroupAudit:
    """The audit of one group: `children` are its units x children columns, `parent` its score per unit."""
    corr = correlations(children)
    if parent is not None:
        joined = children.astype("float64").join(parent.rename("__parent__").astype("float64"), how="left")
        with_parent = joined.corr()["__parent__"].drop("__parent__")
    else:
        with_parent = pd.Series(np.nan, index=children.columns)
    flags = []
    for child in children.columns:
        if no_variance(children[child]):
            flags.append({"kind": "no_variance", "group": group, "indicator": child, "value": float("nan")})
        elif pd.notna(with_parent.get(child)) and with_parent[child] < negative:
            flags.append({"kind": "negative", "group": group, "indicator": child, "value": float(with_parent[child])})
    names = list(children.columns)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            r = corr.at[a, b]
            if pd.notna(r) and abs(r) > collinear:
                flags.append({"kind": "collinear", "group": group, "indicator": f"{a} ~ {b}", "value": float(r)})
    return GroupAudit(group, names, len(complete(children)), cronbach_alpha(children), pc1_share(children), corr,
                      with_parent, flags)


def audit(data: pd.DataFrame, groups: dict[str, list[str]], scores: pd.DataFrame | None = None, *,
          collinear: float = COLLINEAR, negative: float = NEGATIVE) -> list[GroupAudit]:
    """Audit every group ({group: its children's columns in `data`}); `scores`: units x group scores, for the
    correlation of each child with its group (COINr correlates an indicator with its parent)."""
    out = []
    for group, children in groups.items():
        present = [c for c in children if c in data.columns]
        parent = scores[group] if scores is not None and group in scores.columns else None
        out.append(audit_group(group, data[present], parent, collinear=collinear, negative=negative))
    return out


def table(audits: list[GroupAudit]) -> pd.DataFrame:
    """One row per group: children, complete units, alpha, first component's share, flags (COINr-style)."""
    return pd.DataFrame([{"Group": a.group, "Children": len(a.children), "Units": a.units,
                          "CronbachAlpha": a.cronbach_alpha, "PC1Share": a.pc1_share, "Flags": len(a.flags)}
                         for a in audits])


def flag_label(indicator: str, names: dict) -> str:
    """A flag's indicator field ("a" or "a ~ b") in the indicators' names."""
    return " ~ ".join(getattr(names.get(p.strip()), "name", p.strip()) for p in str(indicator).split("~"))


def flags_table(audits: list[GroupAudit]) -> pd.DataFrame:
    rows = [f for a in audits for f in a.flags]
    return pd.DataFrame(rows, columns=["kind", "group", "indicator", "value"])


# -- the audit of an evaluation (every run) ----------------------------------------------------------


@dataclass
class IndexAudit:
    """The audit of a year's index: per dimension, over the indicators that apply to every zone type (alpha and
    the first component need the same indicators for every county); flags also for the zone-specific ones; and
    each indicator's spread, to re-examine goalposts that cannot discriminate."""

    groups: list[GroupAudit]
    flags: pd.DataFrame  # kind, group, indicator, value
    spread: pd.DataFrame  # indicator -> counties, min, max, sd (normalised), at_top, at_bottom (shares), bunched
    zone_specific: dict[str, list[str]]  # dimension -> its indicators that apply to some zone types only

    def table(self) -> pd.DataFrame:
        return table(self.groups)


MIN_UNITS = 5  # the fewest counties a zone-specific indicator's correlation with its dimension is judged on
BUNCHED = 0.5  # an indicator with more than half the counties at one goalpost is flagged as bunched


def index_audit(result, catalogue, *, collinear: float = COLLINEAR, negative: float = NEGATIVE) -> IndexAudit:
    """Audit a ScoreResult (normalised scores and dimension scores) against the catalogue's framework."""
    normalised = result.normalised.where(result.applicable)
    everywhere = result.applicable.all(axis=0)
    groups, zone_specific, extra = {}, {}, []
    for dim in catalogue.dimensions:
        ids = [i.id for i in catalogue.indicators if i.dimension == dim.id]
        groups[dim.id] = [i for i in ids if bool(everywhere.get(i, False))]
        zone_specific[dim.id] = [i for i in ids if not bool(everywhere.get(i, False))]
    audits = audit(normalised, groups, result.dimension_scores, collinear=collinear, negative=negative)
    for dim, ids in zone_specific.items():
        for ind in ids:
            column = normalised[ind]
            if no_variance(column):
                extra.append({"kind": "no_variance", "group": dim, "indicator": ind, "value": float("nan")})
                continue
            paired = column.notna() & result.dimension_scores[dim].notna()
            if paired.sum() < MIN_UNITS:  # a correlation over two or three counties says nothing
                continue
            r = column.astype("float64").corr(result.dimension_scores[dim].astype("float64"))
            if pd.notna(r) and r < negative:
                extra.append({"kind": "negative", "group": dim, "indicator": ind, "value": float(r)})
    flags = pd.DataFrame([f for a in audits for f in a.flags] + extra, columns=["kind", "group", "indicator", "value"])
    rows = []
    for ind in catalogue.indicators:
        column = normalised[ind.id].dropna().astype("float64")
        n = len(column)
        top = float((column >= 100 - 1e-9).mean()) if n else float("nan")
        bottom = float((column <= 1e-9).mean()) if n else float("nan")
        rows.append({"indicator": ind.id, "dimension": ind.dimension, "counties": n,
                     "min": float(column.min()) if n else float("nan"),
                     "max": float(column.max()) if n else float("nan"),
                     "sd": float(column.std(ddof=1)) if n > 1 else float("nan"),
                     "at_top": top, "at_bottom": bottom, "bunched": bool(n and max(top, bottom) > BUNCHED)})
    spread = pd.DataFrame(rows).set_index("indicator")
    for ind, row in spread[spread["bunched"]].iterrows():
        if not ((flags["indicator"] == ind) & (flags["kind"] == "no_variance")).any():
            flags.loc[len(flags)] = {"kind": "bunched", "group": row["dimension"], "indicator": ind,
                                     "value": max(row["at_top"], row["at_bottom"])}
    return IndexAudit(audits, flags, spread, zone_specific)
