"""Run folders: write and read the folder a run leaves behind (one format, one module).

:func:`write_result` writes the plan tables, ``summary.json``, the policy and the validated inputs
(``inputs/*.parquet``) of a solve; :func:`load_run` reads them back into ``(model, result,
summary)``, so ``coupler explain`` needs no original input paths. Every file and column is
documented in docs/outputs.md.

Every folder coupler writes (solve, generate, compare, sweep) goes through
:func:`write_atomically`, which makes the whole folder visible in one step:

1. every file is written into a staging folder beside the target (``.NAME.staging-XXXX``), with a
   manifest (:data:`MANIFEST`) naming each file and its SHA-256 written last, and flushed to disk;
2. the staging folder and the target are swapped in one atomic ``renameat2(RENAME_EXCHANGE)``
   (Linux); elsewhere the old folder is renamed aside (``.NAME.old-XXXX``) and the new one into
   place, and a later run puts an aside folder back if it finds no target;
3. the old folder (now the staging folder) is removed.

A failure or ``kill -9`` at any step leaves the target either entirely old or entirely new; the
next write removes the debris. :func:`check_out` refuses a target that holds files coupler did not
write (unless ``force``) or that is, contains or lies inside an input.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from coupler.errors import CouplerError, InputError, Problem
from coupler.excel import write_csv, write_xlsx
from coupler.explain import explain_broken
from coupler.instance import Instance
from coupler.jsonsafe import dumps, json_safe
from coupler.model import CouplingModel, build_model
from coupler.policy import Policy
from coupler.result import Result, Status, group_table, make_result, plan_assignment

__all__ = [
    "FORMATS",
    "INPUT_TABLES",
    "MANIFEST",
    "TABLES",
    "Content",
    "check_out",
    "load_run",
    "policy_toml",
    "versions",
    "write_atomically",
    "write_file",
    "write_result",
]

#: Table formats of the plan tables (inputs are always Parquet).
FORMATS: tuple[str, ...] = ("csv", "xlsx")

#: The plan tables, in the order they are written.
TABLES: tuple[str, ...] = (
    "plan",
    "plan_criteria",
    "municipalities",
    "provinces",
    "regions",
    "conflicts",
    "broken",
)

#: Input tables saved with a plan (``inputs/<name>.parquet``); the first three are required.
INPUT_TABLES: tuple[str, ...] = (
    "municipalities",
    "households",
    "criteria",
    "scores",
    "locks",
    "demand",
    "distances",
)

#: The manifest in every folder coupler writes: each file it wrote, with its SHA-256.
MANIFEST = ".coupler-manifest.json"

#: A file's content: bytes, text, a DataFrame (CSV or xlsx by the file's suffix, text cells made
#: safe for Excel), a JSON-able dict, or a callable that writes the file itself at the path.
Content: TypeAlias = bytes | str | pd.DataFrame | dict[str, Any] | Callable[[Path], None]

# Test hook: "<k>" kills the process with SIGKILL after the k-th staged file, "staged" after the
# manifest, "swapped" after the swap (tests/test_rundir.py checks the folder after each).
_KILL_ENV = "COUPLER_RUNDIR_KILL_AT"

_PACKAGES = ("coupler", "numpy", "pandas", "scipy", "highspy", "ortools", "pulp", "networkx")


# ---------------------------------------------------------------------------------------------
# Writing a folder atomically


def _write_one(path: Path, content: Content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, pd.DataFrame):
        if path.suffix == ".xlsx":
            write_xlsx({"Sheet1": content}, path)
        else:
            write_csv(content, path)
    elif isinstance(content, dict):
        path.write_text(dumps(content, indent=2) + "\n", encoding="utf-8")
    elif callable(content):
        content(path)
    else:  # pragma: no cover - programming error
        raise TypeError(f"cannot write {type(content).__name__} to {path.name}")


def _kill_hook(step: str) -> None:
    if os.environ.get(_KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _listing(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative, '/'-separated), sorted."""
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    )


def _manifest_files(folder: Path) -> set[str] | None:
    """The files the manifest of ``folder`` lists, or None when it has no readable manifest."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return {str(name) for name in data["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out(
    out_dir: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    *,
    force: bool = False,
    option: str = "--out",
) -> Path:
    """Check that ``out_dir`` may be replaced by a new folder; returns it.

    Raises
    ------
    InputError
        ``out_dir`` is a file; it is, contains or holds the working folder or an input (never
        allowed); it lies inside an input folder, or it holds files that coupler did not write
        (both allowed with ``force``).
    """
    out = Path(out_dir)
    target = out.resolve()
    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise InputError(Problem(option, f"{blocked} is a file, not a folder"))
    if _inside(Path.cwd().resolve(), target) or target == Path(target.anchor):
        raise InputError(
            Problem(option, f"{out} is the working folder or holds it; choose a new folder")
        )
    for item in inputs:
        if item is None:
            continue
        given = Path(item).resolve()
        if _inside(given, target):
            raise InputError(
                Problem(
                    option,
                    f"{out} is or contains the input {item}; writing there would replace it "
                    "(choose another folder)",
                )
            )
        if given.is_dir() and _inside(target, given) and not force:
            raise InputError(
                Problem(
                    option,
                    f"{out} is inside the input folder {item}; choose another folder (or --force)",
                )
            )
    if out.is_dir() and not force:
        present = _listing(out)
        listed = _manifest_files(out)
        if present and listed is None:
            raise InputError(
                Problem(
                    option,
                    f"{out} holds files coupler did not write ({_some(present)}); choose an "
                    "empty or new folder, or --force to replace the whole folder",
                )
            )
        foreign = [name for name in present if name != MANIFEST and name not in (listed or ())]
        if foreign:
            raise InputError(
                Problem(
                    option,
                    f"{out} holds files coupler did not write ({_some(foreign)}); move them, "
                    "or --force to replace the whole folder",
                )
            )
    return out


def _some(names: list[str], limit: int = 3) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _debris(out: Path) -> list[Path]:
    """Staging and aside folders of earlier writes to ``out`` (hidden, beside it)."""
    return sorted(
        p
        for pattern in (f".{out.name}.staging-*", f".{out.name}.old-*")
        for p in out.parent.glob(pattern)
        if p.is_dir() and not p.is_symlink()
    )


def _recover(out: Path) -> None:
    """Put back a folder an interrupted two-rename swap left aside; remove all other debris."""
    if not out.exists():
        aside = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if aside:
            os.rename(aside[-1], out)
    for p in _debris(out):
        shutil.rmtree(p, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2); False when the system cannot."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(folder: Path) -> None:
    """Flush every file and folder under ``folder`` to disk, so a power cut after the swap
    cannot leave an empty file where the new one should be."""
    for p in sorted(folder.rglob("*"), reverse=True):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
        elif p.is_dir():
            _sync_dir(p)
    _sync_dir(folder)


def _swap(staging: Path, out: Path) -> None:
    """Make ``staging`` visible as ``out`` in one step; the old folder ends up in ``staging``."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        return
    aside = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
    os.rename(out, aside)
    os.rename(staging, out)
    os.rename(aside, staging)


def write_atomically(
    out_dir: str | os.PathLike[str],
    files: Mapping[str, Content],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
) -> list[Path]:
    """Replace the folder ``out_dir`` by one holding exactly ``files`` (name -> content), at once.

    The folder is checked with :func:`check_out` first. Returns the final paths (the manifest
    :data:`MANIFEST` is written too). If anything fails, ``out_dir`` is left as it was.
    """
    out = check_out(out_dir, inputs, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        manifest: dict[str, str] = {}
        for k, (name, content) in enumerate(files.items(), start=1):
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_one(target, content)
            manifest[name] = _sha256(target)
            _kill_hook(str(k))
        (staging / MANIFEST).write_text(
            json.dumps({"written_by": "coupler", "files": manifest}, indent=2) + "\n",
            encoding="utf-8",
        )
        _kill_hook("staged")
        _sync(staging)
        _swap(staging, out)
        _sync_dir(out.parent)
        _kill_hook("swapped")
        return [out / name for name in files]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file(
    path: str | os.PathLike[str],
    content: Content,
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    option: str = "--out",
) -> Path:
    """Write one file atomically (a temporary file beside it, then a rename); returns its path.

    Raises
    ------
    InputError
        ``path`` is a folder or one of ``inputs``.
    """
    out = Path(path)
    if out.is_dir():
        raise InputError(Problem(option, f"{out} is a folder; give a file name"))
    for item in inputs:
        if item is not None and Path(item).resolve() == out.resolve():
            raise InputError(Problem(option, f"{out} is an input; writing it would replace it"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{secrets.token_hex(4)}{out.suffix}")
    try:
        _write_one(tmp, content)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------------------------------------
# A solve's run folder


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a plan depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def policy_toml(policy: Policy) -> str:
    """The policy as a TOML file that :meth:`Policy.from_file` reads back to an equal policy."""
    header = "# The policy of this run; `coupler solve --policy policy.toml` reuses it.\n\n"
    return header + policy.to_toml()


def _counts(model: CouplingModel, result: Result, broken: pd.DataFrame) -> dict[str, int]:
    plan = result.plan
    t = model.hard.table
    return {
        "municipalities": model.n_municipalities,
        "households": len(plan),
        "persons": int(plan["persons"].sum()),
        "criteria": len(t),
        "hard_criteria": int((t["hard"] & ~t["yielded"]).sum()),
        "households_with_hard_criteria": int(model.has_hard.sum()),
        "broken_households": int((broken["cause_kind"] != "conflict").sum()),
        "conflict_yielded_unmet_households": int((broken["cause_kind"] == "conflict").sum()),
        "broken_persons": result.broken_persons,
        "uncoupled_households": int((~plan["coupled"]).sum()),
        "uncoupled_persons": result.uncoupled_persons,
        "conflicts": len(result.conflicts),
    }


def _parquet(frame: pd.DataFrame) -> Content:
    return lambda path: frame.to_parquet(path, index=False)


def write_result(
    result: Result,
    model_or_instance: CouplingModel | Instance,
    out_dir: str | Path,
    fmt: str = "csv",
    extra_summary: Mapping[str, Any] | None = None,
    *,
    policy: Policy | None = None,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
) -> list[Path]:
    """Write ``result`` and everything needed to explain it into ``out_dir`` atomically.

    Parameters
    ----------
    result
        The solved plan.
    model_or_instance
        The model it was solved on, or its instance (the model is then rebuilt with ``policy``).
    out_dir
        Output folder; created if needed, replaced as a whole (:func:`write_atomically`).
    fmt
        ``"csv"`` or ``"xlsx"`` for the plan tables.
    extra_summary
        Extra keys merged into ``summary.json`` (e.g. phase times, generator settings).
    policy
        The policy, when ``model_or_instance`` is an instance [default: ``Policy()``].
    inputs
        Input files and folders ``out_dir`` must not overlap (:func:`check_out`).
    force
        Replace a folder that holds files coupler did not write.

    Returns
    -------
    list[Path]
        The files written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}; got {fmt!r}")
    if isinstance(model_or_instance, CouplingModel):
        model = model_or_instance
    else:
        model = build_model(model_or_instance, policy or Policy())
    inst = model.instance
    broken = explain_broken(model, result)
    tables: dict[str, pd.DataFrame] = {
        "plan": result.plan,
        "plan_criteria": result.criteria,
        "municipalities": result.municipalities,
        "provinces": group_table(result.municipalities, "province"),
        "regions": group_table(result.municipalities, "labour_market_region"),
        "conflicts": result.conflicts,
        "broken": broken,
    }
    files: dict[str, Content] = {f"{name}.{fmt}": tables[name] for name in TABLES}

    summary: dict[str, Any] = dict(result.to_json())
    summary.update(
        {
            "seed": model.policy.solver.seed,
            "checksums": inst.checksum(),
            "sources": dict(inst.sources),
            "versions": versions(),
            "counts": _counts(model, result, broken),
            "policy": model.policy.to_dict(),
            "format": fmt,
        }
    )
    summary.update(dict(extra_summary or {}))
    files["summary.json"] = json_safe(summary)
    files["policy.toml"] = policy_toml(model.policy)

    for name in INPUT_TABLES:
        frame = getattr(inst, name)
        if frame is not None:
            files[f"inputs/{name}.parquet"] = _parquet(frame)
    assignment = result.plan[["household_id", "municipality"]].reset_index(drop=True)
    files["inputs/assignment.parquet"] = _parquet(assignment)
    return write_atomically(out_dir, files, inputs=inputs, force=force)


# ---------------------------------------------------------------------------------------------
# Reading a run folder back


def _read_saved(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(
            Problem(str(path), f"cannot be read ({type(exc).__name__}); re-run `coupler solve`")
        ) from None


def _check_unchanged(out: Path) -> None:
    """Refuse a run whose summary, policy or inputs differ from what its manifest records."""
    try:
        files = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # a folder from before manifests: nothing to compare with
    for name, digest in files.items():
        if name == "summary.json" or name == "policy.toml" or name.startswith("inputs/"):
            path = out / name
            if not path.is_file() or _sha256(path) != digest:
                raise InputError(
                    Problem(
                        str(path),
                        "differs from what coupler wrote (see .coupler-manifest.json); "
                        "re-run `coupler solve`",
                    )
                )


def load_run(out_dir: str | Path) -> tuple[CouplingModel, Result, dict[str, Any]]:
    """Rebuild ``(model, result, summary)`` from a folder written by ``write_result``.

    Raises
    ------
    CouplerError
        The folder is not a coupler output folder (no summary.json or saved inputs), or the
        saved plan names a household or municipality the saved inputs do not know.
    """
    out = Path(out_dir)
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        raise InputError(
            Problem(
                str(out),
                "is not a coupler output folder (no summary.json); run `coupler solve` first",
            )
        )
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(str(summary_path), f"is not valid JSON: {exc}")) from None
    tables: dict[str, pd.DataFrame | None] = {}
    missing = []
    for name in INPUT_TABLES:
        p = out / "inputs" / f"{name}.parquet"
        if p.is_file():
            tables[name] = _read_saved(p)
        elif name in INPUT_TABLES[:3]:
            missing.append(p.name)
        else:
            tables[name] = None
    plan_path = out / "inputs" / "assignment.parquet"
    if not plan_path.is_file():
        missing.append(plan_path.name)
    if missing:
        raise InputError(
            Problem(str(out / "inputs"), f"missing {', '.join(missing)}; re-run `coupler solve`")
        )
    _check_unchanged(out)
    policy_file = out / "policy.toml"
    policy = (
        Policy.from_file(policy_file)
        if policy_file.is_file()
        else Policy.from_dict(summary["policy"])
    )
    instance = Instance(**tables)  # type: ignore[arg-type]
    model = build_model(instance, policy)
    plan = _read_saved(plan_path)
    try:
        assignment = plan_assignment(instance, plan)
    except CouplerError:
        raise CouplerError(
            f"{plan_path} does not match the saved inputs; re-run `coupler solve`"
        ) from None
    bound = summary.get("bound")
    result = make_result(
        model,
        assignment,
        status=Status(summary.get("status", "unknown")),
        bound=math.inf if bound is None else float(bound),
        broken_lower_bound=int(summary.get("broken_lower_bound", 0)),
        uncoupled_lower_bound=int(summary.get("uncoupled_lower_bound", 0)),
        backend=str(summary.get("backend", "")),
        method=str(summary.get("method", "")),
        seconds=summary.get("seconds", {}),
        lower_bounds_proven=bool(summary.get("lower_bounds_proven", False)),
    )
    return model, result, summary
