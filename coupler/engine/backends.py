"""The registry of MIP backends, by name.

>>> sorted(BACKENDS)
['cbc', 'highs', 'ortools']
>>> get_backend("highs").name
'highs'
"""

from __future__ import annotations

from typing import Any, cast

from coupler.engine.base import MipBackend
from coupler.engine.cbc import CbcBackend
from coupler.engine.highs import HighsBackend
from coupler.engine.ortools_backend import OrtoolsBackend
from coupler.errors import CouplerError

__all__ = ["BACKENDS", "available_backends", "get_backend"]

BACKENDS: dict[str, type] = {
    HighsBackend.name: HighsBackend,
    OrtoolsBackend.name: OrtoolsBackend,
    CbcBackend.name: CbcBackend,
}


def get_backend(name: str) -> MipBackend:
    """Return a fresh backend instance by name.

    Parameters
    ----------
    name
        One of the keys of :data:`BACKENDS` (case-insensitive).

    Raises
    ------
    CouplerError
        When ``name`` is not a known backend; the message lists the known names.
    """
    try:
        cls = BACKENDS[name.strip().lower()]
    except (KeyError, AttributeError):
        known = ", ".join(sorted(BACKENDS))
        raise CouplerError(f"unknown backend {name!r}; known backends: {known}") from None
    backend: MipBackend = cls()
    return backend


def available_backends() -> tuple[str, ...]:
    """Names of the backends whose solver can run on this machine, in registry order."""
    return tuple(name for name, cls in BACKENDS.items() if cast(Any, cls).available())
