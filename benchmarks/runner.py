"""Run workloads with coupler and the plain baselines, one fresh subprocess per method.

Every (tier, seed, method) runs in its own Python process, so its peak RSS (``ru_maxrss``, which
includes the CBC binary that PuLP starts) belongs to that method alone. The parent prepares the
case files once per (tier, seed), starts the workers one after another, and appends one JSON line
per run to the results file.

Methods
-------
``coupler``
    :func:`coupler.solve` with the policy's defaults (flow relaxation, stage 1, repair).
``pulp-cbc``
    The whole model written plainly: :func:`coupler.engine.mip.build_mip` over every usable pair
    with the ``penalised`` objective, solved by the CBC backend, which builds the PuLP model with
    a Python loop per variable and row and runs CBC.
``highs-mip``
    The same full MIP handed to HiGHS's branch and cut, with no decomposition.

The baselines stop at ``time_cap`` seconds of solver time. Their plan is decoded and re-evaluated
with :meth:`coupler.model.CouplingModel.evaluate`, so ``objective`` is in coupler's units (soft
score minus the fill penalty) for all three methods; broken and uncoupled persons are reported
apart. ``bound`` converts the solver's bound on the penalised objective back to those units by
adding the penalties of the plan's own broken and uncoupled persons (a valid bound on every plan
with at most that many; exact when the baseline reached the minimum).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.optima import load_optima
from benchmarks.workloads import PreparedCase, Workload
from coupler.jsonsafe import dumps, json_safe

METHODS = ("coupler", "pulp-cbc", "highs-mip")
BASELINES = {"pulp-cbc": "cbc", "highs-mip": "highs"}
RESULTS = Path(__file__).parent / "results" / "results.jsonl"
SCHEMA_VERSION = 1
#: Fields every record has (the smoke test checks them).
FIELDS = (
    "schema",
    "timestamp",
    "commit",
    "dirty",
    "machine",
    "tier",
    "kind",
    "seed",
    "method",
    "households",
    "persons",
    "municipalities",
    "columns",
    "time_cap",
    "seconds",
    "peak_rss_mb",
    "status",
    "objective",
    "bound",
    "gap",
    "soft",
    "shortfall",
    "broken_persons",
    "broken_lower_bound",
    "uncoupled_persons",
    "native",
    "error",
)
PACKAGES = ("coupler", "numpy", "scipy", "pandas", "highspy", "pulp", "ortools", "matplotlib")

Say = Callable[[str], None]


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- machine and code --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and package versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        ram_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def git_commit() -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files differ from it) of the repository, or (None, None)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head, bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        return None, None


# -- one run, inside the worker process ----------------------------------------------------------


def _finite(x: float | None) -> float | None:
    value: float | None = json_safe(None if x is None else float(x))
    return value


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # Linux reports kB


def _write_plan(result: Any, model: Any, out_dir: Path) -> str:
    """Write the plan as ``coupler solve`` does (explanations included); the writer used."""
    from coupler.rundir import write_result

    write_result(result, model, out_dir, force=True)
    return "coupler.rundir.write_result"


def run_method(
    case: PreparedCase,
    method: str,
    time_cap: float,
    say: Say = _say,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Load, build, solve and write ``case`` with ``method``; the figures of one record.

    Runs in the current process; :func:`run` calls it in a fresh worker process. ``checkpoint``
    receives the partial record before the solve, so a run killed there still has its sizes and
    load / build times.
    """
    from coupler import build_model, solve
    from coupler.engine.backends import get_backend
    from coupler.engine.mip import all_pairs, build_mip, penalties
    from coupler.result import make_result

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    inst, policy = case.load()
    seconds["load"] = time.perf_counter() - t
    say(
        f"{case.workload.name} seed {case.seed} {method}: loaded {inst.n_households} households "
        f"in {seconds['load']:.2f}s"
    )

    t = time.perf_counter()
    model = build_model(inst, policy)
    rec: dict[str, Any] = {"native": None, "columns": None}
    if method == "coupler":
        seconds["build"] = time.perf_counter() - t
        if checkpoint:
            checkpoint(_finish(dict(rec, seconds=dict(seconds)), case, method, inst, time_cap))
        t = time.perf_counter()
        result = solve(model, progress=lambda m: say(f"  {m}"))
        seconds["solve"] = time.perf_counter() - t
        rec["engine_seconds"] = dict(result.seconds)
        rec["method_detail"] = result.method
        bound, status = result.bound, str(result.status)
        broken_lb = result.broken_lower_bound
    elif method in BASELINES:
        pair_h, pair_m = all_pairs(model)
        problem, layout = build_mip(model, pair_h, pair_m, objective="penalised")
        seconds["build"] = time.perf_counter() - t
        rec["columns"] = problem.n_cols
        say(
            f"  full MIP: {problem.n_cols:,} columns, {problem.n_rows:,} rows; "
            f"{BASELINES[method]} capped at {time_cap:g}s"
        )
        if checkpoint:
            checkpoint(_finish(dict(rec, seconds=dict(seconds)), case, method, inst, time_cap))
        t = time.perf_counter()
        sol = get_backend(BASELINES[method]).solve(
            problem, time_limit=time_cap, gap=policy.solver.gap, seed=case.seed
        )
        seconds["solve"] = time.perf_counter() - t
        rec["native"] = {
            "status": str(sol.status),
            "native_status": sol.native_status,
            "objective": _finite(sol.objective),
            "bound": _finite(sol.bound),
            "gap": _finite(sol.gap),
            "solver_seconds": sol.seconds,
        }
        if sol.x is None:
            # Every household may stay uncoupled in this model, so it is never infeasible: a
            # solver that says so (CBC via PuLP at its time limit) simply found no plan.
            rec.update(
                seconds=dict(seconds),
                status="no plan" if sol.status in ("infeasible", "unknown") else str(sol.status),
                objective=None,
                bound=None,
                gap=None,
                soft=None,
                shortfall=None,
                broken_persons=None,
                broken_lower_bound=None,
                uncoupled_persons=None,
            )
            return _finish(rec, case, method, inst, time_cap)
        t = time.perf_counter()
        assignment = layout.assignment(sol.x, model.n_households)
        value = model.evaluate(assignment)
        pb, pu = penalties(model)
        penalised = value.objective - pb * value.broken_persons - pu * value.uncoupled_persons
        # The solver's bound is on the penalised objective. It proves the plan's broken and
        # uncoupled persons minimal only when it is less than one broken person's penalty above
        # the plan; only then is bound + penalties a bound on the soft objective of such plans
        # (stages are not mixed: no soft gap is claimed otherwise).
        stages_proven = bool(np.isfinite(sol.bound) and sol.bound - penalised < pb - 1e-6)
        bound = (
            sol.bound + pb * value.broken_persons + pu * value.uncoupled_persons
            if stages_proven
            else math.inf
        )
        status = str(sol.status)
        broken_lb = value.broken_persons if stages_proven else None
        result = make_result(
            model,
            assignment,
            status=sol.status,
            bound=bound,
            broken_lower_bound=0,
            uncoupled_lower_bound=0,
            backend=BASELINES[method],
            method=method,
            seconds={},
        )
        seconds["explain"] = time.perf_counter() - t
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")

    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coupler-bench-out-") as out:
        rec["writer"] = _write_plan(result, model, Path(out) / "plan")
    seconds["write"] = seconds.pop("explain", 0.0) + time.perf_counter() - t
    rec.update(
        seconds=seconds,
        status=status,
        objective=_finite(result.objective),
        bound=_finite(bound),
        gap=_finite(
            result.gap
            if method == "coupler"
            else max(0.0, bound - result.objective) / max(1.0, abs(result.objective))
        ),
        soft=_finite(result.soft),
        shortfall=_finite(result.shortfall),
        broken_persons=int(result.broken_persons),
        broken_lower_bound=None if broken_lb is None else int(broken_lb),
        uncoupled_persons=int(result.uncoupled_persons),
    )
    return _finish(rec, case, method, inst, time_cap)


def _finish(
    rec: dict[str, Any], case: PreparedCase, method: str, inst: Any, time_cap: float
) -> dict[str, Any]:
    rec["seconds"]["total"] = sum(v for k, v in rec["seconds"].items() if k != "total")
    optimum = load_optima().get(f"{case.workload.name}/{case.seed}")
    if optimum is not None and optimum.get("proven") and rec.get("objective") is not None:
        # Distance to the stored optimum (only meaningful at the same broken persons).
        opt = float(optimum["objective"])
        rec["optimum"] = opt
        rec["optimum_proven"] = bool(optimum.get("proven"))
        rec["optimum_broken_persons"] = optimum.get("broken_persons")
        rec["to_optimum"] = (opt - float(rec["objective"])) / max(1.0, abs(opt))
    rec.update(
        tier=case.workload.name,
        kind=case.workload.kind,
        seed=case.seed,
        method=method,
        households=int(inst.n_households),
        persons=int(inst.sizes.sum()),
        municipalities=int(inst.n_municipalities),
        time_cap=time_cap if method in BASELINES else None,
        peak_rss_mb=round(_peak_rss_mb(), 1),
        error=None,
    )
    return rec


def worker_main(case_file: Path, method: str, time_cap: float, out_file: Path) -> int:
    """Entry point of a worker process: run one method on a pickled case, write its JSON."""
    import pickle

    with open(case_file, "rb") as f:
        case: PreparedCase = pickle.load(f)
    partial: dict[str, Any] = {}

    def checkpoint(rec: dict[str, Any]) -> None:
        partial.update(rec)
        _dump(rec, out_file)

    try:
        rec = run_method(case, method, time_cap, checkpoint=checkpoint)
    except MemoryError:
        rec = {
            **partial,
            "error": "out of memory (worker memory limit)",
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        }
    _dump(rec, out_file)
    return 0


def _dump(rec: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_text(dumps(rec), encoding="utf-8")
    os.replace(tmp, path)


# -- the parent ----------------------------------------------------------------------------------


def _limit_memory(limit_gb: float | None) -> Callable[[], None] | None:
    if not limit_gb:
        return None
    limit = int(limit_gb * 2**30)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _spawn(
    case_file: Path,
    method: str,
    time_cap: float,
    out_file: Path,
    hard_timeout: float,
    memory_limit_gb: float | None,
) -> tuple[int, float, float, bool]:
    """Run one worker; (exit code, wall seconds, peak RSS MB from wait4, killed at timeout)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "_worker",
        str(case_file),
        method,
        str(time_cap),
        str(out_file),
    ]
    started = time.perf_counter()
    # Solver banners go to stderr with the progress, so stdout stays clean.
    proc = subprocess.Popen(
        cmd,
        stdout=sys.stderr,
        start_new_session=True,
        preexec_fn=_limit_memory(memory_limit_gb),
        cwd=Path(__file__).resolve().parent.parent,
    )
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(hard_timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024.0, killed.is_set()


def run(
    tiers: Sequence[Workload],
    seeds: Sequence[int],
    methods: Sequence[str],
    *,
    time_cap: float = 600.0,
    results: Path = RESULTS,
    memory_limit_gb: float | None = 12.0,
    hard_timeout: float | None = None,
    say: Say = _say,
) -> list[dict[str, Any]]:
    """Run every (tier, seed, method) in a fresh worker and append its JSON line to ``results``.

    ``hard_timeout`` per worker defaults to three times the cap plus ten minutes: PuLP's model
    build is not under CBC's time limit, and neither solver stops exactly at it. A worker killed
    at that timeout, or failing, still gets a line (``status`` ``"killed"`` / ``"error"``).
    """
    import pickle

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    commit, dirty = git_commit()
    host = machine()
    results.parent.mkdir(parents=True, exist_ok=True)
    records = []
    if hard_timeout is None:
        hard_timeout = 3.0 * time_cap + 600.0
    with tempfile.TemporaryDirectory(prefix="coupler-bench-") as tmp:
        for w in tiers:
            for seed in seeds:
                folder = Path(tmp) / f"{w.name}-{seed}"
                say(f"{w.name} seed {seed}: generating {w.persons:,} persons ({w.kind})")
                case = w.prepare(seed, folder)
                case_file = folder / "case.pickle"
                case_file.write_bytes(pickle.dumps(case))
                for method in methods:
                    out_file = folder / f"{method}.json"
                    code, wall, rss, killed = _spawn(
                        case_file, method, time_cap, out_file, hard_timeout, memory_limit_gb
                    )
                    rec: dict[str, Any] = {f: None for f in FIELDS}
                    rec.update(
                        tier=w.name,
                        kind=w.kind,
                        seed=seed,
                        method=method,
                        seconds={},
                        time_cap=time_cap if method in BASELINES else None,
                    )
                    if out_file.is_file():
                        rec.update(json.loads(out_file.read_text(encoding="utf-8")))
                    if killed:
                        rec["status"], rec["error"] = "killed", f"killed after {wall:.0f}s"
                        # The solve ran until the kill: count it, so time ratios stay honest.
                        s = rec["seconds"]
                        s["solve"] = max(0.0, wall - s.get("load", 0.0) - s.get("build", 0.0))
                        s["total"] = wall
                    elif code != 0 and not rec.get("error"):
                        rec["status"], rec["error"] = "error", f"worker exited with code {code}"
                    elif rec.get("error"):
                        rec["status"] = "error"
                    rec["peak_rss_mb"] = round(max(rss, rec.get("peak_rss_mb") or 0.0), 1)
                    rec["wall_seconds"] = round(wall, 3)
                    rec.update(
                        schema=SCHEMA_VERSION,
                        timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        commit=commit,
                        dirty=dirty,
                        machine=host,
                    )
                    with open(results, "a", encoding="utf-8") as f:
                        f.write(dumps(rec) + "\n")
                    records.append(rec)
                    say(_line(rec))
    return records


def _line(rec: dict[str, Any]) -> str:
    s = rec.get("seconds") or {}
    parts = [f"{rec['tier']} seed {rec['seed']} {rec['method']}: {rec.get('status')}"]
    if "total" in s:
        parts.append(f"total {s['total']:.2f}s (solve {s.get('solve', 0):.2f}s)")
    if rec.get("objective") is not None:
        parts.append(f"objective {rec['objective']:.3f}")
    if rec.get("gap") is not None:
        parts.append(f"gap {rec['gap']:.4%}")
    if rec.get("broken_persons") is not None:
        parts.append(f"broken {rec['broken_persons']}")
    parts.append(f"peak RSS {rec.get('peak_rss_mb')} MB")
    if rec.get("error"):
        parts.append(rec["error"])
    return ", ".join(parts)
