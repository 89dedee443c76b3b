"""Res-SRDiff: residual-shifting diffusion for MRI super-resolution."""

__version__ = "0.1.0"
