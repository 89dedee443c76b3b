"""Local attribution maps (LAM) of the super-resolution methods, with Captum.

LAM (Gu and Dong, "Interpreting Super-Resolution Networks with Local Attribution Maps", CVPR
2021, arXiv:2011.11036) asks which input pixels a network uses to reconstruct a marked output
region. It is integrated gradients (Sundararajan et al., ICML 2017) of a scalar summary of that
region with two choices of its own: a Gaussian-blurred copy of the input as the baseline and a
*progressive blurring* path ``gamma(a) = x * G(sigma (1 - a))`` from the baseline to the input.

* The summary ``D`` of the window (LAM's "D"): the sum of the output's gradient magnitude
  ``sqrt((y[i,j] - y[i+1,j])^2 + (y[i,j] - y[i,j+1])^2)`` inside the window (forward
  differences as in the LAM code, here taken between pixels of the window only), or, with
  ``summary="sum"``, the plain sum of the window (linear, for closed-form checks).
* The integral is Captum's :class:`captum.attr.IntegratedGradients`, which only integrates along
  straight lines. The blur path is a curve, so :func:`lam_function` splits it into ``segments``
  straight pieces between points of the path (``sigma_k = sigma (1 - k / segments)``) and lets
  Captum integrate each piece (all pieces of a batch in one call, one piece per example); the
  pieces' attributions add up, and so do their completeness gaps. LAM's own code is this with
  one gradient per piece taken at its end (``quadrature="riemann_right", n_steps=1``).
  ``path="line"`` is one straight line from the blurred baseline to the input (plain IG with
  LAM's baseline).
* Quadrature: Gauss-Legendre by default, exact along a piece for any network that is a
  polynomial of degree ``2 n_steps - 1`` along it. Captum 0.9's ``riemann_trapezoid`` weights
  sum to ``(n - 1) / n`` instead of 1 (it is not the trapezoid rule), so it misses completeness
  even for a linear network (``tests/test_attribution.py`` shows it); it stays selectable.
* The map is ``|sum over channels of the attribution|`` (LAM's ``grad_abs_norm`` without its
  division by the maximum, to which the indices are blind); :func:`gini_index` and
  :func:`diffusion_index` are LAM's concentration measures of it.

Res-SRDiff is attributed with respect to x_LR, which enters both the prior ``x_T = x_LR +
gamma sqrt(beta_T) eps`` and every network call: ``mode="sampler"`` differentiates through the
whole K-step Algorithm 2 with its noise drawn once and held fixed (:func:`sample_with_noise`),
``mode="top-step"`` through the one network call at t = T. One-pass methods (pix2pix, SPSR,
CycleGAN) are differentiated through their generator. Only the parts described here are
implemented; an interpolator has no network, and TM-DDPM and I2SB are not covered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients
from torch import Tensor

from .diffusion import Predictor, p_mean_variance, prior_sample, randn
from .schedule import Schedule

__all__ = [
    "LAMResult",
    "SUMMARIES",
    "PATHS",
    "MODES",
    "lam",
    "lam_function",
    "method_function",
    "draw_noise",
    "sample_with_noise",
    "window_objective",
    "gaussian_blur",
    "blur_path",
    "gini_index",
    "diffusion_index",
    "mass_radius",
    "context_crop",
    "textured_windows",
    "describe_model",
    "test_slices",
    "pick_windows",
    "lam_over_windows",
]

#: window summaries: LAM's gradient magnitude, or the plain (linear) sum
SUMMARIES = ("gradient", "sum")
#: integration paths: LAM's progressive blur (as straight pieces), or one straight line
PATHS = ("blur", "line")
#: what a Res-SRDiff output is: the K-step sampler, or the one network call at t = T
MODES = ("sampler", "top-step")

_GRAD_EPS = 1e-6  # keeps sqrt differentiable where the output is flat


@dataclass(frozen=True)
class LAMResult:
    """A local attribution map and its indices.

    ``attribution``: ``(H, W)`` absolute attribution (LAM's map); ``signed``: the same before the
    absolute value; ``gini``/``diffusion_index``: :func:`gini_index` and :func:`diffusion_index`
    of ``attribution``; ``objective``/``baseline_objective``: ``D`` at the input and at the
    blurred baseline; ``delta``: Captum's completeness gap summed over the path's pieces,
    ``sum(signed) - (objective - baseline_objective)``; ``window``: ``(row, col, size)``;
    ``output``: the attributed map's output at the input (first channel, ``(H, W)``)."""

    attribution: np.ndarray
    signed: np.ndarray
    gini: float
    diffusion_index: float
    objective: float
    baseline_objective: float
    delta: float
    window: tuple[int, int, int]
    output: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)


# -- concentration indices ------------------------------------------------------------------------
def gini_index(values: np.ndarray | Tensor) -> float:
    """Gini index of ``|values|`` by the formula of the LAM authors' code (``gini``, whose DI
    is ``(1 - G) * 100``):
    ``G = sum_i (2 i - n - 1) g_(i) / (n sum_i g_i)`` over the values sorted ascending,
    i.e. ``sum_ij |g_i - g_j| / (2 n^2 mean(g))``. 0 for a uniform map, ``(n - 1) / n`` when one
    pixel holds everything. NaN for an all-zero map (no attribution to spread). The LAM code adds
    1e-7 to every value of its max-normalised map first; this does not."""
    g = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    if g.size == 0:
        raise ValueError("gini_index: empty attribution map")
    total = float(g.sum())
    if not math.isfinite(total):
        raise ValueError("gini_index: attribution map has non-finite values")
    if total == 0.0:
        return math.nan
    n = g.size
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2 * i - n - 1) * g) / (n * total))


def diffusion_index(values: np.ndarray | Tensor) -> float:
    """LAM's diffusion index ``DI = (1 - G) * 100`` (G: :func:`gini_index`): higher when more
    input pixels share the attribution."""
    return (1.0 - gini_index(values)) * 100.0


def mass_radius(attribution: np.ndarray, window: tuple[int, int, int], frac: float = 0.5) -> float:
    """The smallest distance (pixels) from the window's centre within which ``frac`` of the
    absolute attribution lies: a reading of how far a network looks (not a LAM quantity)."""
    if not 0 < frac <= 1:
        raise ValueError(f"mass_radius: frac must be in (0, 1], got {frac}")
    a = np.abs(np.asarray(attribution, dtype=np.float64))
    row, col, size = window
    yy, xx = np.indices(a.shape)
    c = (size - 1) / 2
    d = np.hypot(yy - (row + c), xx - (col + c)).ravel()
    order = np.argsort(d, kind="stable")
    mass = np.cumsum(a.ravel()[order])
    if mass[-1] <= 0:
        return math.nan
    return float(d[order][np.searchsorted(mass, frac * mass[-1])])


# -- the window summary and the blur path ---------------------------------------------------------
def window_objective(y: Tensor, row: int, col: int, size: int, summary: str = "gradient") -> Tensor:
    """LAM's ``D`` of each output ``y`` ``(N, C, H, W)`` in the window: the sum of the gradient
    magnitude of its pixels (forward differences between window pixels, all channels), or the
    plain sum (``summary="sum"``). Returns ``(N,)``."""
    crop = y[..., row : row + size, col : col + size]
    dims = tuple(range(1, crop.ndim))
    if summary == "sum":
        return crop.sum(dim=dims)
    if summary != "gradient":
        raise ValueError(f"summary must be one of {SUMMARIES}, got {summary!r}")
    dy = crop[..., 1:, :-1] - crop[..., :-1, :-1]
    dx = crop[..., :-1, 1:] - crop[..., :-1, :-1]
    return torch.sqrt(dy * dy + dx * dx + _GRAD_EPS**2).sum(dim=dims)


def _radius(sigma: float) -> int:
    return max(1, math.ceil(3.0 * sigma))


def gaussian_blur(x: Tensor, sigma: float, radius: int | None = None) -> Tensor:
    """``x`` ``(N, C, H, W)`` filtered with a normalised isotropic Gaussian of ``sigma`` pixels on
    a ``2 radius + 1`` grid (default ``ceil(3 sigma)``), mirrored borders (OpenCV's default
    ``filter2D`` border, which the LAM code uses). ``sigma <= 0`` returns ``x``."""
    if sigma <= 0:
        return x
    r = _radius(sigma) if radius is None else int(radius)
    if r >= min(x.shape[-2:]):
        raise ValueError(
            f"gaussian_blur: a {2 * r + 1}-pixel kernel does not fit a "
            f"{x.shape[-2]}x{x.shape[-1]} input; use a smaller sigma or a larger input"
        )
    ax = torch.arange(-r, r + 1, dtype=torch.float64)
    k1 = torch.exp(-(ax**2) / (2.0 * sigma**2))
    k2 = torch.outer(k1, k1)
    k2 = (k2 / k2.sum()).to(dtype=x.dtype, device=x.device)
    c = x.shape[1]
    weight = k2.expand(c, 1, 2 * r + 1, 2 * r + 1)
    return F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), weight, groups=c)


def blur_path(x: Tensor, sigma: float, segments: int) -> Tensor:
    """``segments + 1`` points of LAM's progressive blur path from ``x * G(sigma)`` to ``x``
    (``sigma_k = sigma (1 - k / segments)``, one kernel size for all), stacked along dim 0 of a
    ``(1, C, H, W)`` input; the last point is ``x`` itself."""
    if segments < 1:
        raise ValueError(f"blur_path: segments must be >= 1, got {segments}")
    r = _radius(sigma)
    sigmas = np.linspace(sigma, 0.0, segments + 1)
    return torch.cat([gaussian_blur(x, float(s), r) for s in sigmas[:-1]] + [x])


# -- Res-SRDiff's sampler with fixed noise --------------------------------------------------------
def draw_noise(
    x_lr: Tensor, schedule: Schedule, generator: torch.Generator | None, stochasticity: float = 1.0
) -> list[Tensor]:
    """The noise :func:`ressrdiff.diffusion.sample` draws from ``generator``, in its order: the
    prior's, then one per step t = T..2 (none when ``stochasticity`` is 0)."""
    noise = [randn(x_lr, generator)]
    if stochasticity > 0:
        noise += [randn(x_lr, generator) for _ in range(schedule.T - 1)]
    return noise


def sample_with_noise(
    model: Predictor,
    x_lr: Tensor,
    schedule: Schedule,
    noise: Sequence[Tensor],
    stochasticity: float = 1.0,
) -> Tensor:
    """Algorithm 2 exactly as :func:`ressrdiff.diffusion.sample` runs it, with its noise given
    (:func:`draw_noise`) instead of drawn, and differentiable.

    ``sample`` is decorated with ``torch.no_grad`` and draws its noise as it goes, so it can
    neither be differentiated nor evaluated at the many inputs of an integrated-gradients path
    with the same noise. Here the noise is a fixed list; each tensor may have batch size 1 and
    is then shared by every input of the batch, so the attribution is that of one fixed
    sampler, a deterministic function of x_LR. Same operations in the same order as
    ``sample``, so with the same draws the result is identical."""
    expected = 1 + (schedule.T - 1 if stochasticity > 0 else 0)
    if len(noise) != expected:
        raise ValueError(f"sample_with_noise: need {expected} noise tensors, got {len(noise)}")
    x = prior_sample(x_lr, schedule, noise[0])
    k = 1
    for step in range(schedule.T, 0, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        mean, var, _ = p_mean_variance(model, x, x_lr, t, schedule, stochasticity)
        if step > 1 and stochasticity > 0:
            x = mean + var.sqrt() * noise[k]
            k += 1
        else:
            x = mean
    return x


def _name(method: Any) -> str:
    return str(getattr(method, "name", type(method).__name__))


def method_function(
    method: Any,
    x_lr: Tensor,
    *,
    mode: str = "sampler",
    steps: int | None = None,
    seed: int = 0,
    stochasticity: float | None = None,
    tile: int | str | None = None,
) -> Callable[[Tensor], Tensor]:
    """The differentiable map ``x_LR -> SR`` that LAM attributes for ``method``.

    Res-SRDiff (anything with ``predictor`` and ``sampling_schedule``): ``mode="sampler"`` is
    Algorithm 2 with ``steps`` steps (default: the model's) and its noise drawn once from a
    generator seeded with ``seed`` on the method's device (:func:`sample_with_noise`);
    ``mode="top-step"`` is the network's prediction of x_HR at t = T from
    ``x_T = x_LR + gamma sqrt(beta_T) eps`` with that same ``eps``. ``stochasticity`` None takes
    the model's; ``tile`` goes to ``inference_predictor`` as its ``window`` (None: whole input).
    One-pass methods (a ``generate`` network with parameters): the generator. Anything else is a
    one-line ValueError naming the method."""
    name = _name(method)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if callable(getattr(method, "predictor", None)) and hasattr(method, "sampling_schedule"):
        schedule = method.sampling_schedule(steps)
        s = method.cfg.infer.stochasticity if stochasticity is None else float(stochasticity)
        g = method.inference_predictor(x_lr, window=tile)
        device = x_lr.device
        gen = torch.Generator(device=device).manual_seed(int(seed))
        noise = draw_noise(x_lr, schedule, gen, s)
        if mode == "sampler":
            return lambda x: sample_with_noise(g, x, schedule, noise, s)

        def top(x: Tensor) -> Tensor:
            x_T = prior_sample(x, schedule, noise[0])
            t = torch.full((x.shape[0],), schedule.T, dtype=torch.long, device=x.device)
            return p_mean_variance(g, x_T, x, t, schedule, s)[2]

        return top
    if callable(getattr(method, "generate", None)):
        params = getattr(method, "parameters", None)
        if params is None or not any(True for _ in params()):
            raise ValueError(
                f"method {name!r} has no network to attribute (no parameters, an interpolator); "
                "LAM needs a differentiable network"
            )
        return method.generate
    raise ValueError(
        f"LAM is implemented for res-srdiff and one-pass networks (pix2pix, spsr, cyclegan); "
        f"method {name!r} is not supported"
    )


# -- LAM -------------------------------------------------------------------------------------------
def _check(x: Tensor, row: int, col: int, size: int, summary: str, path: str) -> None:
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"LAM needs one slice shaped (1, C, H, W), got {tuple(x.shape)}")
    if size < 1:
        raise ValueError(f"empty window: size must be >= 1, got {size}")
    H, W = int(x.shape[-2]), int(x.shape[-1])
    if row < 0 or col < 0 or row + size > H or col + size > W:
        raise ValueError(
            f"window rows {row}..{row + size - 1}, cols {col}..{col + size - 1} lies outside "
            f"the {H}x{W} slice"
        )
    if summary not in SUMMARIES:
        raise ValueError(f"summary must be one of {SUMMARIES}, got {summary!r}")
    if summary == "gradient" and size < 2:
        raise ValueError("a 1-pixel window has no gradient magnitude; use size >= 2 or 'sum'")
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")


def lam_function(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    row: int,
    col: int,
    size: int,
    *,
    summary: str = "gradient",
    path: str = "blur",
    sigma: float = 1.2,
    segments: int = 16,
    n_steps: int = 2,
    quadrature: str = "gausslegendre",
    batch: int = 16,
) -> LAMResult:
    """LAM of a differentiable map ``f`` ``(N, C, H, W) -> (N, C', H, W)`` at input ``x``
    ``(1, C, H, W)`` for the ``size`` x ``size`` output window at ``(row, col)``.

    ``summary``: :data:`SUMMARIES`. ``path``: ``"blur"`` (LAM's, ``segments`` straight pieces)
    or ``"line"`` (one straight line from the blurred input). ``sigma``: the baseline's blur in
    input pixels (LAM uses 1.2 on its LR images; for inputs already on the HR grid scale it by
    the up-sampling factor). ``n_steps`` and ``quadrature``: Captum's ``n_steps`` and ``method``
    on each piece. ``batch``: at most this many path points per call of ``f``."""
    _check(x, row, col, size, summary, path)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 (the baseline is the blurred input), got {sigma}")
    if n_steps < 1 or batch < 1:
        raise ValueError(f"n_steps and batch must be >= 1, got {n_steps} and {batch}")
    x = x.detach()
    pieces = segments if path == "blur" else 1
    points = blur_path(x, sigma, pieces)

    def objective(z: Tensor) -> Tensor:
        return window_objective(f(z), row, col, size, summary)

    ig = IntegratedGradients(objective)
    total = torch.zeros_like(x)
    delta = 0.0
    per_call = max(1, batch // n_steps)
    for i in range(0, pieces, per_call):
        j = min(pieces, i + per_call)
        attr, gap = ig.attribute(
            points[i + 1 : j + 1],
            baselines=points[i:j],
            n_steps=n_steps,
            method=quadrature,
            internal_batch_size=batch if n_steps > batch else None,
            return_convergence_delta=True,
        )
        total += attr.detach().sum(dim=0, keepdim=True)
        delta += float(gap.detach().sum())
    with torch.no_grad():
        y = f(x)
        d_in = float(window_objective(y, row, col, size, summary)[0])
        d_base = float(objective(points[:1])[0])
    signed = total[0].sum(dim=0).double().cpu().numpy()
    amap = np.abs(signed)
    g = gini_index(amap)
    settings = {
        "summary": summary,
        "path": path,
        "sigma": float(sigma),
        "segments": int(pieces),
        "n_steps": int(n_steps),
        "quadrature": quadrature,
    }
    return LAMResult(
        attribution=amap,
        signed=signed,
        gini=g,
        diffusion_index=(1.0 - g) * 100.0,
        objective=d_in,
        baseline_objective=d_base,
        delta=delta,
        window=(int(row), int(col), int(size)),
        output=y[0, 0].double().cpu().numpy(),
        settings=settings,
    )


def lam(
    method: Any,
    x_lr: Tensor,
    row: int,
    col: int,
    size: int,
    *,
    mode: str = "sampler",
    steps: int | None = None,
    seed: int = 0,
    stochasticity: float | None = None,
    tile: int | str | None = None,
    **options: Any,
) -> LAMResult:
    """LAM of a registry ``method`` on one slice ``x_lr`` ``(1, 1, H, W)`` in [-1, 1] for the
    output window ``(row, col, size)``: :func:`method_function` (``mode``, ``steps``, ``seed``,
    ``stochasticity``, ``tile``) attributed by :func:`lam_function` (``options``). Bad windows,
    slices or methods raise a one-line ValueError."""
    _check(x_lr, row, col, size, options.get("summary", "gradient"), options.get("path", "blur"))
    dev = getattr(method, "device", x_lr.device)
    x = x_lr.detach().to(device=dev, dtype=torch.float32)
    f = method_function(
        method, x, mode=mode, steps=steps, seed=seed, stochasticity=stochasticity, tile=tile
    )
    res = lam_function(f, x, row, col, size, **options)
    res.settings.update({"method": _name(method), "mode": mode, "steps": steps, "seed": int(seed)})
    return res


# -- choosing windows, cropping, labelling --------------------------------------------------------
def context_crop(x: Tensor, row: int, col: int, size: int, context: int) -> tuple[Tensor, int, int]:
    """The ``context`` x ``context`` part of ``x`` ``(..., H, W)`` centred on the window (shifted
    to stay inside the slice) and the window's ``(row, col)`` in it. LAM's cost grows with the
    input, so the chapter attributes within such a crop."""
    H, W = int(x.shape[-2]), int(x.shape[-1])
    if size < 1 or row < 0 or col < 0 or row + size > H or col + size > W:
        raise ValueError(f"window ({row}, {col}, {size}) lies outside the {H}x{W} slice")
    if not size <= context <= min(H, W):
        raise ValueError(f"context must lie in {size}..{min(H, W)} pixels, got {context}")
    r0 = min(max(row + size // 2 - context // 2, 0), H - context)
    c0 = min(max(col + size // 2 - context // 2, 0), W - context)
    return x[..., r0 : r0 + context, c0 : c0 + context], row - r0, col - c0


def textured_windows(
    hr: np.ndarray, mask: np.ndarray, size: int, n: int, *, margin: int = 0
) -> list[tuple[int, int]]:
    """``n`` non-overlapping ``size`` x ``size`` windows ``(row, col)`` of a slice with the most
    detail: ranked by LAM's ``D`` of the reference ``hr`` (the gradient magnitude summed over the
    window; LAM's principle "interpret hard, not simple" patches), among windows on a grid of
    step ``size // 2`` that lie inside ``mask`` shrunk by ``margin`` pixels (away from the
    mask's edge, e.g. the scalp of a head mask). Fewer when fewer fit."""
    if size < 2 or n < 1 or margin < 0:
        raise ValueError(
            f"textured_windows: need size >= 2, n >= 1, margin >= 0; got {size}, {n}, {margin}"
        )
    hr = np.asarray(hr, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if hr.ndim != 2 or hr.shape != mask.shape:
        raise ValueError(f"textured_windows: hr {hr.shape} and mask {mask.shape} must be (H, W)")
    if margin:
        from scipy.ndimage import binary_erosion

        mask = binary_erosion(mask, iterations=int(margin), border_value=0)
    y = torch.from_numpy(hr)[None, None]
    step = max(1, size // 2)
    cands = []
    for r in range(0, hr.shape[0] - size + 1, step):
        for c in range(0, hr.shape[1] - size + 1, step):
            if mask[r : r + size, c : c + size].all():
                cands.append((float(window_objective(y, r, c, size)[0]), r, c))
    chosen: list[tuple[int, int]] = []
    for _, r, c in sorted(cands, key=lambda v: (-v[0], v[1], v[2])):
        if all(abs(r - r2) >= size or abs(c - c2) >= size for r2, c2 in chosen):
            chosen.append((r, c))
            if len(chosen) == n:
                break
    return chosen


def describe_model(method: Any, path: str | Path | None = None) -> str:
    """How a model was made, for labels: from ``manifest.json`` beside a shipped file (steps and
    machine), else from the checkpoint (steps), else "untrained"."""
    if path is not None:
        path = Path(path)
        manifest = path.parent / "manifest.json"
        if manifest.is_file():
            entries = json.loads(manifest.read_text(encoding="utf-8")).get("models", [])
            for e in entries:
                if e.get("file") == path.name:
                    machine = str(e.get("train_machine", ""))
                    gpu = "GPU" in machine and "no GPU" not in machine
                    where = "on a GPU" if gpu else "on CPU"
                    return f"trained for {int(e.get('steps', 0))} steps {where}"
    step = int(getattr(method, "trained_step", 0) or 0)
    return f"trained for {step} steps" if step > 0 else "untrained (built from its config)"


# -- the chapter's loop: test slices, windows, one table per model --------------------------------
def test_slices(
    methods: Mapping[str, Any], n: int, *, split: str = "test", min_foreground: float = 0.05
) -> dict[str, Any]:
    """For each labelled method, its own input and target slices of ``split`` of the default
    data set (:func:`ressrdiff.diagnosis.split_slices`: its degradation, re-gridding and
    normalisation), restricted to the same ``n`` slices for every method: the centres of ``n``
    equal parts of the slices whose mask (in the first method's data) covers at least 95 % of
    the largest mask's area (the widest part of the head). Data sets are loaded once per
    distinct data configuration."""
    from .data.degrade import degradation_of
    from .diagnosis import split_slices

    if n < 1 or not methods:
        raise ValueError(f"test_slices: need n >= 1 and at least one method, got {n}")
    cache: dict[str, Any] = {}
    loaded: dict[str, Any] = {}
    for label, m in methods.items():
        d = m.cfg.data
        key = repr((d.preset, d.regrid, d.axis, d.resolved_normalisation, degradation_of(d)))
        key += f"/seed {m.cfg.seed}"
        if key not in cache:
            # n beyond the slice count keeps every slice (spread_rows' linspace stays small)
            cache[key] = split_slices(m, split, 4096, min_foreground=min_foreground)
        loaded[label] = cache[key]
    first = next(iter(loaded.values()))
    area = first.mask.reshape(len(first), -1).sum(axis=1)
    central = np.flatnonzero(area >= 0.95 * area.max())
    top = np.unique(central[((np.arange(n) + 0.5) / n * len(central)).astype(int)])
    keys = [(str(first.subject[k]), int(first.index[k])) for k in top]
    out = {}
    for label, pairs in loaded.items():
        pairs_keys = zip(pairs.subject, pairs.index, strict=True)
        where = {(str(s), int(i)): k for k, (s, i) in enumerate(pairs_keys)}
        missing = [k for k in keys if k not in where]
        if missing:
            raise ValueError(f"test_slices: {label!r} lacks slices {missing} of {split!r}")
        out[label] = pairs.subset(np.array([where[k] for k in keys]))
    return out


def pick_windows(
    hr: np.ndarray, mask: np.ndarray, size: int, per_slice: int, margin: int | None = None
) -> list[tuple[int, int, int]]:
    """``(slice, row, col)`` of ``per_slice`` :func:`textured_windows` on each slice of ``hr``
    and ``mask`` ``(N, H, W)``, at least ``margin`` (default ``2 size``) pixels inside the
    mask."""
    m = 2 * size if margin is None else margin
    return [
        (k, r, c)
        for k in range(len(hr))
        for r, c in textured_windows(hr[k], mask[k], size, per_slice, margin=m)
    ]


def lam_over_windows(
    method: Any,
    lr: np.ndarray,
    windows: Sequence[tuple[int, int, int]],
    size: int,
    context: int,
    **options: Any,
) -> tuple[Any, list[LAMResult]]:
    """:func:`lam` of ``method`` for each ``(slice, row, col)`` window of the slices ``lr``
    ``(N, H, W)``, each within its :func:`context_crop`. Returns a table (one row per window:
    Gini, DI, the 50 % mass radius, the relative completeness gap, seconds) and the results."""
    import time

    import pandas as pd

    rows, results = [], []
    for k, r, c in windows:
        x = torch.from_numpy(np.ascontiguousarray(lr[k], dtype=np.float32))[None, None]
        crop, rr, cc = context_crop(x, r, c, size, context)
        t0 = time.perf_counter()
        res = lam(method, crop, rr, cc, size, **options)
        secs = time.perf_counter() - t0
        change = res.objective - res.baseline_objective
        rows.append(
            {
                "slice": k,
                "row": r,
                "col": c,
                "gini": res.gini,
                "DI": res.diffusion_index,
                "radius50": mass_radius(res.attribution, res.window),
                "relative_delta": abs(res.delta) / abs(change) if change else math.nan,
                "seconds": secs,
            }
        )
        results.append(res)
    return pd.DataFrame(rows), results
