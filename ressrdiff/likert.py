"""Blinded Likert reader study: rating kit, crash-safe ratings file, widget app and analysis.

The paper's study: two raters scored 25 brain and 25 prostate images per method on a 5-point
scale for contrast, edge sharpness and anatomical detail; it reports mean ± SD with 95% CIs by
percentile and BCa bootstrap (10,000 resamples) and compares methods by Shapiro-Wilk ->
Kruskal-Wallis + Dunn (Bonferroni). Here:

* :func:`make_kit` draws a seeded sample per anatomy and method, hides the method behind random
  image ids and shuffles the order per rater. The *sheet* (what the rater sees) and the *key*
  (image id -> method, anatomy, subject, slice) are separate tables and files.
* :class:`RatingWriter` appends one answer per call to a CSV and fsyncs it, so a crash loses at
  most the answer being written; already-rated ids are skipped on resume.
* :func:`rating_app` is the ipywidgets front end.
* :func:`analyse_ratings` joins ratings with the key and gives the summary, CIs, tests and
  inter-rater agreement (weighted Cohen's kappa).
* :func:`simulate_ratings` makes a *simulated* ratings table for CI and the default book build;
  every analysis of it carries :data:`SIMULATED_LABEL`.
"""

from __future__ import annotations

import csv
import inspect
import io
import itertools
import math
import os
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

from ressrdiff.stats import paper_procedure

__all__ = [
    "CRITERIA",
    "SIMULATED_LABEL",
    "RATING_COLUMNS",
    "KEY_COLUMNS",
    "LikertKit",
    "make_kit",
    "read_sheet",
    "read_key",
    "RatingWriter",
    "read_ratings",
    "pending_ids",
    "RatingApp",
    "widget_snapshot_html",
    "rating_app",
    "simulate_ratings",
    "long_ratings",
    "summarise_ratings",
    "compare_methods",
    "weighted_kappa",
    "rater_agreement",
    "LikertAnalysis",
    "analyse_ratings",
]

CRITERIA: tuple[str, ...] = ("contrast", "edge_sharpness", "anatomical_detail")
SCALE: tuple[int, ...] = (1, 2, 3, 4, 5)
SIMULATED_LABEL = "simulated ratings — not a reader study"
RATING_COLUMNS = ["rater_id", "image_id", *CRITERIA, "timestamp", "simulated"]
KEY_COLUMNS = ["image_id", "method", "anatomy", "subject", "slice"]
SHEET_COLUMNS = ["rater_id", "position", "image_id"]


# --------------------------------------------------------------------------- kit


@dataclass(frozen=True)
class LikertKit:
    """One rater's blinded sheet (``rater_id, position, image_id``: no method, no anatomy) and
    the study key (``image_id, method, anatomy, subject, slice``), which the rater must not see.
    """

    rater_id: str
    sheet: pd.DataFrame
    key: pd.DataFrame
    seed: int

    def write(self, sheet_path: str | Path, key_path: str | Path) -> None:
        """Write the sheet and the key to two different CSV files."""
        sheet_path, key_path = Path(sheet_path), Path(key_path)
        if sheet_path.resolve() == key_path.resolve():
            raise ValueError("the key must be written to a different file than the sheet")
        for path, table in ((sheet_path, self.sheet), (key_path, self.key)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as f:
                table.to_csv(f, index=False)


def _slices_frame(slices: pd.DataFrame | Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Normalise the slice pool to columns ``anatomy, subject, slice`` (subject may be '')."""
    if isinstance(slices, pd.DataFrame):
        if not {"anatomy", "slice"} <= set(slices.columns):
            raise ValueError("slices table needs columns 'anatomy' and 'slice'")
        df = slices.copy()
        if "subject" not in df.columns:
            df["subject"] = ""
    elif isinstance(slices, Mapping):
        df = pd.DataFrame(
            [(a, "", s) for a, ids in slices.items() for s in ids],
            columns=["anatomy", "subject", "slice"],
        )
    else:
        raise ValueError("slices must be a DataFrame or a mapping anatomy -> slice ids")
    df = df[["anatomy", "subject", "slice"]].drop_duplicates().reset_index(drop=True)
    if df.empty:
        raise ValueError("the slice pool is empty")
    return df


def _rater_seed(seed: int, rater_id: str) -> list[int]:
    """Seed sequence for a rater's presentation order (stable across Python processes)."""
    return [seed, zlib.crc32(rater_id.encode("utf-8"))]


def make_kit(
    slices: pd.DataFrame | Mapping[str, Sequence[Any]],
    methods: Sequence[str],
    rater_id: str,
    n_per_group: int = 25,
    seed: int = 0,
    *,
    paired: bool = False,
    sheet_path: str | Path | None = None,
    key_path: str | Path | None = None,
) -> LikertKit:
    """Draw a blinded rating kit.

    ``slices`` is the pool: a table with columns ``anatomy, slice`` (and ``subject``) or a
    mapping ``anatomy -> slice ids``. For each anatomy and method, ``n_per_group`` slices are
    drawn without replacement (``paired=True``: the same slices for every method). Each image
    (anatomy, method, slice) gets a random id ``img-xxxxxx``. The sample and the ids depend only
    on ``seed``, so every rater of a study rates the same images (needed for inter-rater
    agreement); the presentation order is shuffled per rater (seeded by ``seed`` and
    ``rater_id``). With ``sheet_path`` and ``key_path`` the kit is also written
    (:meth:`LikertKit.write`): give the rater only the sheet.
    """
    if (sheet_path is None) != (key_path is None):
        raise ValueError("give both sheet_path and key_path, or neither")
    rater_id = str(rater_id)
    if not rater_id or any(c in rater_id for c in ',\n\r"'):
        raise ValueError(f"rater_id must be a non-empty plain name, got {rater_id!r}")
    methods = [str(m) for m in methods]
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct and non-empty, got {methods}")
    if n_per_group < 1:
        raise ValueError(f"n_per_group must be >= 1, got {n_per_group}")
    pool = _slices_frame(slices)
    rng = np.random.default_rng(seed)
    picks = []
    for anatomy, rows in pool.groupby("anatomy", sort=False):
        if len(rows) < n_per_group:
            raise ValueError(
                f"anatomy {anatomy!r} has {len(rows)} slices, fewer than n_per_group={n_per_group}"
            )
        shared = rng.choice(len(rows), n_per_group, replace=False) if paired else None
        for method in methods:
            idx = shared if paired else rng.choice(len(rows), n_per_group, replace=False)
            picked = rows.iloc[np.sort(idx)].assign(method=method)
            picks.append(picked)
    key = pd.concat(picks, ignore_index=True)
    codes = rng.choice(16**6, size=len(key), replace=False)
    key["image_id"] = [f"img-{c:06x}" for c in codes]
    key = key[KEY_COLUMNS]  # ordered by anatomy, method, slice: the key is not blinded
    order = np.random.default_rng(_rater_seed(seed, rater_id)).permutation(len(key))
    sheet = pd.DataFrame(
        {
            "rater_id": rater_id,
            "position": np.arange(1, len(key) + 1),
            "image_id": key["image_id"].to_numpy()[order],
        }
    )
    kit = LikertKit(rater_id=rater_id, sheet=sheet, key=key, seed=seed)
    if sheet_path is not None and key_path is not None:
        kit.write(sheet_path, key_path)
    return kit


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a rater's sheet written by :meth:`LikertKit.write`."""
    with open(path, encoding="utf-8") as f:
        sheet = pd.read_csv(f, dtype={"rater_id": str, "image_id": str})
    if list(sheet.columns) != SHEET_COLUMNS:
        raise ValueError(f"{path} is not a rating sheet (columns {list(sheet.columns)})")
    return sheet


def read_key(path: str | Path) -> pd.DataFrame:
    """Read a study key written by :meth:`LikertKit.write`."""
    with open(path, encoding="utf-8") as f:
        key = pd.read_csv(f, dtype={"image_id": str, "method": str, "anatomy": str, "subject": str})
    if list(key.columns) != KEY_COLUMNS:
        raise ValueError(f"{path} is not a study key (columns {list(key.columns)})")
    key["subject"] = key["subject"].fillna("")
    return key


# --------------------------------------------------------------------------- ratings file


def _check_score(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in SCALE:
        raise ValueError(f"{name} must be an integer from 1 to 5, got {value!r}")
    return int(value)


class RatingWriter:
    """Append-only ratings CSV (columns :data:`RATING_COLUMNS`) for one rater.

    Every :meth:`append` opens the file, writes one complete row, flushes it and syncs it with
    ``os.fsync``, so a crash loses at most the answer being written. A row torn by a crash is
    ignored on reading (and a line break is added before the next row), so that image is asked
    again.
    """

    def __init__(self, path: str | Path, rater_id: str, *, simulated: bool = False) -> None:
        self.path = Path(path)
        self.rater_id = str(rater_id)
        self.simulated = simulated
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, encoding="utf-8") as f:
                header = f.readline().rstrip("\r\n")
            if header != ",".join(RATING_COLUMNS):
                raise ValueError(f"{self.path} is not a ratings file (header {header!r})")

    def rated_ids(self) -> set[str]:
        """Image ids this rater has already rated in this file."""
        if not self.path.exists():
            return set()
        r = read_ratings(self.path)
        return set(r.loc[r["rater_id"] == self.rater_id, "image_id"])

    def append(
        self, image_id: str, contrast: int, edge_sharpness: int, anatomical_detail: int
    ) -> None:
        """Write one answer (each score an integer 1-5) and fsync; an id rated before by this
        rater raises ValueError."""
        scores = [
            _check_score(n, v)
            for n, v in zip(CRITERIA, (contrast, edge_sharpness, anatomical_detail), strict=True)
        ]
        if image_id in self.rated_ids():
            raise ValueError(f"{image_id} is already rated by {self.rater_id}")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            w.writerow(RATING_COLUMNS)
        elif not self._ends_with_newline():
            buf.write("\n")  # close a row torn by an earlier crash
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        w.writerow([self.rater_id, image_id, *scores, stamp, self.simulated])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"


def read_ratings(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Read one or more ratings CSVs into one table (:data:`RATING_COLUMNS`). Rows torn by a
    crash (a score missing) are dropped and counted in ``attrs['n_incomplete']``; a score
    outside 1-5 raises ValueError. ``attrs['simulated']`` is True if any row is simulated."""
    if isinstance(paths, str | Path):
        paths = [paths]
    frames = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            df = pd.read_csv(f, dtype={"rater_id": str, "image_id": str, "timestamp": str})
        missing = [c for c in RATING_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{p} lacks ratings column(s) {missing}")
        frames.append(df[RATING_COLUMNS])
    df = pd.concat(frames, ignore_index=True)
    torn = df[list(CRITERIA)].isna().any(axis=1) | df["image_id"].isna()
    df = df[~torn].copy()
    for c in CRITERIA:
        bad = ~df[c].isin(SCALE)
        if bad.any():
            raise ValueError(f"{c} has values outside 1-5: {sorted(df.loc[bad, c].unique())}")
        df[c] = df[c].astype(int)
    df["simulated"] = df["simulated"].astype(str).str.lower().isin(["true", "1"])
    df = df.reset_index(drop=True)
    df.attrs["n_incomplete"] = int(torn.sum())
    df.attrs["simulated"] = bool(df["simulated"].any())
    return df


def pending_ids(sheet: pd.DataFrame, ratings_path: str | Path) -> list[str]:
    """Image ids of ``sheet`` (in its order) not yet rated by its rater in ``ratings_path``."""
    raters = sheet["rater_id"].unique()
    if len(raters) != 1:
        raise ValueError(f"a sheet must belong to one rater, got {list(raters)}")
    done = RatingWriter(ratings_path, str(raters[0])).rated_ids()
    ordered = sheet.sort_values("position")["image_id"]
    return [i for i in ordered if i not in done]


# --------------------------------------------------------------------------- widget app


def _png(image: object, vmin: float, vmax: float) -> bytes:
    """PNG bytes for a 2-D array shown in grey over the fixed window [vmin, vmax]."""
    if isinstance(image, bytes):
        return image
    import matplotlib.image as mpimg

    arr = np.asarray(image, dtype=float).squeeze()
    if arr.ndim != 2:
        raise ValueError(f"images_loader must return a 2-D array or PNG bytes, got {arr.shape}")
    buf = io.BytesIO()
    mpimg.imsave(buf, np.clip(arr, vmin, vmax), cmap="gray", vmin=vmin, vmax=vmax, format="png")
    return buf.getvalue()


class RatingApp:
    """The rating widget (build it with :func:`rating_app`). Attributes: ``widget`` (the box to
    display), ``image``, ``controls`` (criterion -> 1-5 ToggleButtons), ``save_button``,
    ``status``, ``progress``, ``current_id`` (None when finished), ``remaining``."""

    def __init__(
        self,
        sheet: pd.DataFrame,
        images_loader: Callable[[str], object],
        out_csv: str | Path,
        vmin: float,
        vmax: float,
    ) -> None:
        import ipywidgets as w

        self.loader, self.vmin, self.vmax = images_loader, vmin, vmax
        self.writer = RatingWriter(out_csv, str(sheet["rater_id"].iloc[0]))
        self.total = len(sheet)
        self.remaining = pending_ids(sheet, out_csv)
        self.current_id: str | None = None
        self.image = w.Image(format="png")
        self.progress = w.HTML()
        self.status = w.HTML()
        self.controls = {
            c: w.ToggleButtons(
                options=list(SCALE),
                value=None,
                description=c.replace("_", " "),
                style={"description_width": "140px", "button_width": "40px"},
            )
            for c in CRITERIA
        }
        self.save_button = w.Button(description="Save / Next", button_style="primary")
        self.save_button.on_click(self._on_save)
        self.widget = w.VBox(
            [self.progress, self.image, *self.controls.values(), self.save_button, self.status]
        )
        self._show_next()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _show_next(self) -> None:
        for c in self.controls.values():
            c.value = None
        done = self.total - len(self.remaining)
        if not self.remaining:
            self.current_id = None
            self.save_button.disabled = True
            self.progress.value = f"<b>All {self.total} images rated.</b> Thank you."
            return
        self.current_id = self.remaining[0]
        self.image.value = _png(self.loader(self.current_id), self.vmin, self.vmax)
        self.progress.value = f"Image {done + 1} of {self.total} (id {self.current_id})"

    def _on_save(self, _button: object = None) -> None:
        values = {c: ctl.value for c, ctl in self.controls.items()}
        if self.current_id is None:
            return
        if any(v is None for v in values.values()):
            self.status.value = "Please score all three criteria before saving."
            return
        self.writer.append(self.current_id, *(values[c] for c in CRITERIA))
        self.status.value = f"Saved {self.current_id}."
        self.remaining.pop(0)
        self._show_next()


def rating_app(
    kit: LikertKit | pd.DataFrame | str | Path,
    images_loader: Callable[[str], object],
    out_csv: str | Path,
    *,
    vmin: float = -1.0,
    vmax: float = 1.0,
) -> RatingApp:
    """Build the ipywidgets rating app for one rater's kit (a :class:`LikertKit`, its sheet, or
    the sheet's CSV path). ``images_loader(image_id)`` returns a 2-D array (shown in grey over
    the fixed window ``[vmin, vmax]``, the same for every method so that contrast is comparable)
    or PNG bytes. Each Save / Next appends the three scores to ``out_csv`` (fsync'd); images
    already rated in ``out_csv`` are skipped, so reopening resumes where the rater stopped.
    Display the returned object (or its ``.widget``) in a notebook."""
    if isinstance(kit, LikertKit):
        sheet = kit.sheet
    elif isinstance(kit, pd.DataFrame):
        sheet = kit
    else:
        sheet = read_sheet(kit)
    if "method" in sheet.columns:
        raise ValueError("the sheet shows the method; pass the blinded sheet, not the key")
    return RatingApp(sheet, images_loader, out_csv, vmin, vmax)


def widget_snapshot_html(widget: Any, image_width: int = 256) -> str:
    """A static HTML rendering of an ipywidgets tree as it stands (its boxes, images, HTML,
    labels, buttons and toggle buttons, with their current values), for a page without a
    kernel, where the live widget cannot draw itself. Written here because ipywidgets' own
    static embedding needs the widget state saved into the notebook, which papermill runs do
    not do; this renders the same widget objects the rater uses, with nothing to click."""
    import base64
    import html as h

    import ipywidgets as w

    def render(x: Any) -> str:
        if isinstance(x, w.Box):
            row = isinstance(x, w.HBox)
            style = f"display:flex;flex-direction:{'row' if row else 'column'};gap:6px"
            return f'<div style="{style}">' + "".join(render(c) for c in x.children) + "</div>"
        if isinstance(x, w.Image):
            data = base64.b64encode(bytes(x.value)).decode("ascii")
            return (
                f'<img alt="the image being rated" width="{image_width}" '
                f'src="data:image/{x.format};base64,{data}"/>'
            )
        if isinstance(x, w.HTML):
            return f"<div>{x.value}</div>"
        if isinstance(x, w.Label):
            return f"<div>{h.escape(str(x.value))}</div>"
        if isinstance(x, w.ToggleButtons):
            buttons = "".join(
                f'<button disabled style="min-width:36px;'
                f'{"font-weight:bold;background:#cde" if label == x.value else ""}">'
                f"{h.escape(str(label))}</button>"
                for label in x.options
            )
            return (
                f'<div style="display:flex;gap:4px;align-items:center">'
                f'<span style="width:140px">{h.escape(x.description)}</span>{buttons}</div>'
            )
        if isinstance(x, w.Button):
            return f"<div><button disabled>{h.escape(x.description)}</button></div>"
        return f"<div>[{h.escape(type(x).__name__)}]</div>"

    return (
        '<div class="ressrdiff-widget-snapshot" style="border:1px solid #ccc;padding:8px;'
        'display:inline-block">' + render(widget) + "</div>"
    )


# --------------------------------------------------------------------------- simulation


def simulate_ratings(
    key: pd.DataFrame,
    raters: int | Sequence[str],
    effects: Mapping[str, float] | Mapping[tuple[str, str], float],
    seed: int = 0,
    *,
    image_sd: float = 0.5,
    rater_sd: float = 0.3,
    noise_sd: float = 0.6,
) -> pd.DataFrame:
    """Simulated ratings of every image in ``key`` by every rater -- NOT a reader study.

    Model: image ``i`` (method ``m``, anatomy ``a``) has latent quality
    ``q_i = effects[m] (or effects[(a, m)]) + u_i``, ``u_i ~ N(0, image_sd²)`` shared by all
    raters (this is what makes raters agree); rater ``r`` has a bias ``b_r ~ N(0, rater_sd²)``;
    each score is ``clip(round(q_i + b_r + e), 1, 5)`` with ``e ~ N(0, noise_sd²)`` drawn per
    rater, image and criterion. ``raters`` is a count (ids ``sim-r1``, ...) or a list of ids.
    Output: :data:`RATING_COLUMNS` with ``simulated = True`` and ``timestamp = 'simulated'``;
    ``attrs['simulated'] = True``. Same seed, same table.
    """
    if not {"image_id", "method", "anatomy"} <= set(key.columns):
        raise ValueError("key needs columns image_id, method, anatomy")
    ids = [f"sim-r{i + 1}" for i in range(raters)] if isinstance(raters, int) else list(raters)
    if not ids:
        raise ValueError("need at least one rater")
    per_anatomy = all(isinstance(k, tuple) for k in effects)
    lookup = list(zip(key["anatomy"], key["method"], strict=True)) if per_anatomy else key["method"]
    missing = sorted({str(k) for k in lookup if k not in effects})
    if missing:
        raise ValueError(f"effects has no value for {missing}")
    mu = np.array([effects[k] for k in lookup], dtype=float)
    rng = np.random.default_rng(seed)
    quality = mu + rng.normal(0.0, image_sd, size=len(key))
    frames = []
    for rater in ids:
        bias = rng.normal(0.0, rater_sd)
        noise = rng.normal(0.0, noise_sd, size=(len(key), len(CRITERIA)))
        scores = np.clip(np.rint(quality[:, None] + bias + noise), 1, 5).astype(int)
        frame = pd.DataFrame(scores, columns=list(CRITERIA))
        frame.insert(0, "image_id", key["image_id"].to_numpy())
        frame.insert(0, "rater_id", rater)
        frame["timestamp"] = "simulated"
        frame["simulated"] = True
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)[RATING_COLUMNS]
    out.attrs["simulated"] = True
    return out


# --------------------------------------------------------------------------- analysis


def _is_simulated(ratings: pd.DataFrame) -> bool:
    col = ratings["simulated"].astype(bool).any() if "simulated" in ratings.columns else False
    return bool(col or ratings.attrs.get("simulated", False))


def long_ratings(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """Join ratings with the key and melt the criteria: columns ``rater_id, image_id, method,
    anatomy, subject, slice, criterion, score, simulated``. ``criterion`` also takes
    ``'overall'``, the per-image-and-rater mean of the three criteria (the paper reports one
    score per method and anatomy without saying how it was formed). Ids not in the key raise."""
    unknown = sorted(set(ratings["image_id"]) - set(key["image_id"]))
    if unknown:
        raise ValueError(f"{len(unknown)} rated image id(s) are not in the key, e.g. {unknown[0]}")
    r = ratings.copy()
    r["overall"] = r[list(CRITERIA)].mean(axis=1)
    if "simulated" not in r.columns:
        r["simulated"] = False
    merged = r.merge(key[KEY_COLUMNS], on="image_id", how="left")
    out = merged.melt(
        id_vars=["rater_id", "image_id", "method", "anatomy", "subject", "slice", "simulated"],
        value_vars=[*CRITERIA, "overall"],
        var_name="criterion",
        value_name="score",
    )
    # analysis order: anatomies and methods as in the key, then the criteria as listed
    for col, cats in (
        ("anatomy", key["anatomy"].unique()),
        ("method", key["method"].unique()),
        ("criterion", [*CRITERIA, "overall"]),
    ):
        out[col] = pd.Categorical(out[col], categories=list(cats), ordered=True)
    out.attrs["simulated"] = _is_simulated(ratings)
    return out


def _bootstrap_kwargs(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    params = inspect.signature(sps.bootstrap).parameters
    return {"rng": rng} if "rng" in params else {"random_state": rng}


def _ci(x: np.ndarray, method: str, n_resamples: int, confidence: float, seed: int):
    if len(x) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate (constant) samples give NaN BCa bounds
        res = sps.bootstrap(
            (x,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method=method,
            vectorized=True,
            **_bootstrap_kwargs(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarise_ratings(
    long: pd.DataFrame,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean ± SD (ddof 1) per anatomy x method x criterion of a :func:`long_ratings` table, with
    ``confidence`` CIs of the mean by percentile and BCa bootstrap (``scipy.stats.bootstrap``,
    ``n_resamples`` resamples, seeded). Scores of all raters are pooled, as the paper does."""
    rows = []
    keys = ["anatomy", "method", "criterion"]
    for (anatomy, method, criterion), g in long.groupby(keys, sort=True, observed=True):
        x = g["score"].to_numpy(dtype=float)
        p_lo, p_hi = _ci(x, "percentile", n_resamples, confidence, seed)
        b_lo, b_hi = _ci(x, "BCa", n_resamples, confidence, seed)
        rows.append(
            {
                "anatomy": anatomy,
                "method": method,
                "criterion": criterion,
                "n": len(x),
                "mean": x.mean(),
                "sd": x.std(ddof=1) if len(x) > 1 else math.nan,
                "pct_low": p_lo,
                "pct_high": p_hi,
                "bca_low": b_lo,
                "bca_high": b_hi,
            }
        )
    return pd.DataFrame(rows)


def compare_methods(long: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's test per anatomy x criterion (:func:`ressrdiff.stats.paper_procedure`:
    Shapiro-Wilk, then Kruskal-Wallis + Dunn with Bonferroni, or ANOVA + Tukey if every group
    looks normal). Returns (omnibus table, pairwise table), both with ``anatomy, criterion``."""
    omni, pairs = [], []
    for (anatomy, criterion), g in long.groupby(["anatomy", "criterion"], observed=True):
        by_method = g.groupby("method", observed=True)
        groups = {str(m): s["score"].to_numpy(float) for m, s in by_method}
        if len(groups) < 2:
            continue
        res = paper_procedure(groups, alpha)
        omni.append(res.summary().assign(anatomy=anatomy, criterion=criterion))
        pairs.append(res.pairwise.assign(anatomy=anatomy, criterion=criterion))
    lead = ["anatomy", "criterion"]

    def tidy(frames: list[pd.DataFrame]) -> pd.DataFrame:
        if not frames:
            return pd.DataFrame(columns=lead)
        df = pd.concat(frames, ignore_index=True)
        return df[lead + [c for c in df.columns if c not in lead]]

    return tidy(omni), tidy(pairs)


def weighted_kappa(
    a: ArrayLike,
    b: ArrayLike,
    weights: Literal["linear", "quadratic"] | None = "quadratic",
    categories: Sequence[int] = SCALE,
) -> float:
    """Cohen's kappa (``weights=None``) or weighted kappa (Cohen 1968) of two raters' scores.

    ``kappa = 1 - sum(w * O) / sum(w * E)`` with ``O`` the observed contingency proportions,
    ``E`` the outer product of the marginals, and disagreement weights ``w_ij = |i - j| / (k-1)``
    (linear) or ``((i - j) / (k-1))²`` (quadratic) over the ordered ``categories`` (the full
    1-5 scale by default, so unused scores still count in the distances). NaN when expected
    disagreement is zero (both raters constant and equal).
    """
    x, y = np.asarray(a).ravel(), np.asarray(b).ravel()
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"need two equally long non-empty score vectors, got {x.size}, {y.size}")
    cats = list(categories)
    pos = {c: i for i, c in enumerate(cats)}
    bad = sorted({v for v in np.concatenate([x, y]).tolist() if v not in pos})
    if bad:
        raise ValueError(f"scores {bad} are not among the categories {cats}")
    k = len(cats)
    obs = np.zeros((k, k))
    np.add.at(obs, ([pos[v] for v in x.tolist()], [pos[v] for v in y.tolist()]), 1.0)
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j) / (k - 1)
    elif weights == "quadratic":
        w = ((i - j) / (k - 1)) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    denom = float((w * exp).sum())
    return math.nan if denom == 0 else 1.0 - float((w * obs).sum()) / denom


def rater_agreement(ratings: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Weighted Cohen's kappa for every pair of raters and criterion on the images both rated:
    columns ``rater_a, rater_b, criterion, n, kappa, kappa_linear, kappa_quadratic`` (plus
    ``by`` columns, e.g. ``('anatomy',)`` on a table joined with the key)."""
    raters = sorted(ratings["rater_id"].unique())
    rows = []
    groups = ratings.groupby(list(by)) if by else [((), ratings)]
    for keys, g in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        for ra, rb in itertools.combinations(raters, 2):
            both = g[g.rater_id == ra].merge(
                g[g.rater_id == rb], on="image_id", suffixes=("_a", "_b")
            )
            if both.empty:
                continue
            for c in CRITERIA:
                xa, xb = both[f"{c}_a"].to_numpy(), both[f"{c}_b"].to_numpy()
                row = dict(zip(by, keys, strict=True))
                row.update(rater_a=ra, rater_b=rb, criterion=c, n=len(both))
                row["kappa"] = weighted_kappa(xa, xb, None)
                row["kappa_linear"] = weighted_kappa(xa, xb, "linear")
                row["kappa_quadratic"] = weighted_kappa(xa, xb, "quadratic")
                rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LikertAnalysis:
    """Everything the Likert chapter shows. ``label`` is :data:`SIMULATED_LABEL` when any input
    rating is simulated (else None); every table carries it in ``attrs['label']``."""

    summary: pd.DataFrame
    omnibus: pd.DataFrame
    pairwise: pd.DataFrame
    agreement: pd.DataFrame
    simulated: bool
    label: str | None

    def caption(self, text: str) -> str:
        """``text`` prefixed with the simulated-data label when there is one."""
        return f"[{self.label}] {text}" if self.label else text


def analyse_ratings(
    ratings: pd.DataFrame,
    key: pd.DataFrame,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> LikertAnalysis:
    """Full analysis of a ratings table (from :func:`read_ratings` or
    :func:`simulate_ratings`) against the study key: :func:`summarise_ratings`,
    :func:`compare_methods` and :func:`rater_agreement` (per anatomy)."""
    long = long_ratings(ratings, key)
    simulated = _is_simulated(ratings)
    label = SIMULATED_LABEL if simulated else None
    summary = summarise_ratings(long, n_resamples=n_resamples, confidence=confidence, seed=seed)
    omnibus, pairwise = compare_methods(long, alpha)
    joined = ratings.merge(key[["image_id", "anatomy"]], on="image_id", how="left")
    agreement = rater_agreement(joined, by=("anatomy",))
    for table in (summary, omnibus, pairwise, agreement):
        table.attrs["label"] = label
        table.attrs["simulated"] = simulated
    return LikertAnalysis(summary, omnibus, pairwise, agreement, simulated, label)
