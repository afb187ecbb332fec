"""Atomic output: a run writes every file or none.

Files are first written into a hidden staging folder next to the target folder and only moved
into place once all of them exist, so a crash or a user error never leaves half a plan behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

#: A file's content: bytes, text, a DataFrame (written as CSV), a JSON-able dict, or a callable
#: that writes the file itself at the path it is given.
Content = bytes | str | pd.DataFrame | dict | Callable[[Path], None]


def _write_one(path: Path, content: Content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, pd.DataFrame):
        if path.suffix == ".xlsx":
            content.to_excel(path, index=False)
        else:
            content.to_csv(path, index=False, lineterminator="\n")
    elif isinstance(content, dict):
        path.write_text(
            json.dumps(content, indent=2, default=_json_default) + "\n", encoding="utf-8"
        )
    elif callable(content):
        content(path)
    else:  # pragma: no cover - programming error
        raise TypeError(f"cannot write {type(content).__name__} to {path.name}")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_atomically(out_dir: str | os.PathLike[str], files: Mapping[str, Content]) -> list[Path]:
    """Write ``files`` (name -> content) into ``out_dir`` all at once.

    Returns the final paths. If writing any file fails, no file in ``out_dir`` is touched.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        for name, content in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_one(target, content)
        out.mkdir(parents=True, exist_ok=True)
        final = []
        for name in files:
            dest = out / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, dest)
            final.append(dest)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
