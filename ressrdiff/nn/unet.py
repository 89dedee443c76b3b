"""Conditional U-Net ``g_phi(x_t, x_lr, t) -> x_HR`` with Swin blocks at the coarse levels.

The network knows nothing of a diffusion schedule: ``t`` is just an index (or float) in
``[0, max_timestep]`` turned into a sinusoidal embedding. Inputs of any H x W are padded inside
``forward`` to a multiple of ``2 ** (levels - 1)`` and the output is cropped back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..fieldtypes import check_field_types
from .swin import SwinPair, pad_to_multiple, swin_num_heads

__all__ = [
    "UNetConfig",
    "UNet",
    "build_unet",
    "count_parameters",
    "timestep_embedding",
    "TINY_CPU",
    "PAPER_GPU",
]

_TUPLE_FIELDS = ("channel_mult", "swin_levels")


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of :class:`UNet` (level ``i`` has ``base_channels * channel_mult[i]``)."""

    in_channels: int = 2  # x_t and x_lr concatenated
    out_channels: int = 1
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 2
    swin_levels: tuple[int, ...] = (2, 3)  # 0-based levels with a SwinPair after each res block
    swin_mid: bool = True  # SwinPair between the two middle res blocks
    use_swin: bool = True  # False removes every Swin block ("w/o Swin" ablation)
    swin_head_dim: int = 32
    window_size: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_timestep: int = 1000  # t is rescaled by 1000 / max_timestep before the embedding
    # True: the output is x_lr + head(h), the head's last conv starting at zero, so an untrained
    # network returns x_lr (the re-gridded LR) and learns only the HR detail. It still predicts
    # x_HR (eq 11); see the book's training chapter for why a short CPU budget needs it.
    residual_output: bool = False

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.in_channels < 2 or self.out_channels < 1 or self.base_channels < 1:
            raise ValueError(f"UNetConfig: bad channel counts in {self}")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(
                f"UNetConfig: channel_mult must be non-empty and >= 1, got {self.channel_mult}"
            )
        if self.num_res_blocks < 1:
            raise ValueError(f"UNetConfig: num_res_blocks must be >= 1, got {self.num_res_blocks}")
        bad = [lv for lv in self.swin_levels if not 0 <= lv < self.num_levels]
        if bad:
            raise ValueError(f"UNetConfig: swin_levels {bad} outside 0..{self.num_levels - 1}")
        if self.window_size < 1 or self.swin_head_dim < 1 or self.mlp_ratio <= 0:
            raise ValueError("UNetConfig: window_size, swin_head_dim, mlp_ratio must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"UNetConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.max_timestep < 1:
            raise ValueError(f"UNetConfig: max_timestep must be >= 1, got {self.max_timestep}")

    @property
    def num_levels(self) -> int:
        return len(self.channel_mult)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (one factor 2 per down-sampling)."""
        return 2 ** (self.num_levels - 1)

    @property
    def num_swin_pairs(self) -> int:
        """SwinPair modules the model will contain (encoder + decoder + middle)."""
        if not self.use_swin:
            return 0
        per_level = 2 * self.num_res_blocks + 1  # encoder: n, decoder: n + 1
        return per_level * len(set(self.swin_levels)) + int(self.swin_mid)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        """Build from a plain dict (e.g. YAML); lists become tuples, unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"UNetConfig: unknown key(s) {unknown}; known: {sorted(known)}")
        wrong = check_field_types(cls, d, "model.")
        if wrong:
            raise ValueError(wrong)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-safe dict (tuples as lists); ``from_dict(to_dict())`` round-trips."""
        d = dataclasses.asdict(self)
        for name in _TUPLE_FIELDS:
            d[name] = list(d[name])
        return d


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of ``t`` (shape (B,)) -> (B, dim) float32 ``[cos | sin]``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv x2 with FiLM (scale/shift) from the time embedding."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = _norm(out_ch)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Module):
    """One res block, optionally followed by a SwinPair."""

    def __init__(self, res: ResBlock, swin: SwinPair | None):
        super().__init__()
        self.res = res
        self.swin = swin if swin is not None else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        return self.swin(self.res(x, emb))


class UNet(nn.Module):
    """``forward(x_t, x_lr, t)`` -> prediction of x_HR, same spatial size as the inputs."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.widths
        emb_dim = 4 * cfg.base_channels

        def swin(level: int | None) -> SwinPair | None:
            on = level in cfg.swin_levels if level is not None else cfg.swin_mid
            if not (cfg.use_swin and on):
                return None
            dim = widths[-1] if level is None else widths[level]
            heads = swin_num_heads(dim, cfg.swin_head_dim)
            return SwinPair(dim, heads, cfg.window_size, cfg.mlp_ratio)

        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.stem = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)

        # Encoder: every stage output (and every down-sampled map) is a skip.
        self.down = nn.ModuleList()
        skip_ch = [widths[0]]
        ch = widths[0]
        for lv, w in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                self.down.append(Stage(ResBlock(ch, w, emb_dim, cfg.dropout), swin(lv)))
                ch = w
                skip_ch.append(ch)
            if lv != cfg.num_levels - 1:
                self.down.append(Downsample(ch))
                skip_ch.append(ch)

        self.mid1 = ResBlock(ch, ch, emb_dim, cfg.dropout)
        self.mid_swin = swin(None) or nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, cfg.dropout)

        # Decoder: num_res_blocks + 1 stages per level, each consuming one skip.
        self.up = nn.ModuleList()
        for lv in reversed(range(cfg.num_levels)):
            w = widths[lv]
            for _ in range(cfg.num_res_blocks + 1):
                res = ResBlock(ch + skip_ch.pop(), w, emb_dim, cfg.dropout)
                self.up.append(Stage(res, swin(lv)))
                ch = w
            if lv != 0:
                self.up.append(Upsample(ch))
        assert not skip_ch

        self.out = nn.Sequential(
            _norm(ch), nn.SiLU(), nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        )
        if cfg.residual_output:
            if cfg.out_channels != 1:
                raise ValueError("UNetConfig: residual_output needs out_channels == 1")
            nn.init.zeros_(self.out[-1].weight)
            nn.init.zeros_(self.out[-1].bias)

    def _embed(self, t: Tensor, batch: int, device: torch.device) -> Tensor:
        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"UNet: t must have shape ({batch},), got {tuple(t.shape)}")
        t = t.float() * (1000.0 / self.cfg.max_timestep)
        emb = timestep_embedding(t, self.cfg.base_channels)
        return self.time_mlp(emb.to(self.time_mlp[0].weight.dtype))

    def forward(self, x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
        """x_t, x_lr: (B, C, H, W) with any H, W; t: (B,) or scalar -> (B, out_channels, H, W)."""
        if x_t.shape[0] != x_lr.shape[0] or x_t.shape[-2:] != x_lr.shape[-2:]:
            raise ValueError(
                f"UNet: x_t {tuple(x_t.shape)} and x_lr {tuple(x_lr.shape)} do not match"
            )
        H, W = x_t.shape[-2:]
        x = pad_to_multiple(torch.cat([x_t, x_lr], dim=1), self.cfg.size_multiple)

        emb = self._embed(t, x.shape[0], x.device)
        h = self.stem(x)
        skips = [h]
        for mod in self.down:
            h = mod(h, emb) if isinstance(mod, Stage) else mod(h)
            skips.append(h)
        h = self.mid2(self.mid_swin(self.mid1(h, emb)), emb)
        for mod in self.up:
            if isinstance(mod, Stage):
                h = mod(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = mod(h)
        out = self.out(h)[..., :H, :W]
        return out + x_lr.to(out.dtype) if self.cfg.residual_output else out


def build_unet(cfg: UNetConfig | dict[str, Any]) -> UNet:
    """Build a :class:`UNet` from a config or a plain dict (see :meth:`UNetConfig.from_dict`)."""
    if isinstance(cfg, dict):
        cfg = UNetConfig.from_dict(cfg)
    return UNet(cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of (unique) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


# Widths 32/64/64/128, Swin at the two coarsest levels + middle; trains at 64x64 on a CPU.
TINY_CPU = UNetConfig(
    base_channels=32,
    channel_mult=(1, 2, 2, 4),
    num_res_blocks=2,
    swin_levels=(2, 3),
    swin_mid=True,
    window_size=8,
)

# Paper-sized model: widths 64/128/256/512, Swin at levels 2, 3 + middle, window 8.
PAPER_GPU = UNetConfig(
    base_channels=64,
    channel_mult=(1, 2, 4, 8),  # widths 64..512, as in the authors' brain model
    num_res_blocks=2,
    swin_levels=(2,),  # Swin pairs at 1/4 resolution and in the middle (1/8)
    swin_mid=True,
    window_size=8,
    mlp_ratio=2.0,  # ~66.5 M parameters (the authors' brain model: ~56 M)
)
