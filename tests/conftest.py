"""Fixtures shared by every test module.

``ledger_target`` (from :mod:`pgutil`): an empty ledger location on SQLite and, when
$COUPLER_TEST_PG_URL is set (``source .ci/postgres.sh``), on a fresh PostgreSQL database.
"""

from __future__ import annotations

from pgutil import ledger_target

__all__ = ["ledger_target"]
