"""Run folders (coupler.rundir): one format, written and read back, replaced atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import factories as f
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import coupler.rundir as rundir
from coupler.cli import main
from coupler.engine.solve import solve
from coupler.errors import InputError
from coupler.instance import Instance
from coupler.jsonsafe import json_safe
from coupler.model import CouplingModel, build_model
from coupler.policy import Policy
from coupler.result import Result
from coupler.rundir import MANIFEST, check_out, load_run, write_atomically, write_result

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny() -> tuple[CouplingModel, Result]:
    """Three places on a line (quota 3 each), four households, one qualifying job at place 1."""
    inst = f.instance(f.LINE[:3], [3, 3, 3], [1, 2, 1, 1], [f.Crit.job(0, 1)])
    model = build_model(inst, Policy())
    return model, solve(model)


@pytest.fixture(scope="module")
def other() -> tuple[CouplingModel, Result]:
    """A different plan (four places, five households) to overwrite a folder with."""
    inst = f.instance(f.LINE[:4], [2, 2, 2, 2], [1, 1, 2, 1, 1], [f.Crit(2, "family", 3)])
    model = build_model(inst, Policy())
    return model, solve(model)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def debris(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# --- format -----------------------------------------------------------------------------------


def test_round_trip_gives_identical_result_tables(tiny, tmp_path):
    """write_result then load_run gives the same plan, criteria, municipality and conflict tables,
    the same objective and status, and the same model inputs."""
    model, result = tiny
    write_result(result, model, tmp_path / "run")
    model2, result2, summary = load_run(tmp_path / "run")
    assert model2.instance.checksum() == model.instance.checksum() == summary["checksums"]
    for name in ("plan", "criteria", "municipalities", "conflicts"):
        pd.testing.assert_frame_equal(getattr(result2, name), getattr(result, name), obj=name)
    assert result2.status == result.status
    assert result2.objective == pytest.approx(result.objective, abs=1e-12)


def test_round_trip_keeps_hostile_ids_exact(tmp_path):
    """Ids that the CSV neutralises for Excel come back unchanged from the saved inputs."""
    inst = f.instance(f.LINE[:2], [3, 3], [1, 1])
    hh = inst.households.copy()
    hh["household_id"] = ["=HYPERLINK(1)", "+x"]
    hostile = Instance(municipalities=inst.municipalities, households=hh, criteria=inst.criteria)
    model = build_model(hostile, Policy())
    result = solve(model)
    write_result(result, model, tmp_path / "run")
    _, result2, _ = load_run(tmp_path / "run")
    pd.testing.assert_frame_equal(result2.plan, result.plan)
    assert "'=HYPERLINK(1)" in (tmp_path / "run" / "plan.csv").read_text()


def test_manifest_names_every_file_with_its_hash(tiny, tmp_path):
    """The manifest lists exactly the files of the folder (itself aside), each with its SHA-256."""
    import hashlib

    model, result = tiny
    paths = write_result(result, model, tmp_path / "run")
    out = tmp_path / "run"
    files = json.loads((out / MANIFEST).read_text())["files"]
    on_disk = set(snapshot(out)) - {MANIFEST}
    assert set(files) == on_disk == {p.relative_to(out).as_posix() for p in paths}
    for name, digest in files.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_load_run_refuses_a_plan_that_does_not_match_the_inputs(tiny, tmp_path):
    """A saved assignment naming a municipality the inputs do not know is an error, not
    a silently uncoupled household (also in a folder without a manifest)."""
    model, result = tiny
    out = tmp_path / "run"
    write_result(result, model, out)
    a = pd.read_parquet(out / "inputs" / "assignment.parquet")
    a.loc[0, "municipality"] = "GM0000"
    a.to_parquet(out / "inputs" / "assignment.parquet", index=False)
    (out / MANIFEST).unlink()  # as in a folder written before manifests
    with pytest.raises(Exception, match="does not match the saved inputs"):
        load_run(out)


def test_load_run_refuses_a_file_changed_after_writing(tiny, other, tmp_path):
    """A saved input replaced by another run's file (a mixed folder) no longer matches the
    manifest: load_run refuses instead of explaining a plan it was not written with."""
    model, result = tiny
    write_result(result, model, tmp_path / "a")
    model2, result2 = other
    write_result(result2, model2, tmp_path / "b")
    name = "inputs/assignment.parquet"
    (tmp_path / "a" / name).write_bytes((tmp_path / "b" / name).read_bytes())
    with pytest.raises(InputError, match="differs from what coupler wrote"):
        load_run(tmp_path / "a")


def test_json_safe_cleans_non_finite_and_numpy_values():
    """NaN and inf become null, numpy scalars plain Python values, tuples lists, keys text."""
    data = {"a": np.float64("nan"), 1: (np.int64(2), np.bool_(True), float("-inf")), "p": Path("x")}
    clean = json_safe(data)
    assert clean == {"a": None, "1": [2, True, None], "p": "x"}
    assert json.loads(json.dumps(clean, allow_nan=False)) == clean


# --- atomic replacement -------------------------------------------------------------------------


def test_stale_files_never_survive(tiny, other, tmp_path):
    """A new run replaces the folder as a whole: xlsx tables and inputs of an earlier run are
    gone after a csv run without them."""
    out = tmp_path / "run"
    model, result = tiny
    write_result(result, model, out, fmt="xlsx")
    assert (out / "plan.xlsx").is_file()
    model2, result2 = other
    paths = write_result(result2, model2, out)
    assert not (out / "plan.xlsx").exists()
    assert set(snapshot(out)) == {p.relative_to(out).as_posix() for p in paths} | {MANIFEST}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_io_error_at_any_file_leaves_the_old_folder(tiny, other, tmp_path, monkeypatch, fmt):
    """An I/O error while writing the k-th file, for every k, or while swapping, leaves the
    previous folder byte for byte as it was and no staging folder behind."""
    out = tmp_path / "run"
    model, result = tiny
    write_result(result, model, out)
    old = snapshot(out)
    model2, result2 = other
    real = rundir._write_one
    n_files = len(old) - 1  # the manifest is written apart
    for k in range(1, n_files + 1):
        calls = [0]

        def failing(path, content, k=k, calls=calls):
            calls[0] += 1
            if calls[0] == k:
                raise OSError(28, "No space left on device")
            real(path, content)

        monkeypatch.setattr(rundir, "_write_one", failing)
        with pytest.raises(OSError):
            write_result(result2, model2, out, fmt=fmt)
        assert snapshot(out) == old, k
        assert debris(out) == []
    monkeypatch.setattr(rundir, "_write_one", real)

    def broken_swap(staging, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(rundir, "_swap", broken_swap)
    with pytest.raises(OSError):
        write_result(result2, model2, out, fmt=fmt)
    assert snapshot(out) == old
    assert debris(out) == []


_WRITER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from coupler.rundir import write_atomically

    tag = sys.argv[2]
    files = {
        f"t{i}.csv": pd.DataFrame({"household_id": [f"{tag}{i}", "=x"], "n": [i, -i]})
        for i in range(4)
    }
    files["summary.json"] = {"tag": tag, "gap": float("inf")}
    files["inputs/a.parquet"] = lambda p: pd.DataFrame({"x": [tag]}).to_parquet(p)
    files["policy.toml"] = f"# {tag}\\n"
    write_atomically(sys.argv[1], files)
    """
)


def _write_in_subprocess(out: Path, tag: str, kill_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "COUPLER_RUNDIR_KILL_AT"}
    env["PYTHONPATH"] = str(ROOT)
    if kill_at is not None:
        env["COUPLER_RUNDIR_KILL_AT"] = kill_at
    p = subprocess.run(
        [sys.executable, "-c", _WRITER, str(out), tag], env=env, capture_output=True, timeout=120
    )
    return p.returncode


def test_sigkill_at_every_step_leaves_old_or_new(tmp_path):
    """kill -9 after each staged file, after the manifest and after the swap: the folder is
    entirely the old one (or, after the swap, entirely the new one), and the next write
    removes the debris."""
    out = tmp_path / "run"
    new_ref = tmp_path / "ref"
    assert _write_in_subprocess(out, "old", None) == 0
    assert _write_in_subprocess(new_ref, "new", None) == 0
    old, new = snapshot(out), snapshot(new_ref)
    assert old != new and len(old) == 8
    for step in ["1", "3", "7", "staged"]:
        assert _write_in_subprocess(out, "new", step) == -signal.SIGKILL, step
        assert snapshot(out) == old, step
    assert _write_in_subprocess(out, "new", "swapped") == -signal.SIGKILL
    assert snapshot(out) == new
    assert debris(out)  # the old folder, now in a staging folder, was not yet removed
    assert _write_in_subprocess(out, "old", None) == 0
    assert snapshot(out) == old
    assert debris(out) == []


def test_solve_killed_while_writing_keeps_the_previous_plan(tmp_path):
    """``coupler solve`` killed after its third file: the previous run folder is intact."""
    out = tmp_path / "plan"
    args = [sys.executable, "-m", "coupler", "solve", "--persons", "60", "--time-limit", "20"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run([*args, "--out", str(out)], env=env, capture_output=True, timeout=600)
    assert first.returncode == 0, first.stderr
    old = snapshot(out)
    env["COUPLER_RUNDIR_KILL_AT"] = "3"
    again = subprocess.run(
        [*args, "--seed", "1", "--out", str(out)], env=env, capture_output=True, timeout=600
    )
    assert again.returncode == -signal.SIGKILL
    assert snapshot(out) == old
    load_run(out)  # still a complete, readable run


def test_interrupted_two_rename_swap_is_put_back(tmp_path):
    """Where folders cannot be exchanged in one step, a crash between the two renames leaves the
    old folder aside; the next write puts it back before replacing it, never losing it."""
    out = tmp_path / "run"
    write_atomically(out, {"a.txt": "old"})
    old = snapshot(out)
    aside = out.with_name(f".{out.name}.old-dead")
    os.rename(out, aside)  # the crash: the old folder aside, the new one not yet in place
    rundir._recover(out)
    assert snapshot(out) == old and debris(out) == []


def test_fallback_swap_without_exchange(tmp_path, monkeypatch):
    """Without renameat2 the two-rename swap still replaces the folder as a whole."""
    monkeypatch.setattr(rundir, "_exchange", lambda a, b: False)
    out = tmp_path / "run"
    write_atomically(out, {"a.txt": "old", "b.txt": "old"})
    write_atomically(out, {"a.txt": "new"})
    assert snapshot(out) == {"a.txt": b"new", MANIFEST: (out / MANIFEST).read_bytes()}
    assert debris(out) == []


# --- refusing --out ---------------------------------------------------------------------------


def test_out_with_a_users_file_is_refused_unless_force(tmp_path):
    """A folder holding a file coupler did not write is refused and left alone; --force
    replaces the whole folder."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "plan.csv").write_text("my own notes\n")
    with pytest.raises(InputError, match="files coupler did not write"):
        write_atomically(out, {"plan.csv": "new"})
    assert (out / "plan.csv").read_text() == "my own notes\n"
    write_atomically(out, {"x.csv": "new"}, force=True)
    assert sorted(snapshot(out)) == [MANIFEST, "x.csv"]


def test_a_file_added_to_a_run_folder_is_refused(tmp_path):
    """A file a user put into a folder coupler wrote is not in the manifest: refused."""
    out = tmp_path / "run"
    write_atomically(out, {"a.csv": "x"})
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        check_out(out)
    check_out(out, force=True)


def test_out_overlapping_an_input_is_refused(tmp_path):
    """--out that is or contains an input is refused even with force; inside an input folder
    it is refused unless force."""
    scen = tmp_path / "scen"
    scen.mkdir()
    (scen / "municipalities.csv").write_text("code\n")
    hh = tmp_path / "data" / "hh.csv"
    hh.parent.mkdir()
    hh.write_text("household_id,size\n")
    for out, inputs in ((scen, [scen]), (tmp_path / "data", [hh]), (tmp_path, [scen])):
        for force in (False, True):
            with pytest.raises(InputError, match="is or contains the input"):
                check_out(out, inputs, force=force)
    with pytest.raises(InputError, match="inside the input folder"):
        check_out(scen / "results", [scen])
    check_out(scen / "results", [scen], force=True)


def test_cli_solve_refuses_the_scenario_folder(tmp_path):
    """``solve --out`` equal to the scenario folder, or a folder with a user's file, exits 2
    before any work and leaves the folder as it was."""
    scen = tmp_path / "scen"
    scen.mkdir()
    src = ROOT / "scenarios" / "nl-2024" / "municipalities.csv"
    (scen / "municipalities.csv").write_bytes(src.read_bytes())
    before = snapshot(scen)
    r = CliRunner().invoke(main, ["solve", "--scenario", str(scen), "--out", str(scen)])
    assert r.exit_code == 2 and "is or contains the input" in r.stderr
    assert "load:" not in r.stderr and snapshot(scen) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "plan.csv").write_text("mine\n")
    r = CliRunner().invoke(main, ["solve", "--out", str(mine)])
    assert r.exit_code == 2 and "did not write" in r.stderr and "--force" in r.stderr
    assert (mine / "plan.csv").read_text() == "mine\n"
    r = CliRunner().invoke(main, ["generate", "--scenario", str(scen), "--out", str(scen)])
    assert r.exit_code == 2 and snapshot(scen) == before


def test_verify_reads_the_exact_ids_of_a_run_folder(tmp_path):
    """``coupler verify --out`` checks the saved assignment, so ids that plan.csv neutralises for
    Excel ('=...') still match the households: the plan passes."""
    inst = f.instance(f.LINE[:3], [3, 3, 3], [1, 2, 1, 1], [f.Crit.job(0, 1)])
    ids = {"H001": '=HYPERLINK("x")', "H002": "@x", "H003": "+x", "H004": "-1+1"}
    hh = inst.households.assign(household_id=inst.households["household_id"].map(ids))
    cr = inst.criteria.assign(household_id=inst.criteria["household_id"].map(ids))
    model = build_model(
        Instance(municipalities=inst.municipalities, households=hh, criteria=cr), Policy()
    )
    write_result(solve(model), model, tmp_path / "run")
    r = CliRunner().invoke(main, ["verify", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0 and "plan OK" in r.output, r.output
