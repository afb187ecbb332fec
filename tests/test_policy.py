"""The policy file: defaults, rejected keys and values, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from coupler import Policy, PolicyError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_empty_file_equals_defaults(tmp_path):
    """An empty policy file gives exactly Policy()."""
    assert Policy.from_file(write(tmp_path, "")) == Policy()


def test_partial_file_keeps_other_defaults(tmp_path):
    """A file naming one key changes that key only."""
    p = Policy.from_file(write(tmp_path, "[hard]\nradius_km = 30\n"))
    assert p.hard.radius_km == 30.0
    assert p.with_(hard={"radius_km": 50.0}) == Policy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[hardd]\nradius_km = 5\n", "unknown table [hardd]"),
        ("[hard]\nradius = 5\n", "unknown key [hard] radius"),
        ("[hard]\nradius_km = -5\n", "policy [hard] radius_km must be > 0; got -5"),
        ("[weights]\nlabour = -1\n", "policy [weights] labour must be >= 0; got -1"),
        ('[quota]\ntolerance = "lots"\n', "policy [quota] tolerance must be a number; got 'lots'"),
        ('[soft]\naggregation = "max"\n', "policy [soft] aggregation must be one of"),
        (
            "[hard]\nwork_requires_payslip = 1\n",
            "policy [hard] work_requires_payslip must be true or false",
        ),
        ('[solver]\nbackend = "gurobi"\n', "policy [solver] backend must be one of"),
        ("[hard\n", "is not valid TOML"),
    ],
)
def test_rejected_with_documented_message(tmp_path, text, message):
    """Unknown tables, unknown keys and bad values are each rejected in the documented shape."""
    with pytest.raises(PolicyError) as exc:
        Policy.from_file(write(tmp_path, text))
    assert message in str(exc.value)
    assert "policy.toml" in str(exc.value)


def test_all_problems_reported_together(tmp_path):
    """Every bad value in one file is reported in one error, and so is every unknown key."""
    with pytest.raises(PolicyError) as exc:
        Policy.from_file(write(tmp_path, "[hard]\nradius_km = -5\n[weights]\nazc = -2\n"))
    assert "radius_km must be > 0" in str(exc.value) and "azc must be >= 0" in str(exc.value)
    with pytest.raises(PolicyError) as exc:
        Policy.from_file(write(tmp_path, "[hard]\nfoo = 1\n[weights]\nbar = 2\n"))
    assert "[hard] foo" in str(exc.value) and "[weights] bar" in str(exc.value)


def test_round_trip_to_dict_from_dict():
    """to_dict -> from_dict reproduces a non-default policy, bands included."""
    p = Policy().with_(
        hard={"radius_km": 35.0, "priority": ["family", "medical", "study", "work"]},
        weights={"participation": 2.5},
        quota={
            "tolerance": 0.1,
            "bands": [{"level": "province", "name": "Utrecht", "min_fill": 0.9}],
        },
    )
    assert Policy.from_dict(p.to_dict()) == p
    assert p.quota.bands[0].max_fill == float("inf")


def test_missing_file_is_a_policy_error(tmp_path):
    """A missing policy file is a PolicyError naming the file, not an OSError."""
    with pytest.raises(PolicyError, match="nope.toml: file not found"):
        Policy.from_file(tmp_path / "nope.toml")
