"""Distances between municipalities' reference points.

Great-circle (haversine) distance on a sphere of the mean Earth radius, vectorised over all pairs.
Over Dutch distances it differs from the WGS84 geodesic by well under 0.5 % (checked against
geopy in the tests); a user-supplied matrix (e.g. road km) overrides it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> np.ndarray:
    """Great-circle distance in km, broadcasting over its arguments."""
    p1, l1, p2, l2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lat1, lon1, lat2, lon2))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_matrix(lat: npt.ArrayLike, lon: npt.ArrayLike) -> np.ndarray:
    """All-pairs great-circle distances (km) between points, as a symmetric float64 matrix."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    return haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
