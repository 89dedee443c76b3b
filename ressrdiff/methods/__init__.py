"""Super-resolution methods behind one registry (``ressrdiff.methods.build_method``)."""

# isort: off
from . import res_srdiff  # noqa: F401  (registers "res-srdiff")
from . import ddpm  # noqa: F401  (registers "tm-ddpm")
from . import i2sb  # noqa: F401  (registers "i2sb")
from . import bicubic  # noqa: F401  (registers "bicubic")
from . import pix2pix  # noqa: F401  (registers "pix2pix")
from . import cyclegan  # noqa: F401  (registers "cyclegan")
from . import spsr  # noqa: F401  (registers "spsr")
from . import regression  # noqa: F401  (registers "regression")

# isort: on
from .base import METHODS, Method, build_method, register
from .loading import load_method

__all__ = ["METHODS", "Method", "build_method", "load_method", "register"]
