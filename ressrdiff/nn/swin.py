"""A pair of (shifted-)window attention blocks for channels-first feature maps.

Wraps :class:`timm.models.swin_transformer.SwinTransformerBlock`, built with
``dynamic_mask=True`` (the shifted-window mask is computed from the input in ``forward`` instead
of being fixed for one resolution at construction) and ``always_partition=True`` (window and
shift are never shrunk to fit a nominal resolution). No resolution-dependent tensor is left in
``state_dict`` (``attn_mask`` / ``relative_position_index`` are non-persistent buffers).

timm zero-pads a map that is not a multiple of the window only *after* the cyclic shift and then
computes the mask on the padded map; the mask regions are then misaligned with the wrapped rows
and columns (opposite image borders can attend to each other) and real tokens attend to zero
tokens. :class:`SwinPair` therefore pads the map itself (reflect, or replicate where the map is
too small) to whole windows before the blocks and crops afterwards, so timm never pads.
"""

from __future__ import annotations

import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformerBlock
from torch import Tensor, nn

__all__ = ["SwinPair", "pad_to_multiple", "swin_num_heads"]


def swin_num_heads(dim: int, head_dim: int) -> int:
    """``max(1, dim // head_dim)``, lowered until it divides ``dim``."""
    if dim < 1 or head_dim < 1:
        raise ValueError(f"swin: dim and head_dim must be >= 1, got {dim}, {head_dim}")
    heads = max(1, dim // head_dim)
    while dim % heads:
        heads -= 1
    return heads


def pad_to_multiple(x: Tensor, m: int) -> Tensor:
    """Pad the last two dims of ``x`` at the bottom/right up to multiples of ``m``.

    Reflect padding where possible, replicate where a side is too short to reflect.
    """
    H, W = x.shape[-2:]
    ph, pw = (-H) % m, (-W) % m
    if not (ph or pw):
        return x
    mode = "reflect" if ph < H and pw < W else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class SwinPair(nn.Module):
    """Two Swin blocks (shift 0, then shift ``window_size // 2``) on a (B, C, H, W) map.

    Residual connections live inside the timm blocks, so the module maps x to x + f(x).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 8, mlp_ratio: float = 4.0):
        super().__init__()
        if window_size < 1:
            raise ValueError(f"swin: window_size must be >= 1, got {window_size}")
        if dim % num_heads:
            raise ValueError(f"swin: dim {dim} is not divisible by num_heads {num_heads}")
        self.window_size = window_size
        # Only a nominal value: with always_partition/dynamic_mask nothing depends on it.
        nominal = (2 * window_size, 2 * window_size)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                input_resolution=nominal,
                num_heads=num_heads,
                window_size=window_size,
                shift_size=shift,
                always_partition=True,
                dynamic_mask=True,
                mlp_ratio=mlp_ratio,
            )
            for shift in (0, window_size // 2)
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W); channels_last input gives channels_last output."""
        H, W = x.shape[-2:]
        x = pad_to_multiple(x, self.window_size)
        h = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        for blk in self.blocks:
            h = blk(h)
        return h.permute(0, 3, 1, 2)[..., :H, :W]
