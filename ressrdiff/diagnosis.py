"""Why a model does or does not beat its own input: the checks behind chapter 13 (the diagnosis).

A super-resolution model starts from the re-gridded LR slice. These functions score it against
that input inside the brain mask, on normalised slices (``ressrdiff.data.load_pairs``), so a
reader can tell underfitting (no gain even on training slices) from overfitting (gain on
training, loss on validation slices) and from a domain gap (gain on the training and validation
subjects, none on the test subject). They draw no plots; only :func:`split_slices` reads data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from .data.degrade import degradation_of, degrade
from .data.io import read_volume
from .data.manifest import assign_roles, load_pairs, read_subjects
from .data.masks import otsu_mask, read_mask
from .data.prepare import prepare_dataset
from .data.slices import MaskedPairedSlices
from .diffusion import q_sample, sample
from .methods.base import Method
from .metrics import psnr, ssim, to_unit
from .spectrum import band_power_ratio

__all__ = [
    "spread_rows",
    "split_slices",
    "split_volume",
    "degrade_like",
    "percentile_unit",
    "gain_over_input",
    "one_call_gain",
    "chain_gain",
    "summarise_gain",
    "crop_windows",
    "crop_vs_full",
]


def spread_rows(n_total: int, n: int) -> np.ndarray:
    """``n`` row indices spread evenly over ``0..n_total-1`` (all rows when ``n >= n_total``)."""
    if n_total < 1:
        raise ValueError("spread_rows: no slices to choose from")
    return np.unique(np.linspace(0, n_total - 1, max(1, n)).round().astype(int))


def split_slices(
    method: Method, split: str, n: int, *, min_foreground: float = 0.05
) -> MaskedPairedSlices:
    """``n`` evenly spread slices of ``split`` (train, val or test) of the default data set,
    degraded, re-gridded and normalised as ``method``'s config says (its input and target),
    among the slices whose brain mask covers at least ``min_foreground`` of the slice."""
    d = method.cfg.data
    pairs = load_pairs(
        prepare_dataset("default"),
        split,
        d.preset,
        d.regrid,
        axis=d.axis,
        normalisation=d.resolved_normalisation,
        seed=method.cfg.seed,
        min_foreground=min_foreground,
        degradation=degradation_of(d),
    )
    return pairs.subset(spread_rows(len(pairs), n))


def split_volume(method: Method, role: str) -> tuple[str, sitk.Image, np.ndarray]:
    """The first subject of ``role`` (train, val or test) in the default data set, split as
    ``method``'s seed says: ``(subject, HR volume as float32, brain mask as a numpy bool array
    in (z, y, x) order)``; the mask is the subject's own, else the HR's Otsu foreground."""
    entries = assign_roles(read_subjects(prepare_dataset("default")), 0.1, 0.2, method.cfg.seed)
    e = next(x for x in entries if x.role == role)
    hr = sitk.Cast(read_volume(e.hr_path, ndim=3), sitk.sitkFloat32)
    mask = read_mask(e.mask_path, hr) if e.mask_path else otsu_mask(hr)
    return e.subject, hr, sitk.GetArrayFromImage(mask) > 0


def degrade_like(method: Method, hr: sitk.Image) -> sitk.Image:
    """``hr`` degraded and re-gridded as ``method`` was trained (its data preset, re-gridding and
    degradation)."""
    d = method.cfg.data
    return degrade(hr, d.preset, regrid_method=d.regrid, degradation=degradation_of(d))


def percentile_unit(ref: np.ndarray, mask: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The map of intensities to [-1, 1] by ``ref``'s 0.5 and 99.5 percentiles inside ``mask``
    (clipped), to apply alike to a reference volume and to every output scored against it."""
    lo, hi = np.percentile(ref[mask], [0.5, 99.5])

    def unit(v: np.ndarray) -> np.ndarray:
        return np.clip(2 * (v - lo) / (hi - lo) - 1, -1, 1)

    return unit


def _tensors(pairs: MaskedPairedSlices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hr = torch.from_numpy(np.ascontiguousarray(pairs.hr))[:, None].float()
    lr = torch.from_numpy(np.ascontiguousarray(pairs.lr))[:, None].float()
    mask = torch.from_numpy(np.ascontiguousarray(pairs.mask))[:, None].bool()
    return hr, lr, mask


def gain_over_input(
    method: Method,
    pairs: MaskedPairedSlices,
    *,
    steps: int | None = None,
    seed: int = 0,
    label: str = "",
    split: str = "",
    sr_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Per slice: masked PSNR and SSIM of the input (re-gridded LR) and of ``method``'s output
    against HR, the gains, and the spectral fidelity of each (``hf_input``, ``hf_model``: power
    in the top octave relative to HR's, :func:`ressrdiff.spectrum.band_power_ratio`; 1 = HR).
    One row per slice; slice ``i`` is sampled with the generator seeded ``seed + i``, so a row
    does not depend on which other slices are scored. ``sr_options``: keywords of
    ``method.super_resolve`` (e.g. ``window=None``)."""
    hr, lr, mask = _tensors(pairs)
    dev = method.device
    opts = dict(sr_options or {})
    out = []
    with torch.no_grad():
        for i in range(len(lr)):
            g = torch.Generator().manual_seed(seed + i)
            x = lr[i : i + 1].to(dev)
            out.append(method.super_resolve(x, steps=steps, generator=g, **opts).cpu())
    sr = torch.cat(out).float()
    y = to_unit(hr)
    p_in, p_sr = psnr(to_unit(lr), y, mask=mask), psnr(to_unit(sr), y, mask=mask)
    s_in, s_sr = ssim(to_unit(lr), y, mask=mask), ssim(to_unit(sr), y, mask=mask)
    return pd.DataFrame(
        {
            "model": label,
            "split": split,
            "slice": np.arange(len(lr)),
            "psnr_input": p_in.numpy(),
            "psnr_model": p_sr.numpy(),
            "psnr_gain": (p_sr - p_in).numpy(),
            "ssim_input": s_in.numpy(),
            "ssim_model": s_sr.numpy(),
            "ssim_gain": (s_sr - s_in).numpy(),
            "hf_input": band_power_ratio(to_unit(lr), y)[:, 0].numpy(),
            "hf_model": band_power_ratio(to_unit(sr), y)[:, 0].numpy(),
        }
    )


def summarise_gain(df: pd.DataFrame) -> pd.DataFrame:
    """Mean of :func:`gain_over_input` rows per model and split, with the slice count."""
    cols = ["psnr_input", "psnr_model", "psnr_gain", "ssim_input", "ssim_model", "ssim_gain"]
    g = df.groupby(["model", "split"], sort=False)
    return g[cols].mean().join(g.size().rename("n")).reset_index()


def one_call_gain(
    method: Method,
    pairs: MaskedPairedSlices,
    *,
    steps: Sequence[int] | None = None,
    seed: int = 0,
    around: str = "x_hr",
    window: int | str | None = None,
) -> pd.DataFrame:
    """Res-SRDiff only: for each step ``t`` of the trained schedule, draw ``x_t`` by eq (4) and
    score one network call ``g(x_t, x_LR, t)`` against the input.

    ``around="x_hr"`` draws ``x_t`` around the true ``x_HR``, as training does: this is what
    the network has learnt at each noise level, free of the sampler. At small ``t``, ``x_t`` is
    ``x_HR`` plus little noise, so a network that uses ``x_t`` gains there; one that ignores it
    scores like its input. ``around="prediction"`` draws it around the method's own one-step
    prediction of ``x_HR`` instead (with the same noise), which is what the later steps of the
    sampler feed the network: a network that scores below that prediction at small ``t``
    undoes, in the last steps of a chain, what the first step gained (exposure bias). The
    network runs as ``super_resolve(..., window=window)`` runs it (default None: whole
    slices). Returns mean masked PSNR gain per ``t``, and for ``"prediction"`` the prediction's
    own gain."""
    if not hasattr(method, "schedule") or not hasattr(method, "predictor"):
        raise ValueError(f"one_call_gain: {method.name} is not a residual-shifting diffusion")
    if around not in ("x_hr", "prediction"):
        raise ValueError(f"one_call_gain: around must be x_hr or prediction, got {around!r}")
    sch = method.schedule
    hr, lr, mask = _tensors(pairs)
    dev = method.device
    g = (
        method.inference_predictor(lr, window)
        if hasattr(method, "inference_predictor")
        else method.predictor()
    )
    y = to_unit(hr)
    p_in = psnr(to_unit(lr), y, mask=mask)
    signal, p_signal = hr, None
    if around == "prediction":
        signal = torch.cat(
            [
                method.super_resolve(
                    lr[i : i + 1].to(dev),
                    steps=1,
                    generator=torch.Generator(device=dev).manual_seed(seed),
                    window=window,
                )
                .cpu()
                .float()
                for i in range(len(lr))
            ]
        )
        p_signal = float((psnr(to_unit(signal.clamp(-1, 1)), y, mask=mask) - p_in).mean())
    rows = []
    for t in steps or range(1, sch.T + 1):
        gen = torch.Generator().manual_seed(seed + t)
        tt = torch.full((len(hr),), int(t), dtype=torch.long)
        x_t = q_sample(signal, lr, tt, sch, torch.randn(hr.shape, generator=gen))
        with torch.no_grad():
            x0 = torch.cat(
                [
                    g(x_t[i : i + 1].to(dev), lr[i : i + 1].to(dev), tt[i : i + 1].to(dev)).cpu()
                    for i in range(len(hr))
                ]
            ).float()
        p_call = psnr(to_unit(x0.clamp(-1, 1)), y, mask=mask)
        p_xt = psnr(to_unit(x_t.clamp(-1, 1)), y, mask=mask)
        row = {
            "t": int(t),
            "noise_std": float(sch.gamma * np.sqrt(sch.beta[int(t)])),
            "psnr_gain_call": float((p_call - p_in).mean()),
            "psnr_gain_copy_xt": float((p_xt - p_in).mean()),
        }
        if p_signal is not None:
            row["psnr_gain_prediction"] = p_signal
        rows.append(row)
    return pd.DataFrame(rows)


def chain_gain(
    method: Method,
    pairs: MaskedPairedSlices,
    *,
    steps: int | None = None,
    seed: int = 0,
    window: int | str | None = "model",
) -> pd.DataFrame:
    """Res-SRDiff only: inside one run of Algorithm 2 with ``steps`` steps (the method's default
    when None), the masked PSNR gain over the input of the state ``x_t`` entering each step and
    of the network's prediction of ``x_HR`` at that step.

    The sampler itself (:func:`ressrdiff.diffusion.sample`) runs, on all slices in one batch
    with one generator seeded ``seed``; the predictions are recorded on their way through it.
    The network is called as ``super_resolve(..., window=window)`` calls it (default: on
    windows of the training patch size; None: whole slices). The last row's prediction is the
    sampler's output (eq 9 at t = 1 returns it)."""
    if not hasattr(method, "sampling_schedule") or not hasattr(method, "predictor"):
        raise ValueError(f"chain_gain: {method.name} is not a residual-shifting diffusion")
    sch = method.sampling_schedule(steps)
    hr, lr, mask = _tensors(pairs)
    if hasattr(method, "inference_predictor"):
        g = method.inference_predictor(lr, window)
    else:
        g = method.predictor()
    dev = method.device
    preds: list[torch.Tensor] = []

    def recording(x_t: torch.Tensor, x_lr: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = g(x_t, x_lr, t)
        preds.append(out.detach().float().cpu())
        return out

    gen = torch.Generator(device=dev).manual_seed(seed)
    _, traj = sample(recording, lr.to(dev), sch, generator=gen, return_trajectory=True)
    y = to_unit(hr)
    p_in = psnr(to_unit(lr), y, mask=mask)
    rows = []
    for k, (x_t, x0) in enumerate(zip(traj[:-1], preds, strict=True)):
        t = sch.T - k
        t_model = int(sch.model_timesteps(torch.tensor([t]))[0])
        rows.append(
            {
                "step": k + 1,
                "t (trained schedule)": t_model,
                "noise_std": float(sch.gamma * np.sqrt(sch.beta[t])),
                "psnr_gain_x_t": float(
                    (psnr(to_unit(x_t.cpu().float()), y, mask=mask) - p_in).mean()
                ),
                "psnr_gain_prediction": float((psnr(to_unit(x0), y, mask=mask) - p_in).mean()),
            }
        )
    return pd.DataFrame(rows)


def crop_windows(mask: np.ndarray, size: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` windows of ``size`` x ``size`` pixels per slice of ``mask`` (bool ``(N, H, W)``), as
    training patches are drawn (:class:`ressrdiff.data.slices.MaskedPatchDataset`): each centred
    on a foreground pixel drawn uniformly and shifted to stay inside the slice (uniform when a
    slice has no foreground). Returns int rows ``(slice, y0, x0)``, slice by slice."""
    mask = np.asarray(mask, dtype=bool)
    _, h, w = mask.shape
    if size > min(h, w):
        raise ValueError(f"crop_windows: {size}-pixel windows do not fit {h} x {w} slices")
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(mask.shape[0]):
        fg = np.flatnonzero(mask[k])
        for _ in range(n):
            if fg.size:
                cy, cx = divmod(int(fg[rng.integers(fg.size)]), w)
                y0, x0 = cy - size // 2, cx - size // 2
            else:
                y0, x0 = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
            rows.append((k, min(max(y0, 0), h - size), min(max(x0, 0), w - size)))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _sample(method: Method, x_lr: torch.Tensor, steps: int | None, seed: int) -> torch.Tensor:
    """Algorithm 2 through ``method.super_resolve`` with whole-slice network calls (the input is
    the window), seeded on the method's device."""
    gen = torch.Generator(device=method.device).manual_seed(seed)
    x = x_lr.to(method.device)
    return method.super_resolve(x, steps=steps, generator=gen, window=None).cpu().float()


def crop_vs_full(
    method: Method,
    pairs: MaskedPairedSlices,
    *,
    size: int | None = None,
    crops: int = 4,
    t: int = 1,
    steps: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Res-SRDiff only: does the network do on whole slices what it does on the ``size`` x
    ``size`` patches it was trained on (default: the config's ``data.patch``)?

    ``crops`` windows per slice are drawn by :func:`crop_windows`. For each, the masked PSNR
    gain over the input inside the window of: one call ``g(x_t, x_LR, t)`` on the whole slice,
    cropped afterwards (``gain_call_full``), and on the window alone (``gain_call_crop``), with
    the same ``x_t`` pixels (drawn from ``x_HR`` by eq (4) once per slice, generator ``seed +
    slice``); Algorithm 2 with ``steps`` steps on the whole slice, cropped (``gain_sample_full``),
    and on the window alone (``gain_sample_crop``), both with whole-input network calls
    (``window=None``); and copying ``x_t`` (``gain_copy_xt``). A network whose output at a pixel
    depends only on a neighbourhood smaller than the window gives equal call columns; a gap is
    what the input size changes."""
    if not hasattr(method, "sampling_schedule") or not hasattr(method, "predictor"):
        raise ValueError(f"crop_vs_full: {method.name} is not a residual-shifting diffusion")
    size = int(size or method.cfg.data.patch)
    win = crop_windows(pairs.mask, size, crops, seed)
    hr, lr, mask = _tensors(pairs)
    sch, g, dev = method.schedule, method.predictor(), method.device
    tt = torch.full((1,), int(t), dtype=torch.long)

    def cut(x: torch.Tensor, y0: int, x0: int) -> torch.Tensor:
        return x[..., y0 : y0 + size, x0 : x0 + size]

    def call(x_t: torch.Tensor, x_lr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return g(x_t.to(dev), x_lr.to(dev), tt.to(dev)).cpu().float()

    def gain(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor, p_in: torch.Tensor) -> float:
        return float(psnr(to_unit(x), to_unit(y), mask=m)[0] - p_in)

    rows = []
    for k in range(len(hr)):
        h_k, l_k = hr[k : k + 1], lr[k : k + 1]
        noise = torch.randn(h_k.shape, generator=torch.Generator().manual_seed(seed + k))
        x_t = q_sample(h_k, l_k, tt, sch, noise)
        full_call = call(x_t, l_k)
        full_sample = _sample(method, l_k, steps, seed + k)
        for j in np.flatnonzero(win[:, 0] == k):
            y0, x0 = int(win[j, 1]), int(win[j, 2])
            y, m, lr_c = cut(h_k, y0, x0), cut(mask[k : k + 1], y0, x0), cut(l_k, y0, x0)
            p_in = psnr(to_unit(lr_c), to_unit(y), mask=m)[0]
            crop_sample = _sample(method, lr_c, steps, seed + int(j))
            rows.append(
                {
                    "slice": k,
                    "y0": y0,
                    "x0": x0,
                    "psnr_input": float(p_in),
                    "gain_call_full": gain(cut(full_call, y0, x0), y, m, p_in),
                    "gain_call_crop": gain(call(cut(x_t, y0, x0), lr_c), y, m, p_in),
                    "gain_sample_full": gain(cut(full_sample, y0, x0), y, m, p_in),
                    "gain_sample_crop": gain(crop_sample, y, m, p_in),
                    "gain_copy_xt": gain(cut(x_t, y0, x0), y, m, p_in),
                }
            )
    return pd.DataFrame(rows)
