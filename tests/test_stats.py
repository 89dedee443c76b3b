"""ressrdiff.stats against documented examples, closed forms and size/power simulations."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ressrdiff import stats as S

# scipy.stats.tukey_hsd documentation example (three groups of five)
TUKEY_GROUPS = {
    "g0": [24.5, 23.5, 26.4, 27.1, 29.9],
    "g1": [28.4, 34.2, 29.5, 32.2, 30.1],
    "g2": [26.1, 28.3, 24.3, 26.2, 27.8],
}
# McDonald et al. (1991) mussel shell data, scipy.stats.f_oneway documentation example
MUSSELS = {
    "tillamook": [0.0571, 0.0813, 0.0831, 0.0976, 0.0817, 0.0859, 0.0735, 0.0659, 0.0923, 0.0836],
    "newport": [0.0873, 0.0662, 0.0672, 0.0819, 0.0749, 0.0649, 0.0835, 0.0725],
    "petersburg": [0.0974, 0.1352, 0.0817, 0.1016, 0.0968, 0.1064, 0.105],
    "magadan": [0.1033, 0.0915, 0.0781, 0.0685, 0.0677, 0.0697, 0.0764, 0.0689],
    "tvarminne": [0.0703, 0.1026, 0.0956, 0.0973, 0.1039, 0.1045],
}
# Darwin's Zea mays, cross- minus self-fertilised height (eighths of an inch), Fisher (1935)
DARWIN = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], dtype=float)
# scipy.stats.friedmanchisquare documentation example (pulse before / right after / 5 min after)
PULSE = pd.DataFrame(
    {
        "before": [72, 96, 88, 92, 74, 76, 82],
        "immediately_after": [120, 120, 132, 120, 101, 96, 112],
        "five_min_after": [76, 95, 104, 96, 84, 72, 76],
    }
)
# scikit-posthocs posthoc_dunn documentation example (groups of unequal size, with ties)
DUNN_GROUPS = {"1": [1, 2, 3, 5, 1], "2": [12, 31, 54], "3": [10, 12, 6, 74, 11]}


# --------------------------------------------------------------------------- paper procedure


def test_tukey_reproduces_scipy_documented_example():
    res = S.paper_procedure(TUKEY_GROUPS, parametric=True)
    assert res.test == "one-way ANOVA" and res.posthoc == "Tukey HSD"
    pw = res.pairwise.set_index(["group1", "group2"])
    # documented: (0-1) -4.600 p 0.014, (0-2) -0.260 p 0.980, (1-2) 4.340 p 0.020
    assert pw.loc[("g0", "g1"), "estimate"] == pytest.approx(4.6)
    assert pw.loc[("g0", "g2"), "estimate"] == pytest.approx(0.26)
    assert pw.loc[("g1", "g2"), "estimate"] == pytest.approx(-4.34)
    assert round(pw.loc[("g0", "g1"), "pvalue"], 3) == 0.014
    assert round(pw.loc[("g0", "g2"), "pvalue"], 3) == 0.980
    assert round(pw.loc[("g1", "g2"), "pvalue"], 3) == 0.020
    assert list(pw["reject"]) == [True, False, True]
    assert res.pvalue_between("g2", "g0") == pytest.approx(pw.loc[("g0", "g2"), "pvalue"])
    # F by its closed form: between-group over within-group mean square
    x = [np.asarray(v) for v in TUKEY_GROUPS.values()]
    grand = np.concatenate(x).mean()
    msb = sum(len(v) * (v.mean() - grand) ** 2 for v in x) / (len(x) - 1)
    msw = sum(((v - v.mean()) ** 2).sum() for v in x) / (sum(map(len, x)) - len(x))
    assert res.statistic == pytest.approx(msb / msw)
    # every group passes Shapiro-Wilk, so the automatic choice is ANOVA as well
    assert S.paper_procedure(TUKEY_GROUPS, posthoc=False).test == "one-way ANOVA"


def test_anova_reproduces_mussel_example_and_nonnormal_groups_switch_to_kruskal():
    res = S.paper_procedure(MUSSELS, parametric=True, posthoc=False)
    assert res.statistic == pytest.approx(7.121019471642447, rel=1e-9)
    assert res.pvalue == pytest.approx(0.0002812242314534544, rel=1e-6)
    # two of the five groups fail Shapiro-Wilk at 0.05, so the paper's rule takes Kruskal-Wallis
    auto = S.paper_procedure(MUSSELS)
    assert list(auto.normality["normal"]) == [True, True, True, False, False]
    assert auto.test == "Kruskal-Wallis" and auto.posthoc == "Dunn (Bonferroni)"


def test_kruskal_reproduces_scipy_documented_examples_and_closed_form():
    res = S.paper_procedure({"x": [1, 3, 5, 7, 9], "y": [2, 4, 6, 8, 10]}, parametric=False)
    # H = 12 / (N (N+1)) * sum R_i^2 / n_i - 3 (N+1), rank sums 25 and 30, N = 10
    assert res.statistic == pytest.approx(12 / 110 * (25**2 / 5 + 30**2 / 5) - 33)
    assert res.pvalue == pytest.approx(0.6015081344405895)
    ties = S.paper_procedure({"x": [1, 1, 1], "y": [2, 2, 2], "z": [2, 2]})
    assert ties.test == "Kruskal-Wallis"  # constant groups cannot be normal
    assert ties.statistic == pytest.approx(7.0)
    assert ties.pvalue == pytest.approx(0.0301973834223185)


def test_dunn_is_bonferroni_corrected_closed_form():
    res = S.paper_procedure(DUNN_GROUPS, parametric=False)
    values = [np.asarray(v, float) for v in DUNN_GROUPS.values()]
    pooled = np.concatenate(values)
    ranks = sps.rankdata(pooled)
    n_total = len(pooled)
    _, ties = np.unique(pooled, return_counts=True)
    tie_term = (ties**3 - ties).sum() / (12 * (n_total - 1))
    bounds = np.cumsum([0, *map(len, values)])
    mean_rank = [ranks[a:b].mean() for a, b in itertools.pairwise(bounds)]
    for (i, a), (j, b) in itertools.combinations(enumerate(DUNN_GROUPS), 2):
        var = (n_total * (n_total + 1) / 12 - tie_term) * (1 / len(values[i]) + 1 / len(values[j]))
        z = (mean_rank[i] - mean_rank[j]) / np.sqrt(var)
        p_raw = 2 * sps.norm.sf(abs(z))
        assert res.pvalue_between(a, b) == pytest.approx(min(1.0, 3 * p_raw), rel=1e-9)
        row = res.pairwise[(res.pairwise.group1 == a) & (res.pairwise.group2 == b)]
        assert row["estimate"].iloc[0] == pytest.approx(mean_rank[j] - mean_rank[i])
    # the correction was applied: the smallest p is 3x the uncorrected one (0.005748)
    assert res.pairwise["pvalue"].min() == pytest.approx(0.017243, abs=1e-6)


def test_shapiro_wilk_reproduces_1965_paper_example():
    # Shapiro & Wilk (1965): weights of 11 men, W = 0.79, significant at the 1% level
    weights = [148, 154, 158, 160, 161, 162, 166, 170, 182, 195, 236]
    table = S.shapiro_wilk({"men": weights})
    assert table.loc[0, "W"] == pytest.approx(0.79, abs=0.005)
    assert table.loc[0, "pvalue"] < 0.01 and not table.loc[0, "normal"]
    assert table.loc[0, "n"] == 11


def test_residual_normality_pools_the_anova_residuals():
    res = S.paper_procedure(TUKEY_GROUPS, normality="residuals", posthoc=False)
    resid = np.concatenate([np.subtract(v, np.mean(v)) for v in TUKEY_GROUPS.values()])
    assert len(res.normality) == 1
    assert res.normality.loc[0, "pvalue"] == pytest.approx(sps.shapiro(resid).pvalue)
    with pytest.raises(ValueError, match="normality"):
        S.paper_procedure(TUKEY_GROUPS, normality="nope")
    with pytest.raises(ValueError, match="two groups"):
        S.paper_procedure({"only": [1, 2, 3]})
    with pytest.raises(ValueError, match="identical"):
        S.paper_procedure({"a": [1, 1, 1], "b": [1, 1, 1]})


# --------------------------------------------------------------------------- paired procedures


def test_friedman_reproduces_scipy_example_and_closed_form():
    res = S.friedman_procedure(PULSE)
    assert res.statistic == pytest.approx(10.57142857142857)
    assert res.pvalue == pytest.approx(0.005063414171757498)
    n, k = PULSE.shape
    rank_sums = sps.rankdata(PULSE.to_numpy(), axis=1).sum(axis=0)  # no ties within a block
    chi2 = 12 / (n * k * (k + 1)) * (rank_sums**2).sum() - 3 * n * (k + 1)
    assert res.statistic == pytest.approx(chi2)
    assert res.n_blocks == 7 and res.test == "Friedman"
    with pytest.raises(ValueError, match="at least 3"):
        S.friedman_procedure(PULSE.iloc[:, :2])


def test_nemenyi_matches_studentized_range_closed_form():
    res = S.friedman_procedure(PULSE, posthoc="nemenyi")
    n, k = PULSE.shape
    mean_rank = sps.rankdata(PULSE.to_numpy(), axis=1).mean(axis=0)
    se = np.sqrt(k * (k + 1) / (6 * n))
    for (i, a), (j, b) in itertools.combinations(enumerate(PULSE.columns), 2):
        q = abs(mean_rank[i] - mean_rank[j]) / se * np.sqrt(2)
        expected = sps.studentized_range.sf(q, k, np.inf)
        assert res.pvalue_between(a, b) == pytest.approx(expected, rel=1e-6)


def test_conover_matches_conover_1999_formula_with_holm():
    res = S.friedman_procedure(PULSE, posthoc="conover")
    assert res.posthoc == "Conover (holm)"
    x = PULSE.to_numpy()
    n, k = x.shape
    r = sps.rankdata(x, axis=1)
    rank_sums = r.sum(axis=0)
    a1 = (r**2).sum()
    # Conover (1999), Practical Nonparametric Statistics, eq. for multiple comparisons (Friedman)
    se = np.sqrt(2 * (n * a1 - (rank_sums**2).sum()) / ((n - 1) * (k - 1)))
    pairs = list(itertools.combinations(range(k), 2))
    raw = [2 * sps.t.sf(abs(rank_sums[i] - rank_sums[j]) / se, (n - 1) * (k - 1)) for i, j in pairs]
    expected = S.holm(raw)
    for (i, j), p in zip(pairs, expected, strict=True):
        assert res.pvalue_between(PULSE.columns[i], PULSE.columns[j]) == pytest.approx(p, rel=1e-6)


def test_holm_closed_form_and_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 -> 0.02, 0.03, 0.06, 0.04 -> running max
    assert S.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    q = rng.uniform(0, 0.2, size=9)
    assert S.holm(q) == pytest.approx(multipletests(q, method="holm")[1])
    with pytest.raises(ValueError, match="p-values"):
        S.holm([0.5, 1.5])


def test_wilcoxon_holm_reproduces_darwin_example_and_holm():
    single = S.wilcoxon_holm({"self": np.zeros_like(DARWIN), "cross": DARWIN})
    # scipy.stats.wilcoxon documentation: statistic 24, exact two-sided p = 0.041259765625
    assert single.pairwise.loc[0, "pvalue"] == pytest.approx(0.041259765625)
    assert single.pairwise.loc[0, "estimate"] == pytest.approx(np.median(DARWIN))
    assert single.test is None and single.significant
    res = S.wilcoxon_holm(PULSE)
    raw = [
        sps.wilcoxon(PULSE[b] - PULSE[a]).pvalue
        for a, b in itertools.combinations(PULSE.columns, 2)
    ]
    assert list(res.pairwise["pvalue"]) == pytest.approx(list(S.holm(raw)))


def test_paired_comparison_t_test_on_darwin_and_wilcoxon_branch():
    # Fisher's paired t for Darwin's data: t = 2.148 on 14 df, p = 0.0497
    res = S.paired_comparison(np.zeros_like(DARWIN), DARWIN)
    assert res.test == "paired t-test" and res.shapiro_pvalue >= 0.05
    assert res.statistic == pytest.approx(DARWIN.mean() / (DARWIN.std(ddof=1) / np.sqrt(15)))
    assert res.statistic == pytest.approx(2.148, abs=1e-3)
    assert res.pvalue == pytest.approx(0.0497, abs=1e-4)
    # strongly skewed differences -> Wilcoxon; percent change by its definition
    a = np.linspace(10, 20, 20)
    d = np.array([0.1] * 17 + [5.0, 8.0, 12.0])
    b = a + d
    skew = S.paired_comparison(a, b, names=("without", "with"))
    assert skew.test == "Wilcoxon signed-rank"
    assert skew.pvalue == pytest.approx(sps.wilcoxon(b - a).pvalue)
    assert skew.percent_change == pytest.approx(100 * d.mean() / a.mean())
    with pytest.raises(ValueError, match="length"):
        S.paired_comparison([1, 2, 3], [1, 2])


# --------------------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_variance_matches_closed_form():
    rng = np.random.default_rng(0)
    k, m = 12, 8
    cluster_means = rng.normal(0, 1, k)
    values = (cluster_means[:, None] + rng.normal(0, 0.3, (k, m))).ravel()
    clusters = np.repeat([f"s{i}" for i in range(k)], m)
    ci = S.cluster_bootstrap_ci(values, clusters, n_resamples=20_000, seed=1)
    # equal cluster sizes: the resampled mean is the mean of k cluster means drawn with
    # replacement, so its variance is the population variance of the cluster means over k
    observed = values.reshape(k, m).mean(axis=1)
    expected_sd = np.sqrt(observed.var(ddof=0) / k)
    assert ci.distribution.std() == pytest.approx(expected_sd, rel=0.03)
    assert ci.estimate == pytest.approx(values.mean())
    assert ci.low < ci.estimate < ci.high and ci.n_clusters == k
    # seeded; the generic-statistic path draws the same clusters
    again = S.cluster_bootstrap_ci(values, clusters, n_resamples=20_000, seed=1)
    assert np.array_equal(again.distribution, ci.distribution)
    generic = S.cluster_bootstrap_ci(values, clusters, np.mean, n_resamples=500, seed=2)
    fast = S.cluster_bootstrap_ci(values, clusters, n_resamples=500, seed=2)
    assert generic.distribution == pytest.approx(fast.distribution)
    with pytest.raises(ValueError, match="two clusters"):
        S.cluster_bootstrap_ci([1.0, 2.0], ["a", "a"])


def test_cluster_bootstrap_covers_and_slice_bootstrap_does_not():
    """Clustered data, true mean 0: resampling subjects keeps close to nominal coverage,
    resampling slices as if independent does not."""

    def covered(seed: int, by_subject: bool) -> bool:
        rng = np.random.default_rng(seed)
        k, m = 20, 10
        v = (rng.normal(0, 1, k)[:, None] + rng.normal(0, 0.5, (k, m))).ravel()
        c = np.repeat(np.arange(k), m) if by_subject else np.arange(k * m)
        ci = S.cluster_bootstrap_ci(v, c, n_resamples=1000, seed=seed)
        return ci.low <= 0.0 <= ci.high

    subject = np.mean([covered(s, True) for s in range(200)])
    slices = np.mean([covered(s, False) for s in range(40)])
    # percentile bootstrap with 20 clusters is slightly liberal; far from the slice version
    assert subject >= 0.88
    assert slices <= 0.75


# --------------------------------------------------------------------------- size and power


def _binomial_limit(n: int, alpha: float = 0.05) -> int:
    """Largest false-positive count a correct level-alpha test reaches with prob. 0.999."""
    return int(sps.binom.ppf(0.999, n, alpha))


def _groups(rng: np.random.Generator, effect: float, n: int = 15) -> dict[str, np.ndarray]:
    return {m: rng.normal(0, 1, n) + (effect if m == "c" else 0.0) for m in "abc"}


def _blocks(rng: np.random.Generator, effect: float, n: int = 12) -> pd.DataFrame:
    w = rng.normal(0, 3, (n, 1)) + rng.normal(0, 1, (n, 3))  # strong block (subject) effect
    w[:, 2] += effect
    return pd.DataFrame(w, columns=list("abc"))


def test_paper_procedure_size_and_power():
    null = sum(
        S.paper_procedure(_groups(np.random.default_rng(s), 0.0), posthoc=False).significant
        for s in range(200)
    )
    hits = sum(
        S.paper_procedure(_groups(np.random.default_rng(s), 1.5), posthoc=False).significant
        for s in range(60)
    )
    assert null <= _binomial_limit(200)
    assert hits >= 54  # power about 0.99 at this effect


def test_paired_procedures_size_and_power():
    def friedman(seed: int, effect: float) -> bool:
        w = _blocks(np.random.default_rng(seed), effect)
        return S.friedman_procedure(w, posthoc=None).significant

    def paired(seed: int, effect: float) -> bool:
        w = _blocks(np.random.default_rng(seed), effect)
        return S.paired_comparison(w["a"], w["c"]).significant

    def holm(seed: int, effect: float) -> bool:
        return S.wilcoxon_holm(_blocks(np.random.default_rng(seed), effect)).significant

    for test, n_null, n_effect in ((friedman, 200, 60), (paired, 200, 60), (holm, 100, 40)):
        null = sum(test(s, 0.0) for s in range(n_null))
        hits = sum(test(s, 2.0) for s in range(n_effect))
        assert null <= _binomial_limit(n_null), test.__name__
        assert hits >= 0.85 * n_effect, test.__name__


# --------------------------------------------------------------------------- Table 1 / Table 2


def _tidy(seed: int = 0, n_subjects: int = 4, n_slices: int = 8) -> pd.DataFrame:
    """Per-slice scores of three methods: 'good' clearly best in PSNR and GMSD, 'mid' and
    'good' indistinguishable in SSIM; LPIPS unavailable (NaN)."""
    rng = np.random.default_rng(seed)
    rows = []
    effects = {"bicubic": (0.0, 0.0, 0.0), "mid": (1.0, 0.05, -0.02), "good": (3.0, 0.05, -0.04)}
    for s, sl in itertools.product(range(n_subjects), range(n_slices)):
        base = rng.normal(25, 1)
        for method, (dp, ds, dg) in effects.items():
            for metric, value in (
                ("psnr", base + dp + rng.normal(0, 0.3)),
                ("ssim", 0.8 + ds + rng.normal(0, 0.01)),
                ("gmsd", 0.1 + dg + rng.normal(0, 0.003)),
                ("lpips", np.nan),
            ):
                rows.append((f"s{s}", sl, method, metric, value, "whole"))
    df = pd.DataFrame(rows, columns=["subject", "slice", "method", "metric", "value", "region"])
    df.attrs["lpips_status"] = "LPIPS unavailable (test)"
    return df


@pytest.mark.parametrize("procedure", ["paper", "friedman", "wilcoxon"])
def test_table1_markers_follow_metric_direction(procedure):
    df = _tidy()
    t = S.table1(df, procedure=procedure).set_index(["metric", "method"])
    assert t.attrs["lpips_status"] == "LPIPS unavailable (test)"
    assert t.loc[("psnr", "good"), "best"] and t.loc[("psnr", "mid"), "second"]
    assert t.loc[("gmsd", "good"), "best"] and t.loc[("gmsd", "mid"), "second"]  # lower wins
    assert t.loc[("gmsd", "bicubic"), "rank"] == 3
    assert t.loc[("psnr", "mid"), "mean"] == pytest.approx(
        df[(df.metric == "psnr") & (df.method == "mid")]["value"].mean()
    )
    assert t.loc[("psnr", "mid"), "sd"] == pytest.approx(
        df[(df.metric == "psnr") & (df.method == "mid")]["value"].std(ddof=1)
    )
    # the p-values are the chosen procedure's post-hoc p-values against the best method
    for metric in ("psnr", "ssim", "gmsd"):
        if procedure == "paper":
            res = S.paper_procedure(S.groups_from_table(df, metric))
        elif procedure == "friedman":
            res = S.friedman_procedure(S.paired_matrix(df, metric))
        else:
            res = S.wilcoxon_holm(S.paired_matrix(df, metric))
        sub = t.loc[metric]
        ref = sub.index[sub["best"]][0]
        assert (sub["reference"] == ref).all() and pd.isna(sub.loc[ref, "not_significant"])
        for m in sub.index.drop(ref):
            p = res.pvalue_between(ref, m)
            assert sub.loc[m, "pvalue"] == pytest.approx(p)
            gated = res.test is not None and not res.significant
            assert bool(sub.loc[m, "not_significant"]) == (gated or p >= 0.05)
    assert not bool(t.loc[("psnr", "bicubic"), "not_significant"])  # a 3 dB gap is detected
    # LPIPS unavailable: no mean, no markers, no test
    lp = t.loc["lpips"]
    assert lp["mean"].isna().all() and not lp["best"].any() and lp["not_significant"].isna().all()


def test_table1_formatting_and_reference():
    t = S.table1(_tidy(), reference="bicubic", metrics=["psnr", "gmsd", "lpips"])
    assert set(t["reference"].dropna()) == {"bicubic"}
    md = S.format_table1(t, caption="Table 1 analog")
    lines = md.strip().splitlines()
    assert lines[0] == "Table 1 analog"
    assert lines[2] == "| method | PSNR ↑ | GMSD ↓ | LPIPS ↓ |"
    good = next(line for line in lines if line.startswith("| good"))
    assert good.split(" | ")[1].startswith("**") and "n/a" in good
    mid = next(line for line in lines if line.startswith("| mid"))
    assert "<u>" in mid
    # whole and masked side by side: the region joins the column name
    df = _tidy()
    both = pd.concat([df, df.assign(region="mask", value=df["value"] + 0.1)], ignore_index=True)
    wide = S.format_table1(
        pd.concat([S.table1(both, "whole", ["psnr"]), S.table1(both, "mask", ["psnr"])])
    )
    assert wide.splitlines()[0] == "| method | PSNR ↑ (whole) | PSNR ↑ (mask) |"
    with pytest.raises(ValueError, match="several regions"):
        S.table1(both, region=None)
    html = S.format_table1(t, fmt="html")
    assert html.startswith("<table>") and "<b>" in html and "<u>" in html
    with pytest.raises(ValueError, match="fmt"):
        S.format_table1(t, fmt="latex")
    with pytest.raises(ValueError, match="direction"):
        S.table1(_tidy().replace({"metric": {"psnr": "mystery"}}))


def test_table1_asterisk_marks_non_significant():
    rows = []
    rng = np.random.default_rng(1)
    for i in range(30):
        rows += [
            ("s0", i, "a", "psnr", 30 + rng.normal(0, 1), "whole"),
            ("s0", i, "b", "psnr", 30.01 + rng.normal(0, 1), "whole"),
            ("s0", i, "c", "psnr", 20 + rng.normal(0, 1), "whole"),
        ]
    df = pd.DataFrame(rows, columns=["subject", "slice", "method", "metric", "value", "region"])
    t = S.table1(df)
    ref = t.loc[t["best"], "method"].iloc[0]
    other = ({"a", "b"} - {ref}).pop()
    md = S.format_table1(t)
    assert "\\*" in next(line for line in md.splitlines() if line.startswith(f"| {other}"))
    assert "\\*" not in next(line for line in md.splitlines() if line.startswith("| c"))


def test_paired_table_and_subject_bootstrap_table():
    df = _tidy()
    t2 = S.paired_comparison_table(df, "mid", "good", metrics=["psnr", "lpips"])
    assert list(t2["metric"]) == ["psnr"]  # LPIPS has no finite pairs
    row = t2.iloc[0]
    w = S.paired_matrix(df, "psnr", methods=["mid", "good"])
    assert row["percent_change"] == pytest.approx(
        100 * (w["good"].mean() - w["mid"].mean()) / w["mid"].mean()
    )
    assert row["significant"] and row["n"] == 32
    boot = S.bootstrap_table(df, "psnr", n_resamples=2000, seed=0)
    assert list(boot["method"]) == ["bicubic", "mid", "good"]
    assert (boot["n_subjects"] == 4).all() and (boot["n_slices"] == 32).all()
    assert (boot["low"] < boot["estimate"]).all() and (boot["estimate"] < boot["high"]).all()
    diff = S.bootstrap_table(df, "psnr", reference="bicubic", n_resamples=2000, seed=0)
    assert list(diff["method"]) == ["mid", "good"]
    assert diff.set_index("method").loc["good", "estimate"] == pytest.approx(
        (w["good"] - S.paired_matrix(df, "psnr", methods=["bicubic", "good"])["bicubic"]).mean()
    )


def test_paired_matrix_drops_incomplete_blocks():
    df = _tidy(n_subjects=2, n_slices=3)
    df.loc[(df.metric == "psnr") & (df.method == "mid") & (df.slice == 1), "value"] = np.nan
    w = S.paired_matrix(df, "psnr")
    assert w.shape == (4, 3) and w.attrs["n_dropped"] == 2
    with pytest.raises(ValueError, match="no rows"):
        S.paired_matrix(df, "psnr", region="mask")
    with pytest.raises(ValueError, match="have no"):
        S.groups_from_table(df, "psnr", methods=["nope"])


def test_star_marks_one_thing_the_difference_from_res_srdiff():
    assert S.star_reference(["nearest", "bspline", "res-srdiff-noswin", "res-srdiff"]) == (
        "res-srdiff"
    )
    assert S.star_reference(["Bicubic", "Res-SRDiff", "I2SB"]) == "Res-SRDiff"
    assert S.star_reference(["nearest", "bspline", "mine"]) == "mine"  # the evaluated model
    assert S.star_reference(["a", "Res-SRDiff"], prefer="a") == "a"
    with pytest.raises(ValueError):
        S.star_reference([])
    legend = S.star_legend("Res-SRDiff", "paper", 0.05)
    assert legend.startswith("* not significantly different from Res-SRDiff")
    assert "the paper's procedure" in legend and "p ≥ 0.05" in legend
    assert "paired" in S.star_legend("x", "friedman")
    with pytest.raises(ValueError, match="procedure"):
        S.star_legend("x", "anova")
    # table1 with the star's reference marks exactly the methods not different from it
    rows = []
    rng = np.random.default_rng(2)
    for i in range(30):
        for m, mu in (("bspline", 30.0), ("res-srdiff", 30.02), ("nearest", 20.0)):
            rows.append(("s0", i, m, "psnr", mu + rng.normal(0, 1), "whole"))
    df = pd.DataFrame(rows, columns=["subject", "slice", "method", "metric", "value", "region"])
    ref = S.star_reference(df["method"])
    t = S.table1(df, reference=ref).set_index("method")
    assert (t["reference"] == "res-srdiff").all() and pd.isna(t.loc[ref, "not_significant"])
    assert bool(t.loc["bspline", "not_significant"]) and not t.loc["nearest", "not_significant"]
