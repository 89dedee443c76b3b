"""The method protocol and registry: a network plus its training step and its sampler.

Every method is an ``nn.Module`` built from a :class:`~ressrdiff.config.RunConfig`. Its
``forward(batch)`` is its training step and returns a dict of losses (``"loss"`` is optimised), so
that DistributedDataParallel can wrap it unchanged. ``super_resolve`` maps LR slices (already on
the HR grid, in [-1, 1]) to SR slices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..checkpoint import CheckpointError
from ..config import RunConfig
from ..diffusion import EnsembleResult
from ..perceptual import load_lpips, warn_once
from ..tiling import WindowSpec, resolve_window

__all__ = ["Method", "register", "build_method", "METHODS", "per_sample_draws", "diff_keys"]

METHODS: dict[str, type[Method]] = {}


def register(name: str) -> Callable[[type[Method]], type[Method]]:
    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        METHODS[name] = cls
        return cls

    return deco


def build_method(cfg: RunConfig) -> Method:
    """Instantiate the method named by ``cfg.method``."""
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; registered: {sorted(METHODS)}")
    return METHODS[cfg.method](cfg)


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested dicts/values differ (for mismatch messages)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            out += diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        if all(isinstance(x, float | int) for x in (*a, *b)):
            same = all(
                abs(float(x) - float(y)) <= 1e-12 * max(1.0, abs(float(x)))
                for x, y in zip(a, b, strict=True)
            )
            return [] if same else [f"{prefix[:-1]}: {a} != {b}"]
    return [] if a == b else [f"{prefix[:-1]}: {a!r} != {b!r}"]


def per_sample_draws(
    seeds: Tensor, T: int, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """For each sample, a step ``t ~ U{1..T}`` and standard normal noise of ``shape``, drawn from
    a CPU generator seeded by that sample's seed. The draws depend only on the seeds, so they are
    identical on CPU and CUDA, for any batch split across processes, and after a resume."""
    ts, noises = [], []
    for s in seeds.tolist():
        g = torch.Generator().manual_seed(int(s))
        ts.append(int(torch.randint(1, T + 1, (1,), generator=g)))
        noises.append(torch.randn(shape, generator=g))
    t = torch.tensor(ts, dtype=torch.long, device=device)
    return t, torch.stack(noises).to(device=device, dtype=dtype)


class Method(nn.Module):
    """Base class of all super-resolution methods."""

    name: ClassVar[str] = "base"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self._lpips: list[nn.Module | None] = [None]  # a list keeps LPIPS out of state_dict

    # -- the LPIPS network of a perceptual loss term (Res-SRDiff eq 13, SPSR) -------------------
    def attach_lpips(self, supplied: nn.Module | None, *, wanted: bool, dropped: str) -> str:
        """Hold the LPIPS network of a loss term: ``supplied``, else (when ``wanted``) the real
        one from the torch hub cache. When its weights are absent, warn once with ``dropped``
        (what the training does instead), or raise if ``loss.lpips`` is ``required``.
        Returns the description of the network, or why there is none."""
        net, desc = supplied, "LPIPS (supplied module)"
        if net is None and wanted:
            net, desc = load_lpips()
            if net is None:
                if self.cfg.loss.lpips == "required":
                    raise RuntimeError(desc)
                warn_once(f"{desc}. {dropped}")
        self._lpips = [net]
        return desc

    @property
    def lpips_net(self) -> nn.Module | None:
        """The LPIPS network attached by :meth:`attach_lpips` (None when absent)."""
        return self._lpips[0]

    def _apply(self, fn, recurse: bool = True):  # keep LPIPS on the method's device and dtype
        out = super()._apply(fn, recurse)
        if self.lpips_net is not None:
            self.lpips_net._apply(fn, recurse)
        return out

    @property
    def device(self) -> torch.device:
        """The device of the method's weights (CPU for a method without weights)."""
        return next((p.device for p in self.parameters()), torch.device("cpu"))

    def window_spec(
        self,
        x_lr: Tensor,
        window: int | str | None = "model",
        overlap: float | None = None,
        sw_batch_size: int | None = None,
    ) -> WindowSpec | None:
        """How to tile a network call on slices shaped like ``x_lr`` (None: whole slices).

        ``window``: ``"model"`` (the model's own ``infer.window``, see
        :class:`ressrdiff.config.InferConfig`), ``"auto"`` (the training patch ``data.patch``
        when the slice is larger), a size in pixels, or None. ``overlap`` and ``sw_batch_size``
        None take the model's ``infer`` values."""
        infer = self.cfg.infer
        if window == "model":
            window = infer.window
        size = resolve_window(window, self.cfg.data.patch, tuple(x_lr.shape))
        if size is None:
            return None
        return WindowSpec(
            size,
            overlap=infer.overlap if overlap is None else overlap,
            sw_batch_size=infer.sw_batch_size if sw_batch_size is None else sw_batch_size,
        )

    # networks whose weights are trained, saved, and averaged by EMA
    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def signature(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be loaded into this method."""
        return {"method": self.name}

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:  # training step
        raise NotImplementedError

    #: per-group optimiser settings that replace the run's (e.g. GAN betas), by group name
    optimizer_overrides: ClassVar[dict[str, dict[str, Any]]] = {}

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        """The trainable parameters by optimiser group, in the order the groups are stepped.

        The training step returns the loss of group ``k`` as ``out[k]``. One group, ``"loss"``,
        by default; an adversarial method returns e.g. ``{"loss_g": ..., "loss_d": ...}``
        (generator first: its loss graph runs through the discriminator, whose parameters must
        still be the ones it was computed with).
        """
        return {"loss": [p for p in self.parameters() if p.requires_grad]}

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self(batch)

    def super_resolve(
        self, x_lr: Tensor, steps: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        raise NotImplementedError

    def nfe_for(self, steps: int | None = None) -> int:
        """Network evaluations per slice of ``super_resolve(x, steps)``: a method's fixed
        ``nfe`` (0 for interpolation, 1 for one forward pass) or, for an iterative sampler,
        ``steps`` (default: its ``nfe_default`` or ``sample_steps``)."""
        fixed = getattr(self, "nfe", None)
        if fixed is not None:
            return int(fixed)
        if steps is not None:
            return int(steps)
        for attr in ("nfe_default", "sample_steps"):
            if getattr(self, attr, None) is not None:
                return int(getattr(self, attr))
        raise NotImplementedError(f"{self.name}: number of network evaluations unknown")

    @torch.no_grad()
    def super_resolve_ensemble(
        self,
        x_lr: Tensor,
        num_samples: int,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        chunk: int | None = None,
        **options: Any,
    ) -> EnsembleResult:
        """``num_samples`` draws of :meth:`super_resolve` per input, in batches of at most
        ``chunk`` network inputs, with their pixel-wise mean and (unbiased) standard deviation.
        ``options`` (e.g. ``window``) go to :meth:`super_resolve`. Deterministic methods
        override this with an error."""
        if num_samples < 1:
            raise ValueError(f"{self.name}: num_samples must be >= 1, got {num_samples}")
        B = x_lr.shape[0]
        rep = x_lr.repeat_interleave(num_samples, dim=0)
        parts = rep.split(chunk or rep.shape[0])
        outs = [self.super_resolve(p, steps=steps, generator=generator, **options) for p in parts]
        samples = torch.cat(outs).view(B, num_samples, *x_lr.shape[1:])
        std = samples.std(dim=1) if num_samples > 1 else torch.zeros_like(samples[:, 0])
        return EnsembleResult(samples=samples, mean=samples.mean(dim=1), std=std)

    def check_signature(self, ckpt: dict[str, Any], path: str) -> None:
        mine, theirs = self.signature(), ckpt.get("signature", {})
        diffs = diff_keys(theirs, mine)
        if diffs:
            more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
            raise CheckpointError(
                f"{path}: checkpoint does not match the config: "
                + "; ".join(f"checkpoint {d}" for d in diffs[:3])
                + more
            )
