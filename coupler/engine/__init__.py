"""The engine: one entry point, :func:`solve`; MIP backends are imported only when used."""

from __future__ import annotations

from coupler.engine.solve import solve

__all__ = ["solve"]
