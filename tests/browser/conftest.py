"""Fixtures of the browser tests."""

from __future__ import annotations

import pytest

from coupler import generate_cases, load_instance, load_scenario


@pytest.fixture(scope="session")
def tiny_instance():
    """A generated batch of 120 persons (seed 3) on the national scenario: every municipality is
    drawn on the map, and it solves in a few seconds."""
    municipalities, _ = load_scenario()
    hh, cr = generate_cases(municipalities, persons=120, seed=3)
    return load_instance(hh, cr)
