"""Largest-remainder quotas and great-circle distances."""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler import load_scenario
from coupler.geo import distance_matrix, haversine_km
from coupler.quota import DEFAULT_NATIONAL_TOTAL, proportional_quotas


@settings(derandomize=True, deadline=None, max_examples=200)
@given(
    st.lists(st.integers(0, 1_000_000), min_size=1, max_size=60).filter(lambda p: sum(p) > 0),
    st.integers(0, 100_000),
)
def test_largest_remainder_is_exact_and_proportional(population, total):
    """Quotas sum exactly to the total and each is within 1 person of its exact share."""
    q = proportional_quotas(population, total)
    assert q.dtype == np.int64 and int(q.sum()) == total
    share = np.array(population, dtype=float) * total / sum(population)
    assert (np.abs(q - share) < 1.0 + 1e-9).all()
    assert (q >= np.floor(share - 1e-9)).all()


def test_national_default_total():
    """The embedded scenario's quotas sum to 28,000 by default and to --total when given."""
    m, _ = load_scenario()
    assert DEFAULT_NATIONAL_TOTAL == 28_000
    assert len(m) == 342 and int(m["quota"].sum()) == 28_000
    assert int(load_scenario(total=17_600)[0]["quota"].sum()) == 17_600


def test_haversine_against_geodesic():
    """Great-circle km agree with geopy's WGS84 geodesic within 0.5 % over all pairs of 40 real
    municipalities (and exactly 0 on the diagonal)."""
    m, _ = load_scenario()
    sample = m.sample(40, random_state=1)
    lat, lon = sample["lat"].to_numpy(), sample["lon"].to_numpy()
    d = distance_matrix(lat, lon)
    assert np.allclose(np.diag(d), 0.0) and np.allclose(d, d.T)
    worst = 0.0
    for i in range(len(sample)):
        for j in range(i + 1, len(sample)):
            g = geodesic((lat[i], lon[i]), (lat[j], lon[j])).km
            worst = max(worst, abs(d[i, j] - g) / g)
    assert worst < 0.005, worst


def test_haversine_known_distance():
    """Amsterdam (Dam) to Eindhoven (Markt) is about 111.5 km as the crow flies."""
    assert float(haversine_km(52.3731, 4.8926, 51.4381, 5.4781)) == pytest.approx(111.5, abs=1.0)
