"""The residual-shifting schedule: eq (14) of the paper, its presets, and respacing.

Time steps are 1-based as in the paper: ``t = 1..T``, and ``beta(0) = 0`` by convention, so that
the last reverse step (t = 1) returns the network's prediction of x_HR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Schedule", "sqrt_beta_eq14", "PRESETS", "preset", "respace_indices"]


def sqrt_beta_eq14(T: int, sqrt_beta_1: float, sqrt_beta_T: float, p: float) -> np.ndarray:
    """Eq (14):
    ``sqrt(beta_t) = sqrt(beta_1) * exp(((t-1)/(T-1))**p * log(sqrt(beta_T)/sqrt(beta_1)))``.

    Returns the T values of sqrt(beta_t) for t = 1..T (float64). The formula meets both end
    points exactly, so it is used for every t, not only t in [2, T-1].
    """
    if T < 1:
        raise ValueError(f"schedule: T must be >= 1, got {T}")
    if not 0.0 < sqrt_beta_1 <= sqrt_beta_T <= 1.0:
        raise ValueError(
            f"schedule: need 0 < sqrt(beta_1)={sqrt_beta_1} <= sqrt(beta_T)={sqrt_beta_T} <= 1"
        )
    if p <= 0:
        raise ValueError(f"schedule: p must be > 0, got {p}")
    if T == 1:
        return np.array([sqrt_beta_T], dtype=np.float64)
    frac = (np.arange(1, T + 1, dtype=np.float64) - 1.0) / (T - 1)
    return sqrt_beta_1 * np.exp(frac**p * math.log(sqrt_beta_T / sqrt_beta_1))


@dataclass(frozen=True)
class Schedule:
    """A shifting schedule ``0 < beta_1 < ... < beta_T <= 1`` with noise scale ``gamma``.

    ``timesteps`` holds, for each of the T entries, the step index of the schedule the network was
    trained on (1-based). For a freshly built schedule it is ``1..T``; a respaced schedule keeps
    the original indices so that the network is conditioned on the step it knows.
    """

    betas: tuple[float, ...]
    gamma: float
    timesteps: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        b = np.asarray(self.betas, dtype=np.float64)
        if b.ndim != 1 or b.size == 0:
            raise ValueError("schedule: betas must be a non-empty 1-D sequence")
        if not (np.all(b > 0) and np.all(b <= 1) and np.all(np.diff(b) > 0)):
            raise ValueError("schedule: betas must be strictly increasing in (0, 1]")
        if self.gamma <= 0:
            raise ValueError(f"schedule: gamma must be > 0, got {self.gamma}")
        if not self.timesteps:
            object.__setattr__(self, "timesteps", tuple(range(1, b.size + 1)))
        if len(self.timesteps) != b.size:
            raise ValueError("schedule: timesteps and betas differ in length")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_eq14(
        cls, T: int, gamma: float, sqrt_beta_1: float, sqrt_beta_T: float, p: float
    ) -> Schedule:
        """Build the schedule of eq (14)."""
        sb = sqrt_beta_eq14(T, sqrt_beta_1, sqrt_beta_T, p)
        return cls(betas=tuple(float(v) for v in sb**2), gamma=float(gamma))

    # -- derived quantities -------------------------------------------------------------------
    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def beta(self) -> np.ndarray:
        """``[beta_0 = 0, beta_1, ..., beta_T]`` (length T+1, float64)."""
        return np.concatenate([[0.0], np.asarray(self.betas, dtype=np.float64)])

    @property
    def alpha(self) -> np.ndarray:
        """``[0, alpha_1, ..., alpha_T]``: alpha_1 = beta_1, alpha_t = beta_t - beta_{t-1}."""
        b = self.beta
        return np.concatenate([[0.0], np.diff(b)])

    @property
    def sqrt_beta(self) -> np.ndarray:
        """sqrt(beta_t) for t = 1..T."""
        return np.sqrt(np.asarray(self.betas, dtype=np.float64))

    @property
    def prior_std(self) -> float:
        """Standard deviation of x_T around x_LR: ``gamma * sqrt(beta_T)``."""
        return self.gamma * math.sqrt(self.betas[-1])

    def table(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Look up ``name`` ('beta' or 'alpha') at 1-based steps ``t`` (shape (B,)), broadcastable
        against ``like`` (shape (B, ...)), in ``like``'s dtype and device."""
        values = getattr(self, name)
        idx = t.detach().to("cpu", torch.long)
        if idx.min() < 0 or idx.max() > self.T:
            raise ValueError(f"schedule: step out of range 0..{self.T}: {idx.tolist()}")
        out = torch.as_tensor(values, dtype=torch.float64)[idx]
        return out.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """Map local 1-based steps to the steps the network was trained with."""
        lut = torch.as_tensor((0, *self.timesteps), dtype=torch.long, device=t.device)
        return lut[t.long()]

    # -- respacing ----------------------------------------------------------------------------
    def subsequence(self, steps: list[int] | tuple[int, ...]) -> Schedule:
        """The schedule restricted to the 1-based ``steps`` (increasing, ending at T).

        The alphas of the sub-sequence are recomputed from its betas
        (``alpha'_k = beta_{s_k} - beta_{s_{k-1}}``). Step T must be kept: dropping it would start
        sampling from a narrower prior than ``gamma**2 * beta_T``, which the network never saw.
        """
        s = [int(v) for v in steps]
        if not s or any(b <= a for a, b in zip(s, s[1:], strict=False)):
            raise ValueError(f"schedule: respaced steps must be strictly increasing, got {s}")
        if s[0] < 1 or s[-1] > self.T:
            raise ValueError(f"schedule: respaced steps must lie in 1..{self.T}, got {s}")
        if s[-1] != self.T:
            raise ValueError(
                f"schedule: respaced steps {s} drop the last step T={self.T}; the prior "
                f"x_T ~ N(x_LR, gamma^2 beta_T) needs it"
            )
        return Schedule(
            betas=tuple(self.betas[i - 1] for i in s),
            gamma=self.gamma,
            timesteps=tuple(self.timesteps[i - 1] for i in s),
        )

    def respace(self, K: int) -> Schedule:
        """A K-step schedule from this T-step one (see :func:`respace_indices`)."""
        return self.subsequence(respace_indices(self.T, K))

    def to_dict(self) -> dict:
        return {"betas": list(self.betas), "gamma": self.gamma, "timesteps": list(self.timesteps)}

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls(betas=tuple(d["betas"]), gamma=d["gamma"], timesteps=tuple(d["timesteps"]))


def respace_indices(T: int, K: int) -> list[int]:
    """K of the steps 1..T, evenly spread, always including step T (and step 1 when K > 1)."""
    if not 1 <= K <= T:
        raise ValueError(f"schedule: cannot sample with K={K} steps from a T={T} step model")
    if K == 1:
        return [T]
    idx = np.round(np.linspace(1, T, K)).astype(int).tolist()
    return idx


# Named presets. Values and their sources:
#   paper        -- Res-SRDiff paper, sec. "noise schedule" and eq (14): T=15, gamma=2,
#                   gamma*sqrt(beta_1)=0.04, beta_T=0.9999, p=0.3, lambda=10, 4 sampling steps.
#   authors-code -- the authors' released configuration (mosaf/Res-SRDiff): T=4, kappa(gamma)=2,
#                   min noise gamma*sqrt(beta_1)=0.2, sqrt(beta_T)=0.99, p=0.3, MSE weight 4.
PRESETS: dict[str, dict] = {
    "paper": {
        "T": 15,
        "gamma": 2.0,
        "sqrt_beta_1": 0.04 / 2.0,
        "sqrt_beta_T": math.sqrt(0.9999),
        "p": 0.3,
        "lambda_mse": 10.0,
        "sample_steps": 4,
        "source": "Res-SRDiff paper, eq (14) and its stated hyper-parameters",
    },
    "authors-code": {
        "T": 4,
        "gamma": 2.0,
        "sqrt_beta_1": 0.2 / 2.0,
        "sqrt_beta_T": 0.99,
        "p": 0.3,
        "lambda_mse": 4.0,
        "sample_steps": 4,
        "source": "the authors' released code (mosaf/Res-SRDiff, script/)",
    },
}


def preset(name: str) -> Schedule:
    """The schedule of a named preset ('paper' or 'authors-code')."""
    if name not in PRESETS:
        raise ValueError(f"schedule: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    c = PRESETS[name]
    return Schedule.from_eq14(c["T"], c["gamma"], c["sqrt_beta_1"], c["sqrt_beta_T"], c["p"])
