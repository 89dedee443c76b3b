"""A vision-transformer denoiser ``eps_phi(x_t, x_lr, t)`` for the TM-DDPM baseline.

Patches of ``[x_t, x_lr]`` (concatenated, SR3-style) become tokens; the time step is one more
token (as in U-ViT, Bao et al. 2023), and timm's ``vision_transformer.Block`` layers process them
with U-ViT's long skip connections between shallow and deep blocks. The position embedding is a
fixed 2-D sine-cosine code of the patch row and column, computed for the input's patch grid, so
any H x W works: the input is padded (reflect) to a multiple of the patch size and the output is
cropped back. After un-patchifying, a 3x3 convolution sees the token output together with the
input channels (a full-resolution skip, like the first-to-last skip of a U-Net): it smooths patch
seams and gives pixel-level access to ``x_t``, which the noise prediction needs at every pixel.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from .swin import pad_to_multiple
from .unet import timestep_embedding

__all__ = ["ViTConfig", "ViT", "sincos_position_embedding_2d"]


@dataclass(frozen=True)
class ViTConfig:
    """Hyper-parameters of :class:`ViT`."""

    in_channels: int = 2  # x_t and x_lr concatenated
    out_channels: int = 1
    patch_size: int = 4
    embed_dim: int = 96
    depth: int = 7  # transformer blocks: depth // 2 in, (depth % 2) middle, depth // 2 out
    num_heads: int = 3
    mlp_ratio: float = 4.0
    long_skips: bool = True  # U-ViT skips from block i of the first half to its mirror
    max_timestep: int = 1000  # t is rescaled by 1000 / max_timestep before the embedding

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.out_channels < 1 or self.patch_size < 1:
            raise ValueError(f"ViTConfig: channels and patch_size must be >= 1 in {self}")
        if self.embed_dim % 4 or self.embed_dim % self.num_heads:
            raise ValueError(
                f"ViTConfig: embed_dim {self.embed_dim} must be a multiple of 4 and of "
                f"num_heads {self.num_heads}"
            )
        if self.depth < 1 or self.num_heads < 1 or self.mlp_ratio <= 0:
            raise ValueError("ViTConfig: depth, num_heads and mlp_ratio must be > 0")
        if self.max_timestep < 1:
            raise ValueError(f"ViTConfig: max_timestep must be >= 1, got {self.max_timestep}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ViTConfig:
        """Build from a plain dict; unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ViTConfig: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sincos_position_embedding_2d(h: int, w: int, dim: int, device: torch.device) -> Tensor:
    """Fixed 2-D position code of an ``h x w`` patch grid -> (h*w, dim), row-major.

    A quarter of the channels is ``sin`` / ``cos`` of the row index and a quarter each of the
    column index, at geometric frequencies ``10000^(-k/(dim/4))`` (as in MAE and U-ViT)."""
    if dim % 4:
        raise ValueError(f"position embedding: dim must be a multiple of 4, got {dim}")
    q = dim // 4
    freqs = torch.exp(-math.log(10000.0) * torch.arange(q, dtype=torch.float32, device=device) / q)
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    r = rows.reshape(-1, 1) * freqs
    c = cols.reshape(-1, 1) * freqs
    return torch.cat([torch.sin(r), torch.cos(r), torch.sin(c), torch.cos(c)], dim=1)


class ViT(nn.Module):
    """``forward(x_t, x_lr, t)`` -> (B, out_channels, H, W) for any H, W."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D, p = cfg.embed_dim, cfg.patch_size
        self.patch_embed = nn.Conv2d(cfg.in_channels, D, kernel_size=p, stride=p)
        self.time_mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.SiLU(), nn.Linear(4 * D, D))

        def block() -> Block:
            return Block(D, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=True)

        half = cfg.depth // 2
        self.in_blocks = nn.ModuleList(block() for _ in range(half))
        self.mid_block = block() if cfg.depth % 2 else None
        self.out_blocks = nn.ModuleList(block() for _ in range(half))
        self.skip_proj = (
            nn.ModuleList(nn.Linear(2 * D, D) for _ in range(half)) if cfg.long_skips else None
        )
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, cfg.out_channels * p * p)
        self.final = nn.Conv2d(cfg.out_channels + cfg.in_channels, cfg.out_channels, 3, padding=1)

    def _time_token(self, t: Tensor, batch: int, device: torch.device) -> Tensor:
        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"ViT: t must have shape ({batch},), got {tuple(t.shape)}")
        emb = timestep_embedding(t.float() * (1000.0 / self.cfg.max_timestep), self.cfg.embed_dim)
        return self.time_mlp(emb.to(self.head.weight.dtype))[:, None]

    def forward(self, x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
        """x_t, x_lr: (B, C, H, W) with any H, W; t: (B,) or scalar."""
        if x_t.shape[0] != x_lr.shape[0] or x_t.shape[-2:] != x_lr.shape[-2:]:
            raise ValueError(
                f"ViT: x_t {tuple(x_t.shape)} and x_lr {tuple(x_lr.shape)} do not match"
            )
        B = x_t.shape[0]
        H, W = x_t.shape[-2:]
        p = self.cfg.patch_size
        inp = torch.cat([x_t, x_lr], dim=1)
        h = self.patch_embed(pad_to_multiple(inp, p))  # (B, D, Hp, Wp)
        Hp, Wp = h.shape[-2:]
        pos = sincos_position_embedding_2d(Hp, Wp, self.cfg.embed_dim, h.device).to(h.dtype)
        tokens = h.flatten(2).transpose(1, 2) + pos
        z = torch.cat([self._time_token(t, B, h.device).to(h.dtype), tokens], dim=1)
        skips = []
        for blk in self.in_blocks:
            z = blk(z)
            skips.append(z)
        if self.mid_block is not None:
            z = self.mid_block(z)
        for i, blk in enumerate(self.out_blocks):
            if self.skip_proj is not None:
                z = self.skip_proj[i](torch.cat([z, skips.pop()], dim=-1))
            z = blk(z)
        z = self.head(self.norm(z[:, 1:]))  # drop the time token: (B, Hp*Wp, C*p*p)
        img = F.pixel_shuffle(z.transpose(1, 2).reshape(B, -1, Hp, Wp), p)
        return self.final(torch.cat([img[..., :H, :W], inp.to(img.dtype)], dim=1))
