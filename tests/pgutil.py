"""Fresh PostgreSQL databases for the ledger and web tests (when $COUPLER_TEST_PG_URL is set).

``.ci/postgres.sh`` starts a throw-away server and exports ``COUPLER_TEST_PG_URL``; each test that
runs against PostgreSQL gets its own database, created from that URL's server and dropped after.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coupler.ledger import Ledger

PG_ENV = "COUPLER_TEST_PG_URL"

#: The backends a ledger test runs on: SQLite always, PostgreSQL when the server is there.
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get(PG_ENV),
            reason="set COUPLER_TEST_PG_URL (source .ci/postgres.sh) to test on PostgreSQL",
        ),
    ),
]


def _admin() -> sa.Engine:
    return sa.create_engine(
        os.environ[PG_ENV], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )


def _url_for(name: str) -> str:
    url = sa.make_url(os.environ[PG_ENV])
    return url.set(database=name).render_as_string(hide_password=False)


def create_database(template: str | None = None) -> tuple[str, str]:
    """A new empty database (or a copy of ``template``); returns (name, URL)."""
    name = "coupler_" + secrets.token_hex(6)
    engine = _admin()
    try:
        with engine.connect() as conn:
            extra = f" TEMPLATE {template}" if template else ""
            conn.exec_driver_sql(f"CREATE DATABASE {name}{extra}")
    finally:
        engine.dispose()
    return name, _url_for(name)


def drop_database(name: str) -> None:
    engine = _admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        engine.dispose()


@contextmanager
def pg_database(template: str | None = None) -> Iterator[tuple[str, str]]:
    """A fresh database for the duration of the block; (name, URL)."""
    name, url = create_database(template)
    try:
        yield name, url
    finally:
        drop_database(name)


@dataclass(frozen=True)
class LedgerTarget:
    """Where a test's ledger lives: a SQLite file or a fresh PostgreSQL database."""

    backend: str
    path: Path | None
    url: str | None

    def open(self, **options: Any) -> Ledger:
        """Open (create) the ledger."""
        return Ledger.open(self.path, db_url=self.url, **options)

    @property
    def args(self) -> list[str]:
        """The command-line options that name this ledger."""
        return ["--db", str(self.path)] if self.path is not None else ["--db-url", str(self.url)]


@pytest.fixture(params=BACKENDS)
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerTarget]:
    """An empty ledger location on SQLite and, when $COUPLER_TEST_PG_URL is set, PostgreSQL."""
    if request.param == "sqlite":
        yield LedgerTarget("sqlite", tmp_path / "l.sqlite", None)
        return
    with pg_database() as (_, url):
        yield LedgerTarget("postgresql", None, url)
