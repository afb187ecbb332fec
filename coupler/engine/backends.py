"""The registry of MIP backends, by name; a backend's solver is imported only when it is asked for.

>>> sorted(BACKENDS)
['cbc', 'highs', 'ortools']
>>> get_backend("highs").name
'highs'
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from coupler.engine.base import MipBackend
from coupler.errors import CouplerError
from coupler.schema import BACKEND_NAMES

__all__ = ["BACKENDS", "available_backends", "get_backend"]

#: name -> (module, class); the module (and its solver package) is imported on first use.
BACKENDS: dict[str, tuple[str, str]] = {
    "highs": ("coupler.engine.highs", "HighsBackend"),
    "ortools": ("coupler.engine.ortools_backend", "OrtoolsBackend"),
    "cbc": ("coupler.engine.cbc", "CbcBackend"),
}
assert tuple(BACKENDS) == BACKEND_NAMES


def _backend_class(name: str) -> type:
    module, cls = BACKENDS[name]
    return cast(type, getattr(importlib.import_module(module), cls))


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
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise CouplerError(f"unknown backend {name!r}; known backends: {known}")
    backend: MipBackend = _backend_class(key)()
    return backend


def available_backends() -> tuple[str, ...]:
    """Names of the backends whose solver can run on this machine, in registry order."""
    return tuple(name for name in BACKENDS if cast(Any, _backend_class(name)).available())
