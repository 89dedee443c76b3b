"""PatchGAN discriminator (Isola et al. 2017): a fully convolutional net that scores every
overlapping patch of its input as real or fake.

With ``n_layers = 3`` (the default) each output logit sees a 70 x 70 input patch (the
"70x70 PatchGAN" of pix2pix and CycleGAN): 4 x 4 convolutions, three with stride 2 and two with
stride 1, widths ``c, 2c, 4c, 8c, 1``. Instance normalisation (as in CycleGAN; pix2pix used
batch normalisation) keeps a sample's scores independent of the rest of its batch; like any
normalisation it lets image-wide statistics into every score, so the 70 x 70 footprint is that
of the convolutions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor, nn

__all__ = ["PatchGANConfig", "PatchGAN", "patchgan_receptive_field"]


@dataclass(frozen=True)
class PatchGANConfig:
    """``in_channels`` is 2 for a conditional discriminator (condition and image concatenated)."""

    in_channels: int = 2
    base_channels: int = 64
    n_layers: int = 3  # stride-2 layers; 3 gives the 70x70 receptive field

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.base_channels < 1 or self.n_layers < 1:
            raise ValueError(
                f"PatchGANConfig: in_channels, base_channels and n_layers must be >= 1, got {self}"
            )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def patchgan_receptive_field(n_layers: int) -> int:
    """Side of the input patch seen by one output logit: 4 x 4 kernels, ``n_layers`` of them
    with stride 2, then two with stride 1 (70 for ``n_layers = 3``)."""
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = (rf - 1) * s + 4
    return rf


class PatchGAN(nn.Module):
    """``forward(x) -> logits`` of shape (B, 1, h, w), one per input patch (no sigmoid).

    The input must be at least ``2 ** n_layers * 3`` pixels a side (the last stride-1
    layers need 3 pixels)."""

    def __init__(self, cfg: PatchGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.base_channels
        layers: list[nn.Module] = [
            nn.Conv2d(cfg.in_channels, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        ch = c
        for i in range(1, cfg.n_layers + 1):
            out = c * min(2**i, 8)
            stride = 2 if i < cfg.n_layers else 1
            layers += [
                nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=False),
                nn.InstanceNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    @property
    def min_size(self) -> int:
        return 2**self.cfg.n_layers * 3

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(
                f"PatchGAN: expected (B, {self.cfg.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"PatchGAN: input {tuple(x.shape[-2:])} smaller than {self.min_size} px "
                f"(n_layers={self.cfg.n_layers})"
            )
        return self.net(x)
