"""Great-circle distances (coupler.geo)."""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import geodesic

from coupler.geo import distance_matrix, haversine_km


def test_haversine_against_geodesic(nl_municipalities):
    """Great-circle km agree with geopy's WGS84 geodesic within 0.5 % over all pairs of 40 real
    municipalities (and exactly 0 on the diagonal)."""
    sample = nl_municipalities.sample(40, random_state=1)
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
