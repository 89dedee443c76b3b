"""Likert reader-study kit: blinding, seeding, crash-safe ratings, widget app and analysis."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ressrdiff import likert as L

METHODS = ["Res-SRDiff", "TM-DDPM", "Pix2pix"]
POOL = pd.DataFrame(
    [("brain", f"sub-{i % 4}", i) for i in range(40)]
    + [("prostate", f"pat-{i % 3}", i) for i in range(30)],
    columns=["anatomy", "subject", "slice"],
)
EFFECTS = {"Res-SRDiff": 4.1, "TM-DDPM": 3.5, "Pix2pix": 3.0}


def _kit(rater: str = "r1", seed: int = 7, n: int = 10) -> L.LikertKit:
    return L.make_kit(POOL, METHODS, rater, n_per_group=n, seed=seed)


# --------------------------------------------------------------------------- kit


def test_kit_is_blinded_balanced_and_seeded(tmp_path):
    kit = _kit()
    assert list(kit.sheet.columns) == ["rater_id", "position", "image_id"]
    assert kit.sheet["image_id"].is_unique and len(kit.sheet) == 2 * 3 * 10
    assert set(kit.sheet["image_id"]) == set(kit.key["image_id"])
    assert kit.key.groupby(["anatomy", "method"]).size().eq(10).all()
    assert not kit.key.duplicated(["anatomy", "method", "slice"]).any()
    assert kit.key["image_id"].str.fullmatch(r"img-[0-9a-f]{6}").all()
    # presentation order mixes the methods (not grouped by method)
    order = kit.sheet.merge(kit.key, on="image_id")["method"]
    assert (order != order.shift()).sum() > 20
    # same seed -> same kit; other rater -> same images and ids, other order; other seed differs
    again = _kit()
    pd.testing.assert_frame_equal(kit.sheet, again.sheet)
    pd.testing.assert_frame_equal(kit.key, again.key)
    other_rater = _kit("r2")
    pd.testing.assert_frame_equal(kit.key, other_rater.key)
    assert list(other_rater.sheet["image_id"]) != list(kit.sheet["image_id"])
    assert set(_kit(seed=8).key["image_id"]) != set(kit.key["image_id"])
    # the files: the sheet never names a method; the key is a separate file
    written = L.make_kit(
        POOL,
        METHODS,
        "r1",
        n_per_group=10,
        seed=7,
        sheet_path=tmp_path / "rater" / "sheet.csv",
        key_path=tmp_path / "key" / "key.csv",
    )
    pd.testing.assert_frame_equal(written.key, kit.key)
    text = (tmp_path / "rater" / "sheet.csv").read_text(encoding="utf-8")
    assert not any(m in text for m in METHODS) and "brain" not in text
    pd.testing.assert_frame_equal(L.read_sheet(tmp_path / "rater" / "sheet.csv"), kit.sheet)
    key = L.read_key(tmp_path / "key" / "key.csv")
    assert list(key["method"]) == list(kit.key["method"])
    with pytest.raises(ValueError, match="different file"):
        kit.write(tmp_path / "same.csv", tmp_path / "same.csv")
    with pytest.raises(ValueError, match="both"):
        L.make_kit(POOL, METHODS, "r1", n_per_group=10, sheet_path=tmp_path / "s.csv")


def test_kit_paired_option_and_bad_input():
    kit = L.make_kit({"brain": list(range(12))}, ["a", "b"], "r1", n_per_group=5, paired=True)
    per_method = kit.key.groupby("method")["slice"].apply(sorted)
    assert per_method["a"] == per_method["b"]
    with pytest.raises(ValueError, match="fewer than n_per_group"):
        L.make_kit(POOL, METHODS, "r1", n_per_group=35)
    with pytest.raises(ValueError, match="distinct"):
        L.make_kit(POOL, ["a", "a"], "r1")
    with pytest.raises(ValueError, match="rater_id"):
        L.make_kit(POOL, METHODS, "a,b")
    with pytest.raises(ValueError, match="anatomy"):
        L.make_kit(pd.DataFrame({"slice": [1]}), METHODS, "r1")


# --------------------------------------------------------------------------- ratings file


def test_writer_appends_fsyncs_and_validates(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    kit = _kit(n=2)
    out = tmp_path / "ratings.csv"
    w = L.RatingWriter(out, "r1")
    ids = list(kit.sheet["image_id"])
    w.append(ids[0], 5, 4, 3)
    w.append(ids[1], 1, 2, 3)
    assert len(synced) == 2
    r = L.read_ratings(out)
    assert list(r.columns) == L.RATING_COLUMNS
    assert r[["contrast", "edge_sharpness", "anatomical_detail"]].values.tolist() == [
        [5, 4, 3],
        [1, 2, 3],
    ]
    assert not r["simulated"].any() and r.attrs["n_incomplete"] == 0
    assert L.pending_ids(kit.sheet, out) == [i for i in kit.sheet["image_id"] if i not in ids[:2]]
    with pytest.raises(ValueError, match="already rated"):
        w.append(ids[0], 3, 3, 3)
    for bad in (0, 6, 2.5, True):
        with pytest.raises(ValueError, match="integer from 1 to 5"):
            w.append(ids[2], bad, 3, 3)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a ratings file"):
        L.RatingWriter(tmp_path / "other.csv", "r1")


def test_crash_loses_nothing_and_resume_skips_rated(tmp_path):
    kit = _kit(n=2)
    sheet_path = tmp_path / "sheet.csv"
    kit.write(sheet_path, tmp_path / "key.csv")
    out = tmp_path / "ratings.csv"
    ids = list(kit.sheet["image_id"])
    # a rater process that saves three answers and then dies without any cleanup
    script = textwrap.dedent(
        f"""
        import os
        from ressrdiff.likert import RatingWriter
        w = RatingWriter({str(out)!r}, "r1")
        for i in {ids[:3]!r}:
            w.append(i, 4, 4, 4)
        os._exit(9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == 9
    # and a fourth answer torn mid-write by a crash
    with open(out, "a", encoding="utf-8") as f:
        f.write(f"r1,{ids[3]},2,")
    r = L.read_ratings(out)
    assert list(r["image_id"]) == ids[:3] and r.attrs["n_incomplete"] == 1
    sheet = L.read_sheet(sheet_path)
    assert L.pending_ids(sheet, out) == ids[3:]
    L.RatingWriter(out, "r1").append(ids[3], 2, 3, 4)  # repairs the torn line first
    r = L.read_ratings(out)
    assert list(r["image_id"]) == ids[:4] and r.attrs["n_incomplete"] == 1
    assert L.pending_ids(sheet, out) == ids[4:]


# --------------------------------------------------------------------------- widget app


def test_rating_app_driven_programmatically(tmp_path):
    pytest.importorskip("ipywidgets")
    kit = L.make_kit({"brain": list(range(6))}, ["a", "b"], "r1", n_per_group=2, seed=1)
    out = tmp_path / "ratings.csv"
    shown = []

    def loader(image_id: str) -> np.ndarray:
        shown.append(image_id)
        return np.linspace(-1, 1, 64).reshape(8, 8)

    app = L.rating_app(kit, loader, out)
    order = list(kit.sheet["image_id"])
    assert app.current_id == order[0] and shown == [order[0]]
    assert app.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    app.save_button.click()  # nothing scored yet: nothing saved
    assert not out.exists() and "all three" in app.status.value
    for expected in ([5, 4, 3], [2, 2, 1]):
        for c, v in zip(L.CRITERIA, expected, strict=True):
            app.controls[c].value = v
        app.save_button.click()
    r = L.read_ratings(out)
    assert list(r["image_id"]) == order[:2]
    assert r[list(L.CRITERIA)].values.tolist() == [[5, 4, 3], [2, 2, 1]]
    assert all(c.value is None for c in app.controls.values())  # reset for the next image
    # a new app on the same file resumes at the third image, then finishes
    app2 = L.rating_app(kit.sheet, loader, out)
    assert app2.current_id == order[2]
    for _ in range(2):
        for c in app2.controls.values():
            c.value = 3
        app2.save_button.click()
    assert app2.current_id is None and app2.save_button.disabled
    assert "All 4 images rated" in app2.progress.value
    assert len(L.read_ratings(out)) == 4
    with pytest.raises(ValueError, match="blinded sheet"):
        L.rating_app(kit.key.assign(rater_id="r1"), loader, out)


def test_widget_snapshot_shows_the_live_interface(tmp_path):
    pytest.importorskip("ipywidgets")
    import base64

    kit = L.make_kit({"brain": list(range(6))}, ["a", "b"], "r1", n_per_group=2, seed=1)
    app = L.rating_app(kit, lambda i: np.linspace(-1, 1, 64).reshape(8, 8), tmp_path / "r.csv")
    app.controls[L.CRITERIA[0]].value = 4
    page = L.widget_snapshot_html(app.widget)
    png = base64.b64encode(bytes(app.image.value)).decode("ascii")
    assert png in page  # the image the rater sees, byte for byte
    assert "Save / Next" in page and app.progress.value in page
    for c in L.CRITERIA:  # one row of 1-5 buttons per criterion, with its label
        assert c.replace("_", " ") in page
    assert page.count("<button disabled") == 5 * len(L.CRITERIA) + 1
    assert page.count("font-weight:bold") == 1  # the one score chosen so far is marked


# --------------------------------------------------------------------------- kappa


def test_kappa_textbook_example():
    # Cohen's kappa example (Wikipedia, "Cohen's kappa"): 50 proposals, yes/yes 20, yes/no 5,
    # no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4. With two ordered categories the
    # linear and quadratic weights equal the unweighted ones.
    a = [1] * 25 + [2] * 25
    b = [1] * 20 + [2] * 5 + [1] * 10 + [2] * 15
    for weights in (None, "linear", "quadratic"):
        assert L.weighted_kappa(a, b, weights, categories=(1, 2)) == pytest.approx(0.4)


def test_weighted_kappa_closed_forms_and_sklearn():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 200)
    y = np.clip(x + rng.integers(-1, 2, 200), 1, 5)
    # quadratic weights: 2 cov / (var x + var y + (mean x - mean y)^2), population moments
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    closed = 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert L.weighted_kappa(x, y, "quadratic") == pytest.approx(closed)
    # linear weights: 1 - E|x - y| / E|x' - y'| with x', y' independent draws of the marginals
    chance = np.abs(x[:, None] - y[None, :]).mean()
    assert L.weighted_kappa(x, y, "linear") == pytest.approx(1 - np.abs(x - y).mean() / chance)
    assert L.weighted_kappa(x, x, "linear") == pytest.approx(1.0)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    for weights in (None, "linear", "quadratic"):
        ref = sklearn_metrics.cohen_kappa_score(x, y, labels=[1, 2, 3, 4, 5], weights=weights)
        assert L.weighted_kappa(x, y, weights) == pytest.approx(ref)
    with pytest.raises(ValueError, match="categories"):
        L.weighted_kappa([0, 1], [1, 1])
    with pytest.raises(ValueError, match="weights"):
        L.weighted_kappa([1, 2], [1, 2], "cubic")


# --------------------------------------------------------------------------- analysis


def test_simulation_is_labelled_seeded_and_recovers_effects(tmp_path):
    kit = L.make_kit(POOL, METHODS, "r1", n_per_group=25, seed=0)
    sim = L.simulate_ratings(kit.key, 2, EFFECTS, seed=3)
    pd.testing.assert_frame_equal(sim, L.simulate_ratings(kit.key, 2, EFFECTS, seed=3))
    assert sim["simulated"].all() and sim.attrs["simulated"]
    assert sim[list(L.CRITERIA)].isin(L.SCALE).all().all()
    assert len(sim) == 2 * len(kit.key)
    per_anatomy = {
        (a, m): v + (0.5 if a == "prostate" else 0.0)
        for a in ("brain", "prostate")
        for m, v in EFFECTS.items()
    }
    sim2 = L.simulate_ratings(kit.key, 1, per_anatomy, seed=3, image_sd=0, rater_sd=0, noise_sd=0)
    expected = kit.key.apply(
        lambda r: np.clip(np.rint(per_anatomy[r.anatomy, r.method]), 1, 5), axis=1
    )
    assert (sim2["contrast"].to_numpy() == expected.to_numpy()).all()
    with pytest.raises(ValueError, match="no value"):
        L.simulate_ratings(kit.key, 1, {"Res-SRDiff": 4.0}, seed=0)
    path = tmp_path / "sim.csv"
    sim.to_csv(path, index=False)
    back = L.read_ratings(path)
    assert back["simulated"].all() and back.attrs["simulated"]

    res = L.analyse_ratings(back, kit.key, n_resamples=1000, seed=0)
    assert (
        res.simulated and res.label == L.SIMULATED_LABEL == "simulated ratings — not a reader study"
    )
    for table in (res.summary, res.omnibus, res.pairwise, res.agreement):
        assert table.attrs["label"] == L.SIMULATED_LABEL
    assert res.caption("Likert scores").startswith(f"[{L.SIMULATED_LABEL}]")
    overall = res.summary[res.summary.criterion == "overall"].set_index(["anatomy", "method"])
    for anatomy in ("brain", "prostate"):
        means = overall.loc[anatomy, "mean"]
        assert means["Res-SRDiff"] > means["TM-DDPM"] > means["Pix2pix"]
    # the paper's tests: discrete scores fail Shapiro-Wilk -> Kruskal-Wallis + Dunn
    contrast = res.omnibus[res.omnibus.criterion == "contrast"]
    assert (contrast["test"] == "Kruskal-Wallis").all() and contrast["significant"].all()
    pw = res.pairwise[(res.pairwise.criterion == "contrast") & res.pairwise.reject]
    assert {"Res-SRDiff", "Pix2pix"} <= set(pw["group1"]) | set(pw["group2"])
    # the simulated image effect makes raters agree; weighted kappa exceeds unweighted
    ag = res.agreement
    assert set(ag["anatomy"]) == {"brain", "prostate"} and (ag["n"] == 75).all()
    assert (ag["kappa_quadratic"] > ag["kappa"]).all() and (ag["kappa_quadratic"] > 0.3).all()


def test_summary_statistics_and_bootstrap_cis():
    kit = L.make_kit(POOL, METHODS, "r1", n_per_group=25, seed=0)
    sim = L.simulate_ratings(kit.key, ["ann", "bob"], EFFECTS, seed=5)
    long = L.long_ratings(sim, kit.key)
    summary = L.summarise_ratings(long, n_resamples=2000, seed=4)
    assert list(summary["anatomy"].unique()) == ["brain", "prostate"]
    assert list(summary["method"].unique()) == METHODS
    assert list(summary["criterion"].unique()) == [*L.CRITERIA, "overall"]
    row = summary.iloc[0]
    x = long[
        (long.anatomy == row.anatomy)
        & (long.method == row.method)
        & (long.criterion == row.criterion)
    ]["score"].to_numpy(float)
    assert row["n"] == 50 and row["mean"] == pytest.approx(x.mean())
    assert row["sd"] == pytest.approx(x.std(ddof=1))
    # the intervals are scipy.stats.bootstrap's for the same seed ...
    for method, lo, hi in (("percentile", "pct_low", "pct_high"), ("BCa", "bca_low", "bca_high")):
        ref = sps.bootstrap(
            (x,), np.mean, n_resamples=2000, method=method, **L._bootstrap_kwargs(4)
        ).confidence_interval
        assert (row[lo], row[hi]) == pytest.approx((ref.low, ref.high))
    # ... and close to the normal-theory interval mean ± 1.96 sd / sqrt(n) (n = 50)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert row["pct_high"] - row["pct_low"] == pytest.approx(2 * half, rel=0.15)
    assert (summary["pct_low"] <= summary["mean"]).all()
    assert (summary["mean"] <= summary["pct_high"]).all()


def test_real_ratings_carry_no_label_and_unknown_ids_fail(tmp_path):
    kit = L.make_kit({"brain": list(range(10))}, ["a", "b"], "r1", n_per_group=4, seed=2)
    out = tmp_path / "r.csv"
    for rater, shift in (("r1", 0), ("r2", 1)):
        w = L.RatingWriter(out, rater)
        for i, (image_id, method) in enumerate(zip(kit.key.image_id, kit.key.method, strict=True)):
            base = 4 if method == "a" else 2
            w.append(image_id, base, min(5, base + shift), 1 + (i + shift) % 5)
    res = L.analyse_ratings(L.read_ratings(out), kit.key, n_resamples=500)
    assert not res.simulated and res.label is None
    assert res.summary.attrs["label"] is None and res.caption("x") == "x"
    ag = res.agreement.set_index("criterion")
    assert ag.loc["contrast", "kappa"] == pytest.approx(1.0)  # both raters gave identical scores
    bad = L.read_ratings(out).assign(image_id="img-zzzzzz")
    with pytest.raises(ValueError, match="not in the key"):
        L.analyse_ratings(bad, kit.key)
