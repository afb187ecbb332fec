"""Fixtures of the web tests: a demo ledger (SQLite, and PostgreSQL when available), a live
uvicorn server on a free loopback port, and signed-in HTTP clients.

The demo ledger (:func:`coupler.web.demo.build_demo` with 150 persons and a national total of
400) has an approved batch, an omkoppeling request, Kansrijke Koppelingen and a proposed batch
in which some hard criteria must break; its three accounts are a regievoerder, an analist and a
gemeente user for the municipality with the most proposed couplings.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgutil import BACKENDS, pg_database  # noqa: E402
from webutil import free_port, serving  # noqa: E402

from coupler.ledger import Ledger  # noqa: E402
from coupler.web import create_app  # noqa: E402
from coupler.web.app import server_config  # noqa: E402
from coupler.web.demo import Demo, build_demo  # noqa: E402


@dataclass
class Site:
    """A running review screen: its base URL, ledger, demo facts and captured log lines."""

    url: str
    ledger: Ledger
    demo: Demo
    log: list[str]

    def password(self, name: str) -> str:
        return next(p for n, _, p in self.demo.accounts if n == name)

    def role(self, name: str) -> str:
        return next(r for n, r, _ in self.demo.accounts if n == name)


@pytest.fixture(scope="session", params=BACKENDS)
def template(request, tmp_path_factory) -> Iterator[tuple[str, Demo, str | None]]:
    """The demo ledger built once per backend: (backend, demo, PostgreSQL template db name)."""
    folder = tmp_path_factory.mktemp("demo")
    if request.param == "sqlite":
        yield "sqlite", build_demo(folder, persons=150, total=400), None
        return
    with pg_database() as (name, url):
        demo = build_demo(folder, persons=150, total=400, db_url=url)
        yield "postgresql", demo, name


@pytest.fixture
def fresh(template, tmp_path) -> Iterator[tuple[Ledger, Demo]]:
    """A private copy of the demo ledger for one test (writes do not leak between tests)."""
    backend, demo, pg_name = template
    if backend == "sqlite":
        db = tmp_path / "ledger.sqlite"
        shutil.copy(demo.db, db)
        ledger = Ledger.open(db, create=False)
        yield ledger, demo
        ledger.close()
        return
    with pg_database(template=pg_name) as (_, url):
        ledger = Ledger.open(db_url=url)
        yield ledger, demo
        ledger.close()


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


@pytest.fixture
def site(fresh) -> Iterator[Site]:
    """The review screen served by a real uvicorn on a free loopback port (in a thread), with
    every log record of the app and of uvicorn captured."""
    ledger, demo = fresh
    lines: list[str] = []
    handler = _Collect(lines)
    port = free_port()
    config = server_config(
        create_app(ledger), "127.0.0.1", port, log_level="debug", log_config=None
    )
    # Attached after the configuration, so that uvicorn's own set-up cannot detach it.
    loggers = [
        logging.getLogger(n) for n in ("coupler", "uvicorn", "uvicorn.error", "uvicorn.access")
    ]
    old = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        with serving(config) as url:
            yield Site(url, ledger, demo, lines)
    finally:
        for lg, level in old:
            lg.removeHandler(handler)
            lg.setLevel(level)


__all__ = ["Site"]
