"""Super-resolution methods behind one registry (``ressrdiff.methods.build_method``)."""

from . import res_srdiff  # noqa: F401  (registers "res-srdiff")
from .base import METHODS, Method, build_method, register
from .loading import load_method

__all__ = ["METHODS", "Method", "build_method", "load_method", "register"]
