"""Tests for the memory check in :mod:`coupler.model`: a model too large for the machine or the
``ulimit -v`` is refused before it is allocated, in one line."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from coupler import model as model_module
from coupler.errors import CouplerError

ROOT = Path(__file__).parents[1]


def test_estimate_grows_with_households_and_municipalities() -> None:
    """The estimate is the fixed part plus a constant number of bytes per pair."""
    base = model_module.estimate_memory(0, 342)
    one = model_module.estimate_memory(1000, 342) - base
    assert base == model_module.BYTES_FIXED
    assert model_module.estimate_memory(2000, 342) - base == 2 * one
    assert model_module.estimate_memory(1000, 171) - base == one // 2


def test_check_memory_refuses_when_too_little_is_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When less memory is available than the estimate, a CouplerError with one line names
    both figures; with enough, or when nothing can be read, the check passes."""
    need = model_module.estimate_memory(50_000, 342)
    monkeypatch.setattr(model_module, "available_memory", lambda: need - 1)
    with pytest.raises(CouplerError) as caught:
        model_module.check_memory(50_000, 342)
    message = str(caught.value)
    assert "\n" not in message
    assert "50,000 households x 342 municipalities need about" in message
    monkeypatch.setattr(model_module, "available_memory", lambda: need)
    model_module.check_memory(50_000, 342)
    monkeypatch.setattr(model_module, "available_memory", lambda: None)
    model_module.check_memory(50_000, 342)


def test_available_memory_respects_the_address_space_limit() -> None:
    """Under ``ulimit -v`` the available memory is at most the limit."""
    limit = 3 * 2**30
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        "from coupler.model import available_memory\n"
        "print(available_memory())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert 0 <= int(out.stdout) < limit


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_large_batch_under_a_memory_limit_ends_in_one_line() -> None:
    """600,000 persons (about 314,000 households, 4.3 GB estimated) under a 4 GB address-space
    limit: exit code 2, one error line saying how much memory is needed, no traceback, nothing
    written. (200,000 persons, refused here before issue 12's memory work, now fit: about 1.5 GB
    estimated and measured.)"""
    limit = 4 * 2**30

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out_dir = ROOT / "tests" / "_never_written"
    run = subprocess.run(
        [sys.executable, "-m", "coupler", "solve", "--persons", "600000", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=cap,
        timeout=600,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith("error: not enough memory: ")
    assert "GB" in errors[0]
    assert not out_dir.exists()
