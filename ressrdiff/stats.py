"""Statistical comparison of methods on per-slice metrics (Table 1 and Table 2 analogs).

Two procedures side by side:

* :func:`paper_procedure` -- what the paper reports: Shapiro-Wilk per group; if every group looks
  normal, one-way ANOVA + Tukey HSD (statsmodels), otherwise Kruskal-Wallis + Dunn's test with
  Bonferroni correction (scikit-posthocs); significance at p < alpha (0.05). It treats the
  methods as *independent* groups.
* The paired procedures -- per-slice metrics are paired (the same slice under every method) and
  clustered (many slices per subject): :func:`friedman_procedure` (Friedman + Nemenyi or
  Conover), :func:`wilcoxon_holm` (pairwise Wilcoxon signed-rank, Holm), :func:`paired_comparison`
  for two methods (Table 2), and :func:`cluster_bootstrap_ci`, which resamples subjects.

Inputs are the tidy table of :func:`ressrdiff.metrics.score_table` (columns ``subject, slice,
method, metric, value, region``) or plain arrays. Nothing here plots or writes files.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

__all__ = [
    "HIGHER_IS_BETTER",
    "GroupTest",
    "PairedComparison",
    "BootstrapCI",
    "groups_from_table",
    "paired_matrix",
    "shapiro_wilk",
    "paper_procedure",
    "friedman_procedure",
    "holm",
    "wilcoxon_holm",
    "paired_comparison",
    "paired_comparison_table",
    "cluster_bootstrap_ci",
    "bootstrap_table",
    "table1",
    "format_table1",
    "star_reference",
    "star_legend",
]

HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "gmsd": False,
    "lpips": False,
    "lpips_random_backbone": False,
}
"""Metric direction: True where a higher value is better."""

PAIRWISE_COLUMNS = ["group1", "group2", "estimate", "pvalue", "reject"]
NORMALITY_COLUMNS = ["group", "n", "W", "pvalue", "normal"]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GroupTest:
    """Result of a multi-group comparison.

    ``test`` is the omnibus test (``None`` for :func:`wilcoxon_holm`, which has none), with its
    ``statistic`` and ``pvalue``. ``pairwise`` is tidy: one row per unordered pair with columns
    ``group1, group2, estimate, pvalue, reject``; ``pvalue`` is already adjusted as ``posthoc``
    says and ``estimate`` is the difference group2 - group1 of the quantity that post-hoc compares
    (mean for Tukey, mean rank for Dunn/Nemenyi/Conover, median of paired differences for
    Wilcoxon). ``normality`` holds the Shapiro-Wilk results that chose the test (may be empty).
    """

    procedure: str
    test: str | None
    statistic: float
    pvalue: float
    posthoc: str
    pairwise: pd.DataFrame
    normality: pd.DataFrame
    alpha: float
    groups: tuple[str, ...] = ()
    n_blocks: int | None = None

    @property
    def significant(self) -> bool:
        """Omnibus p < alpha (for Wilcoxon-Holm: any adjusted pairwise p < alpha)."""
        if self.test is None:
            return bool(self.pairwise["reject"].any())
        return bool(self.pvalue < self.alpha)

    def pvalue_between(self, a: str, b: str) -> float:
        """Adjusted post-hoc p-value for the pair ``(a, b)`` in either order."""
        pw = self.pairwise
        row = pw[((pw.group1 == a) & (pw.group2 == b)) | ((pw.group1 == b) & (pw.group2 == a))]
        if row.empty:
            raise ValueError(f"no pairwise comparison between {a!r} and {b!r}")
        return float(row["pvalue"].iloc[0])

    def summary(self) -> pd.DataFrame:
        """One-row tidy summary: procedure, test, statistic, p, post-hoc, alpha, significant."""
        return pd.DataFrame(
            [
                {
                    "procedure": self.procedure,
                    "test": self.test,
                    "statistic": self.statistic,
                    "pvalue": self.pvalue,
                    "posthoc": self.posthoc,
                    "alpha": self.alpha,
                    "significant": self.significant,
                    "n_groups": len(self.groups),
                    "n_blocks": self.n_blocks,
                }
            ]
        )


@dataclass(frozen=True)
class PairedComparison:
    """Two methods on the same items: mean of each, percent change b vs a, and the paired test
    chosen by Shapiro-Wilk on the differences b - a."""

    name_a: str
    name_b: str
    n: int
    mean_a: float
    mean_b: float
    percent_change: float
    test: str
    statistic: float
    pvalue: float
    shapiro_pvalue: float
    alpha: float

    @property
    def significant(self) -> bool:
        return bool(self.pvalue < self.alpha)


@dataclass(frozen=True)
class BootstrapCI:
    """Point estimate and percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    n_clusters: int
    distribution: np.ndarray = field(repr=False)


# --------------------------------------------------------------------------- table helpers


def _require_columns(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}")


def _select(
    df: pd.DataFrame, metric: str, region: str | None, methods: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    _require_columns(df, ["method", "metric", "value"])
    sel = df[df["metric"] == metric]
    if "region" in df.columns:
        if region is not None:
            sel = sel[sel["region"] == region]
        elif sel["region"].nunique() > 1:
            raise ValueError(f"metric {metric!r} has several regions; choose one with region=")
    if sel.empty:
        raise ValueError(f"no rows for metric {metric!r} and region {region!r}")
    present = list(dict.fromkeys(sel["method"]))
    if methods is None:
        methods = present
    absent = [m for m in methods if m not in present]
    if absent:
        raise ValueError(f"method(s) {absent} have no {metric!r} rows")
    return sel[sel["method"].isin(methods)], list(methods)


def groups_from_table(
    df: pd.DataFrame,
    metric: str,
    region: str | None = "whole",
    methods: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Finite values of one metric (and region) per method, in ``methods`` order (default:
    order of first appearance)."""
    sel, methods = _select(df, metric, region, methods)
    out = {}
    for m in methods:
        v = sel.loc[sel["method"] == m, "value"].to_numpy(dtype=float)
        out[m] = v[np.isfinite(v)]
    return out


def paired_matrix(
    df: pd.DataFrame,
    metric: str,
    region: str | None = "whole",
    methods: Sequence[str] | None = None,
    block: Sequence[str] = ("subject", "slice"),
) -> pd.DataFrame:
    """Wide block x method matrix of one metric: index ``block`` (default subject, slice),
    one column per method; blocks where any method is missing or NaN are dropped
    (``attrs['n_dropped']`` counts them)."""
    sel, methods = _select(df, metric, region, methods)
    _require_columns(sel, list(block))
    if sel.duplicated([*block, "method"]).any():
        raise ValueError(f"duplicate rows per {list(block)} and method for metric {metric!r}")
    wide = sel.pivot(index=list(block), columns="method", values="value")[methods]
    complete = wide.notna().all(axis=1)
    out = wide[complete].copy()
    out.columns.name = None
    out.attrs["n_dropped"] = int((~complete).sum())
    return out


def _clean_groups(groups: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    out = {}
    for name, values in groups.items():
        v = np.asarray(values, dtype=float).ravel()
        out[str(name)] = v[np.isfinite(v)]
    if len(out) < 2:
        raise ValueError(f"need at least two groups, got {len(out)}")
    return out


def _wide(wide: pd.DataFrame | Mapping[str, ArrayLike]) -> pd.DataFrame:
    w = pd.DataFrame(wide) if not isinstance(wide, pd.DataFrame) else wide
    w = w.astype(float)
    if w.isna().to_numpy().any():
        raise ValueError("paired data contain NaN; drop incomplete blocks first (paired_matrix)")
    if w.shape[1] < 2 or w.shape[0] < 2:
        raise ValueError(f"need >= 2 blocks and >= 2 methods, got shape {w.shape}")
    w.columns = [str(c) for c in w.columns]
    return w


def _mean_ranks(values: Sequence[np.ndarray]) -> np.ndarray:
    """Mean pooled rank of each group (average ranks for ties)."""
    ranks = sps.rankdata(np.concatenate(values))
    bounds = np.cumsum([0, *[len(v) for v in values]])
    return np.array([ranks[a:b].mean() for a, b in itertools.pairwise(bounds)])


def _matrix_to_pairs(
    mat: np.ndarray, names: Sequence[str], estimates: np.ndarray, alpha: float
) -> pd.DataFrame:
    rows = []
    for i, j in itertools.combinations(range(len(names)), 2):
        p = float(mat[i, j])
        rows.append(
            {
                "group1": names[i],
                "group2": names[j],
                "estimate": float(estimates[j] - estimates[i]),
                "pvalue": p,
                "reject": bool(p < alpha),
            }
        )
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS)


# --------------------------------------------------------------------------- paper procedure


def _shapiro(v: np.ndarray) -> tuple[float, float]:
    if len(v) < 3 or np.ptp(v) == 0:  # untestable (n < 3) or constant: treat as not normal
        return math.nan, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's N > 5000 accuracy note
        res = sps.shapiro(v)
    return float(res.statistic), float(res.pvalue)


def shapiro_wilk(groups: Mapping[str, ArrayLike], alpha: float = 0.05) -> pd.DataFrame:
    """Shapiro-Wilk test per group: columns ``group, n, W, pvalue, normal`` (normal: p >= alpha).
    A group with fewer than 3 values or constant values cannot be tested and counts as not
    normal (W NaN, p 0). NaN values are dropped."""
    rows = []
    for name, values in groups.items():
        v = np.asarray(values, dtype=float).ravel()
        v = v[np.isfinite(v)]
        w, p = _shapiro(v)
        rows.append({"group": str(name), "n": len(v), "W": w, "pvalue": p, "normal": p >= alpha})
    return pd.DataFrame(rows, columns=NORMALITY_COLUMNS)


def paper_procedure(
    groups: Mapping[str, ArrayLike],
    alpha: float = 0.05,
    *,
    normality: Literal["per-group", "residuals"] = "per-group",
    parametric: bool | None = None,
    posthoc: bool = True,
) -> GroupTest:
    """The paper's comparison of independent groups.

    Shapiro-Wilk on every group (``normality='per-group'``, equivalently on each group's
    residuals) or once on the pooled one-way-ANOVA residuals (``'residuals'``, the paper's
    wording). All normal -> one-way ANOVA (``scipy.stats.f_oneway``) + Tukey HSD
    (``statsmodels`` ``pairwise_tukeyhsd``); otherwise Kruskal-Wallis (``scipy.stats.kruskal``)
    + Dunn's test with Bonferroni correction (``scikit_posthocs.posthoc_dunn``,
    ``p_adjust='bonferroni'`` passed explicitly, its default is no correction).
    ``parametric`` forces the branch (the Shapiro-Wilk table is still returned);
    ``posthoc=False`` skips the pairwise step (Tukey's p-values are slow to integrate).
    """
    g = _clean_groups(groups)
    names = list(g)
    values = [g[n] for n in names]
    if normality == "per-group":
        norm = shapiro_wilk(g, alpha)
    elif normality == "residuals":
        resid = np.concatenate([v - v.mean() for v in values])
        w, p = _shapiro(resid)
        norm = pd.DataFrame(
            [{"group": "residuals", "n": len(resid), "W": w, "pvalue": p, "normal": p >= alpha}],
            columns=NORMALITY_COLUMNS,
        )
    else:
        raise ValueError(f"normality must be 'per-group' or 'residuals', got {normality!r}")
    use_anova = bool(norm["normal"].all()) if parametric is None else parametric
    pairwise = pd.DataFrame(columns=PAIRWISE_COLUMNS)
    if np.ptp(np.concatenate(values)) == 0:
        raise ValueError("all values are identical; nothing to compare")
    if use_anova:
        res = sps.f_oneway(*values)
        test, ph = "one-way ANOVA", "Tukey HSD"
        if posthoc:
            pairwise = _tukey(names, values, alpha)
    else:
        res = sps.kruskal(*values)
        test, ph = "Kruskal-Wallis", "Dunn (Bonferroni)"
        if posthoc:
            import scikit_posthocs as sp

            mat = sp.posthoc_dunn(values, p_adjust="bonferroni").to_numpy()
            pairwise = _matrix_to_pairs(mat, names, _mean_ranks(values), alpha)
    return GroupTest(
        procedure="paper",
        test=test,
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        posthoc=ph if posthoc else "none",
        pairwise=pairwise,
        normality=norm,
        alpha=alpha,
        groups=tuple(names),
    )


def _tukey(names: list[str], values: list[np.ndarray], alpha: float) -> pd.DataFrame:
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    labels = np.concatenate([np.full(len(v), i) for i, v in enumerate(values)])
    res = pairwise_tukeyhsd(np.concatenate(values), labels, alpha=alpha)
    # statsmodels orders the pairs as itertools.combinations of its sorted unique labels
    order = [int(u) for u in res.groupsunique]
    rows = []
    for (i, j), diff, p in zip(
        itertools.combinations(order, 2), res.meandiffs, res.pvalues, strict=True
    ):
        rows.append(
            {
                "group1": names[i],
                "group2": names[j],
                "estimate": float(diff),
                "pvalue": float(p),
                "reject": bool(p < alpha),
            }
        )
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS)


# --------------------------------------------------------------------------- paired procedures


def friedman_procedure(
    wide: pd.DataFrame | Mapping[str, ArrayLike],
    alpha: float = 0.05,
    *,
    posthoc: Literal["nemenyi", "conover"] | None = "nemenyi",
    p_adjust: str = "holm",
) -> GroupTest:
    """Friedman test over blocks (rows) x methods (columns, >= 3) with a post-hoc test:
    ``'nemenyi'`` (``posthoc_nemenyi_friedman``, studentized range, family-wise by
    construction) or ``'conover'`` (``posthoc_conover_friedman`` with ``p_adjust``, default
    Holm) or ``None`` (omnibus only). ``estimate`` in the pairwise table is the difference in
    mean within-block rank."""
    import scikit_posthocs as sp

    if posthoc not in ("nemenyi", "conover", None):
        raise ValueError(f"posthoc must be 'nemenyi', 'conover' or None, got {posthoc!r}")
    w = _wide(wide)
    if w.shape[1] < 3:
        raise ValueError("Friedman needs at least 3 methods; use paired_comparison for two")
    res = sps.friedmanchisquare(*[w[c].to_numpy() for c in w.columns])
    arr = w.to_numpy()
    names = list(w.columns)
    mean_ranks = sps.rankdata(arr, axis=1).mean(axis=0)
    pairwise, label = pd.DataFrame(columns=PAIRWISE_COLUMNS), "none"
    if posthoc is not None:
        if posthoc == "nemenyi":
            mat, label = sp.posthoc_nemenyi_friedman(arr).to_numpy(), "Nemenyi"
        else:
            mat = sp.posthoc_conover_friedman(arr, p_adjust=p_adjust).to_numpy()
            label = f"Conover ({p_adjust})"
        pairwise = _matrix_to_pairs(mat, names, mean_ranks, alpha)
    return GroupTest(
        procedure="paired",
        test="Friedman",
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        posthoc=label,
        pairwise=pairwise,
        normality=pd.DataFrame(columns=NORMALITY_COLUMNS),
        alpha=alpha,
        groups=tuple(names),
        n_blocks=len(w),
    )


def _wilcoxon(d: np.ndarray) -> tuple[float, float]:
    if np.all(d == 0):
        return 0.0, 1.0
    res = sps.wilcoxon(d)
    return float(res.statistic), float(res.pvalue)


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sort ascending, multiply the i-th
    smallest (0-based) by ``m - i``, take the running maximum, cap at 1, restore the order.
    Equals ``statsmodels.stats.multitest.multipletests(p, method='holm')[1]``, which this
    replaces because statsmodels 0.15 runs ``gc.collect()`` on every Holm call (slow inside
    simulations and in processes holding large heaps)."""
    p = np.asarray(pvalues, dtype=float).ravel()
    if np.any((p < 0) | (p > 1)) or np.isnan(p).any():
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def wilcoxon_holm(wide: pd.DataFrame | Mapping[str, ArrayLike], alpha: float = 0.05) -> GroupTest:
    """Pairwise Wilcoxon signed-rank tests between all method pairs (columns), p-values
    adjusted by Holm (:func:`holm`). No omnibus test (``test=None``); ``estimate`` is the
    median of the paired differences group2 - group1."""
    w = _wide(wide)
    names = list(w.columns)
    rows = []
    for a, b in itertools.combinations(names, 2):
        d = w[b].to_numpy() - w[a].to_numpy()
        stat, p = _wilcoxon(d)
        rows.append({"group1": a, "group2": b, "estimate": float(np.median(d)), "raw": p})
    pw = pd.DataFrame(rows)
    pw["pvalue"] = holm(pw["raw"].to_numpy())
    pw["reject"] = pw["pvalue"] < alpha
    return GroupTest(
        procedure="paired",
        test=None,
        statistic=math.nan,
        pvalue=math.nan,
        posthoc="Wilcoxon signed-rank (Holm)",
        pairwise=pw[PAIRWISE_COLUMNS],
        normality=pd.DataFrame(columns=NORMALITY_COLUMNS),
        alpha=alpha,
        groups=tuple(names),
        n_blocks=len(w),
    )


def paired_comparison(
    a: ArrayLike,
    b: ArrayLike,
    alpha: float = 0.05,
    *,
    names: tuple[str, str] = ("a", "b"),
) -> PairedComparison:
    """Compare paired samples ``a`` and ``b`` (Table 2: without vs with Swin).

    Shapiro-Wilk on the differences ``b - a``: normal (p >= alpha) -> paired t-test
    (``scipy.stats.ttest_rel``), otherwise Wilcoxon signed-rank (``scipy.stats.wilcoxon``).
    ``percent_change = 100 (mean_b - mean_a) / |mean_a|``. Pairs with a NaN are dropped.
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    d = y - x
    _, shapiro_p = _shapiro(d)
    if shapiro_p >= alpha:
        res = sps.ttest_rel(y, x)
        test, stat, p = "paired t-test", float(res.statistic), float(res.pvalue)
    else:
        test = "Wilcoxon signed-rank"
        stat, p = _wilcoxon(d)
    mean_a, mean_b = float(x.mean()), float(y.mean())
    pct = 100.0 * (mean_b - mean_a) / abs(mean_a) if mean_a != 0 else math.nan
    return PairedComparison(
        name_a=names[0],
        name_b=names[1],
        n=int(x.size),
        mean_a=mean_a,
        mean_b=mean_b,
        percent_change=pct,
        test=test,
        statistic=stat,
        pvalue=p,
        shapiro_pvalue=shapiro_p,
        alpha=alpha,
    )


def paired_comparison_table(
    df: pd.DataFrame,
    method_a: str,
    method_b: str,
    metrics: Sequence[str] | None = None,
    region: str | None = "whole",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Table 2 analog: one row per metric with ``mean_a, mean_b, percent_change, test,
    statistic, pvalue, significant`` for ``method_b`` vs ``method_a`` on paired slices.
    Metrics without finite paired values are skipped."""
    _require_columns(df, ["metric"])
    metrics = list(dict.fromkeys(df["metric"])) if metrics is None else list(metrics)
    rows = []
    for metric in metrics:
        w = paired_matrix(df, metric, region, [method_a, method_b])
        if len(w) < 3:
            continue
        r = paired_comparison(w[method_a], w[method_b], alpha, names=(method_a, method_b))
        rows.append(
            {
                "metric": metric,
                "method_a": method_a,
                "method_b": method_b,
                "n": r.n,
                "mean_a": r.mean_a,
                "mean_b": r.mean_b,
                "percent_change": r.percent_change,
                "test": r.test,
                "statistic": r.statistic,
                "pvalue": r.pvalue,
                "significant": r.significant,
            }
        )
    out = pd.DataFrame(rows)
    out.attrs = {**df.attrs, "region": region, "alpha": alpha}
    return out


# --------------------------------------------------------------------------- cluster bootstrap


def cluster_bootstrap_ci(
    values: ArrayLike,
    clusters: ArrayLike,
    statistic: Callable[[np.ndarray], float] | None = None,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap CI that resamples whole clusters (subjects), not items (slices).

    Each resample draws as many clusters as there are, with replacement (numpy ``Generator``
    seeded by ``seed``), pools all their values and applies ``statistic`` (default: the mean
    over the pooled slices, computed from cluster sums without materialising the resample).
    """
    v = np.asarray(values, dtype=float).ravel()
    c = np.asarray(clusters).ravel()
    if v.shape != c.shape:
        raise ValueError(f"values ({v.size}) and clusters ({c.size}) differ in length")
    keep = np.isfinite(v)
    v, c = v[keep], c[keep]
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    labels, idx = np.unique(c, return_inverse=True)
    k = len(labels)
    if k < 2:
        raise ValueError(f"need at least two clusters, got {k}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_resamples, k))
    if statistic is None:
        sums = np.bincount(idx, weights=v, minlength=k)
        counts = np.bincount(idx, minlength=k).astype(float)
        dist = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
        estimate = float(v.mean())
    else:
        members = [v[idx == j] for j in range(k)]
        dist = np.array([statistic(np.concatenate([members[j] for j in row])) for row in draws])
        estimate = float(statistic(v))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(dist, [tail, 100 - tail])
    return BootstrapCI(estimate, float(low), float(high), confidence, n_resamples, k, dist)


def bootstrap_table(
    df: pd.DataFrame,
    metric: str,
    region: str | None = "whole",
    methods: Sequence[str] | None = None,
    *,
    reference: str | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Subject-level bootstrap CIs per method for one metric: columns ``method, estimate, low,
    high, n_subjects, n_slices``. With ``reference``, the CI is of the paired per-slice
    difference ``method - reference`` (and the reference row is omitted)."""
    if reference is None:
        sel, methods = _select(df, metric, region, methods)
        _require_columns(sel, ["subject"])
        parts = {m: sel[sel["method"] == m] for m in methods}
        data = {m: (p["value"].to_numpy(float), p["subject"].to_numpy()) for m, p in parts.items()}
    else:
        w = paired_matrix(df, metric, region, methods)
        if reference not in w.columns:
            raise ValueError(f"reference method {reference!r} not in the table")
        subj = w.index.get_level_values("subject").to_numpy()
        data = {m: ((w[m] - w[reference]).to_numpy(), subj) for m in w.columns if m != reference}
    rows = []
    for m, (v, s) in data.items():
        ci = cluster_bootstrap_ci(v, s, n_resamples=n_resamples, confidence=confidence, seed=seed)
        finite = np.isfinite(v)
        rows.append(
            {
                "method": m,
                "estimate": ci.estimate,
                "low": ci.low,
                "high": ci.high,
                "n_subjects": ci.n_clusters,
                "n_slices": int(finite.sum()),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs = {**df.attrs, "metric": metric, "region": region, "reference": reference}
    return out


# --------------------------------------------------------------------------- Table 1

Procedure = Literal["paper", "friedman", "wilcoxon"]


def _direction(metric: str, directions: Mapping[str, bool] | None) -> bool:
    table = {**HIGHER_IS_BETTER, **(directions or {})}
    if metric not in table:
        raise ValueError(f"unknown direction for metric {metric!r}; pass directions=")
    return table[metric]


def _test_for(
    df: pd.DataFrame,
    metric: str,
    region: str | None,
    methods: list[str],
    procedure: Procedure,
    alpha: float,
) -> GroupTest:
    if procedure == "paper":
        return paper_procedure(groups_from_table(df, metric, region, methods), alpha)
    w = paired_matrix(df, metric, region, methods)
    if procedure == "friedman" and len(methods) >= 3:
        return friedman_procedure(w, alpha)
    if procedure in ("friedman", "wilcoxon"):
        return wilcoxon_holm(w, alpha)
    raise ValueError(f"procedure must be 'paper', 'friedman' or 'wilcoxon', got {procedure!r}")


def table1(
    df: pd.DataFrame,
    region: str | None = "whole",
    metrics: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    *,
    procedure: Procedure = "paper",
    reference: str | None = None,
    alpha: float = 0.05,
    directions: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """Table 1 analog as data: one row per method x metric.

    Columns ``method, metric, region, mean, sd (ddof 1), n, rank (1 = best, by the metric's
    direction; ties share the lower rank), best, second, reference, pvalue, not_significant``.
    ``reference`` is the method each one is tested against (default: the best of that metric).
    ``pvalue`` is the post-hoc p-value against the reference from ``procedure``:
    ``'paper'`` (:func:`paper_procedure`), ``'friedman'`` (:func:`friedman_procedure`, falling
    back to Wilcoxon for two methods) or ``'wilcoxon'`` (:func:`wilcoxon_holm`).
    ``not_significant`` (the paper's "*") is True when the omnibus test is not significant or
    that p-value is >= alpha; it is NA for the reference and when the metric has no data
    (e.g. LPIPS unavailable: mean NaN, no markers).
    """
    _require_columns(df, ["method", "metric", "value"])
    metrics = list(dict.fromkeys(df["metric"])) if metrics is None else list(metrics)
    methods = list(dict.fromkeys(df["method"])) if methods is None else list(methods)
    rows = []
    for metric in metrics:
        higher = _direction(metric, directions)
        g = groups_from_table(df, metric, region, methods)
        stats = pd.DataFrame(
            {
                "method": methods,
                "metric": metric,
                "region": region,
                "mean": [g[m].mean() if g[m].size else math.nan for m in methods],
                "sd": [g[m].std(ddof=1) if g[m].size > 1 else math.nan for m in methods],
                "n": [g[m].size for m in methods],
            }
        )
        stats["rank"] = stats["mean"].rank(ascending=not higher, method="min")
        stats["best"] = stats["rank"] == 1
        stats["second"] = stats["rank"] == 2
        stats["reference"] = None
        stats["pvalue"] = math.nan
        stats["not_significant"] = pd.array([pd.NA] * len(stats), dtype="boolean")
        tested = [m for m in methods if g[m].size >= 3]
        if len(tested) >= 2:
            ref = reference
            if ref is None:
                ref = stats.loc[stats["best"] & stats["method"].isin(tested), "method"].iloc[0]
            if ref not in tested:
                raise ValueError(f"reference {ref!r} has no {metric!r} values to test")
            result = _test_for(df, metric, region, tested, procedure, alpha)
            stats["reference"] = ref
            for i, m in stats["method"].items():
                if m == ref or m not in tested:
                    continue
                p = result.pvalue_between(ref, m)
                stats.loc[i, "pvalue"] = p
                gated = result.test is not None and not result.significant
                stats.loc[i, "not_significant"] = bool(gated or p >= alpha)
        rows.append(stats)
    out = pd.concat(rows, ignore_index=True)
    out.attrs = {**df.attrs, "procedure": procedure, "alpha": alpha, "region": region}
    return out


def _fmt_cell(row: pd.Series, decimals: int, fmt: str) -> str:
    if not np.isfinite(row["mean"]):
        return "n/a"
    text = f"{row['mean']:.{decimals}f} ± {row['sd']:.{decimals}f}"
    if row["best"]:
        text = f"**{text}**" if fmt == "markdown" else f"<b>{text}</b>"
    elif row["second"]:
        text = f"<u>{text}</u>"
    flag = row.get("not_significant", pd.NA)
    if not pd.isna(flag) and bool(flag):
        text += "\\*" if fmt == "markdown" else "*"
    return text


def format_table1(
    summary: pd.DataFrame,
    fmt: Literal["markdown", "html"] = "markdown",
    decimals: int | Mapping[str, int] = 2,
    caption: str | None = None,
) -> str:
    """Render a :func:`table1` result: rows = methods, columns = metrics (with region when the
    summary holds several), cells ``mean ± sd``; best in bold, second best underlined
    (``<u>``, also in Markdown, which has no underline of its own), ``*`` where the difference
    to the reference is not significant. Arrows give each metric's direction."""
    if fmt not in ("markdown", "html"):
        raise ValueError(f"fmt must be 'markdown' or 'html', got {fmt!r}")
    _require_columns(summary, ["method", "metric", "mean", "sd", "best", "second"])
    multi_region = "region" in summary.columns and summary["region"].nunique(dropna=False) > 1
    methods = list(dict.fromkeys(summary["method"]))
    keys = list(
        dict.fromkeys(
            zip(
                summary["region"] if multi_region else [None] * len(summary),
                summary["metric"],
                strict=True,
            )
        )
    )
    header = ["method"]
    for region, metric in keys:
        arrow = "↑" if HIGHER_IS_BETTER.get(metric, True) else "↓"
        name = f"{metric.upper()} {arrow}"
        header.append(f"{name} ({region})" if multi_region else name)
    body = []
    for m in methods:
        cells = [m]
        for region, metric in keys:
            sel = (summary["method"] == m) & (summary["metric"] == metric)
            if multi_region:
                sel &= summary["region"] == region
            d = decimals if isinstance(decimals, int) else decimals.get(metric, 2)
            r = summary[sel]
            cells.append(_fmt_cell(r.iloc[0], d, fmt) if len(r) else "")
        body.append(cells)
    if fmt == "markdown":
        lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
        lines += [f"| {' | '.join(c)} |" for c in body]
        return (f"{caption}\n\n" if caption else "") + "\n".join(lines) + "\n"
    cap = f"<caption>{caption}</caption>" if caption else ""
    head = "".join(f"<th>{h}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cells in body)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# --------------------------------------------------------------------------- the "*" marker

_PROCEDURE_NAMES = {
    "paper": "the paper's procedure",
    "friedman": "Friedman + Nemenyi, paired",
    "wilcoxon": "Wilcoxon signed-rank + Holm, paired",
}


def star_reference(methods: Sequence[str], prefer: str | None = None) -> str:
    """The method that the "*" of a Table 1 analog compares every other method with: the model
    under study, as in the paper's Table 1 ("not significantly different from Res-SRDiff").

    ``prefer`` when it is one of ``methods``; else the method named Res-SRDiff (the label
    ``res-srdiff`` or the display name ``Res-SRDiff``); else the last method (tables of the
    evaluation runner list the references first and the evaluated models after them). Pass the
    result as ``table1(..., reference=...)`` and caption the table with :func:`star_legend`."""
    names = list(dict.fromkeys(methods))
    if not names:
        raise ValueError("star_reference needs at least one method")
    if prefer is not None and prefer in names:
        return prefer
    return next((m for m in names if m.lower() == "res-srdiff"), names[-1])


def star_legend(reference: str, procedure: Procedure = "paper", alpha: float = 0.05) -> str:
    """The one definition of "*" for a caption: ``* not significantly different from
    <reference> (<procedure>, p ≥ alpha)``; the reference's own cells carry no mark."""
    if procedure not in _PROCEDURE_NAMES:
        raise ValueError(f"procedure must be one of {sorted(_PROCEDURE_NAMES)}, got {procedure!r}")
    return (
        f"* not significantly different from {reference} "
        f"({_PROCEDURE_NAMES[procedure]}, p ≥ {alpha:g}); {reference}'s own cells carry no mark"
    )
