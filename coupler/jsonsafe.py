"""JSON that every reader accepts: the one place coupler cleans values before ``json.dumps``.

Non-finite floats (``nan``, ``inf``) are not JSON; numpy scalars and paths are not serialisable.
:func:`json_safe` turns them into null, plain numbers and text; :func:`dumps` writes the result
strictly (``allow_nan=False``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["dumps", "json_safe"]


def json_safe(obj: Any) -> Any:
    """A JSON-safe copy: non-finite floats become null, numpy scalars plain numbers.

    Mappings get string keys; tuples, lists and sets become lists; paths and timestamps text.

    >>> json_safe({"gap": float("inf"), "n": np.int64(3), "ok": np.bool_(True)})
    {'gap': None, 'n': 3, 'ok': True}
    """
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path | pd.Timestamp):
        return str(obj)
    return obj


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """``json.dumps`` of :func:`json_safe` ``(obj)``; anything else unknown becomes its text."""
    return json.dumps(
        json_safe(obj), indent=indent, sort_keys=sort_keys, allow_nan=False, default=str
    )
