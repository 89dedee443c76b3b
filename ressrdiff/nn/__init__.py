"""Networks: the conditional Swin U-Net ``g_phi(x_t, x_lr, t)``."""

from .swin import SwinPair, swin_num_heads
from .unet import (
    PAPER_GPU,
    TINY_CPU,
    UNet,
    UNetConfig,
    build_unet,
    count_parameters,
    timestep_embedding,
)

__all__ = [
    "PAPER_GPU",
    "TINY_CPU",
    "SwinPair",
    "UNet",
    "UNetConfig",
    "build_unet",
    "count_parameters",
    "swin_num_heads",
    "timestep_embedding",
]
