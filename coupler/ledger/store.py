"""The ledger database: connection, one transaction per command, the audit log, quota state.

Every command that changes the ledger runs inside :meth:`Ledger.write`: one transaction that
also writes the command's audit rows, so a command is recorded if and only if it took effect.
On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it takes the database's write lock
before reading, so two processes that both check a quota and then charge it are serialised and
the second one sees the first one's charges. On other databases (PostgreSQL) the transaction
locks the open period's row (``SELECT ... FOR UPDATE``) before it reads any quota, which
serialises writers of the same period in the same way.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from coupler.errors import CouplerError
from coupler.ledger import schema as t

#: Environment variable naming the ledger file when --db is not given.
DB_ENV = "COUPLER_DB"
#: Environment variable with a SQLAlchemy URL (e.g. postgresql+psycopg://...) for --db-url.
DB_URL_ENV = "COUPLER_DB_URL"
DEFAULT_DB = "coupler-ledger.sqlite"

# Test hook: pause inside a named step of a write transaction (see Ledger.checkpoint).
_PAUSE_ENV = "COUPLER_LEDGER_PAUSE"  # "<step>:<seconds>"
_PAUSE_FILE_ENV = "COUPLER_LEDGER_PAUSE_FILE"  # touched when the pause starts


class LedgerError(CouplerError):
    """The ledger cannot do what was asked (no open period, quota exhausted, ...)."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def current_user(user: str | None = None) -> str:
    """Who runs the command: ``--user``, else $COUPLER_USER, else the OS user."""
    if user:
        return user
    env = os.environ.get("COUPLER_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:  # no user database entry, e.g. in a container
        return "unknown"


def resolve_url(db: str | os.PathLike[str] | None = None, db_url: str | None = None) -> str:
    """The ledger's SQLAlchemy URL: --db-url, --db, $COUPLER_DB_URL, $COUPLER_DB or the default."""
    if db_url and db:
        raise LedgerError("give either --db or --db-url, not both")
    if db_url:
        return db_url
    if db is None:
        if os.environ.get(DB_URL_ENV):
            return os.environ[DB_URL_ENV]
        db = os.environ.get(DB_ENV) or DEFAULT_DB
    return f"sqlite:///{Path(db).resolve()}"


@dataclass
class Tx:
    """One write transaction of one command; audit rows share its fate."""

    conn: sa.Connection
    who: str
    command: str
    at: str

    def audit(
        self, action: str, subject: str | None = None, detail: Any = None, reason: str | None = None
    ) -> None:
        self.conn.execute(
            t.audit.insert().values(
                at=self.at,
                who=self.who,
                command=self.command,
                action=action,
                subject=subject,
                detail=None if detail is None else json.dumps(detail, default=str, sort_keys=True),
                reason=reason,
            )
        )

    def checkpoint(self, step: str) -> None:
        """Test hook: with COUPLER_LEDGER_PAUSE=step:seconds, sleep here inside the transaction."""
        spec = os.environ.get(_PAUSE_ENV, "")
        name, _, seconds = spec.partition(":")
        if name != step:
            return
        marker = os.environ.get(_PAUSE_FILE_ENV)
        if marker:
            Path(marker).write_text(str(os.getpid()))
        time.sleep(float(seconds or 30))


class Ledger:
    """A handle on one ledger database; create with :meth:`open`."""

    def __init__(self, engine: sa.Engine, user: str | None = None):
        self.engine = engine
        self.user = current_user(user)

    @classmethod
    def open(
        cls,
        db: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        user: str | None = None,
        create: bool = True,
    ) -> Ledger:
        """Open (and create or upgrade) the ledger at a SQLite path or SQLAlchemy URL."""
        url = resolve_url(db, db_url)
        engine = make_engine(url)
        if engine.dialect.name == "sqlite" and not create:
            path = engine.url.database
            if path and not Path(path).exists():
                raise LedgerError(f"no ledger at {path}; open a period first")
        ledger = cls(engine, user)
        ledger.ensure_schema()
        return ledger

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------
    def ensure_schema(self) -> int:
        """Create a new ledger or upgrade an older one; returns the version found before."""
        with self.engine.begin() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("schema_version"):
                if inspector.get_table_names():
                    raise LedgerError("the database holds tables but no coupler ledger")
                t.metadata.create_all(conn)
                conn.execute(
                    t.schema_version.insert().values(version=t.SCHEMA_VERSION, upgraded_at=now())
                )
                return 0
            found = conn.execute(sa.select(t.schema_version.c.version)).scalar_one()
            if found > t.SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger has schema version {found}; this coupler knows up to "
                    f"{t.SCHEMA_VERSION}: upgrade coupler"
                )
            for version in range(found, t.SCHEMA_VERSION):
                t.UPGRADES[version - 1](conn)
            if found < t.SCHEMA_VERSION:
                conn.execute(
                    t.schema_version.update().values(version=t.SCHEMA_VERSION, upgraded_at=now())
                )
            return int(found)

    def version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(t.schema_version.c.version)).scalar_one())

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def write(self, command: str) -> Iterator[Tx]:
        """One transaction for one command: commit on success, roll back on any error."""
        with self.engine.begin() as conn:
            yield Tx(conn=conn, who=self.user, command=command, at=now())

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- queries ------------------------------------------------------------------------------
    def open_period(self, conn: sa.Connection, *, lock: bool = False) -> sa.Row[Any]:
        """The open period; with ``lock`` its row is locked until the transaction ends."""
        q = sa.select(t.periods).where(t.periods.c.status == "open")
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            raise LedgerError(
                "no open period; open one with `coupler period open 2025-H1 --total N`"
            )
        return row

    def period(self, conn: sa.Connection, name: str | None) -> sa.Row[Any]:
        if name is None:
            row = conn.execute(sa.select(t.periods).order_by(t.periods.c.id.desc())).first()
            if row is None:
                raise LedgerError("the ledger has no periods yet")
            open_row = conn.execute(
                sa.select(t.periods).where(t.periods.c.status == "open")
            ).first()
            return open_row or row
        row = conn.execute(sa.select(t.periods).where(t.periods.c.name == name)).first()
        if row is None:
            raise LedgerError(f"no period '{name}' in the ledger")
        return row


def make_engine(url: str) -> sa.Engine:
    """An engine whose transactions take the write lock up front on SQLite (BEGIN IMMEDIATE)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60.0}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event issue BEGIN itself (the driver would defer it).
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise LedgerError(f"cannot use database URL: {exc}") from None


def quota_state(
    conn: sa.Connection, period_id: int, *, reserve: bool = True, municipality: str | None = None
) -> pd.DataFrame:
    """Per municipality: quota, backlog, target (= quota + backlog), coupled, reserved, remaining.

    ``coupled`` sums the charges of the period (approvals, omkoppelingen, confirmed Kansrijke
    Koppelingen); ``reserved`` the expected persons of active provisional couplings (they count
    against the open period only: pass ``reserve=False`` for a closed one);
    ``available`` = target - coupled (what approvals may still charge) and ``remaining`` =
    max(available - reserved, 0) (what a proposal may still plan). ``municipality`` (a code)
    reads that municipality's rows only.
    """

    def only(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return column == municipality if municipality is not None else sa.true()

    q = pd.DataFrame(
        conn.execute(
            sa.select(
                t.quotas.c.municipality,
                t.quotas.c.name,
                t.quotas.c.province,
                t.quotas.c.lat,
                t.quotas.c.lon,
                t.quotas.c.quota,
                t.quotas.c.backlog,
                t.quotas.c.carry,
            )
            .where(t.quotas.c.period_id == period_id)
            .where(only(t.quotas.c.municipality))
            .order_by(t.quotas.c.municipality)
        ).all(),
        columns=["municipality", "name", "province", "lat", "lon", "quota", "backlog", "carry"],
    )
    used = dict(
        conn.execute(
            sa.select(t.charges.c.municipality, sa.func.sum(t.charges.c.persons))
            .where(t.charges.c.period_id == period_id)
            .where(only(t.charges.c.municipality))
            .group_by(t.charges.c.municipality)
        ).all()
    )
    reserved = (
        {}
        if not reserve
        else dict(
            conn.execute(
                sa.select(t.provisional.c.municipality, sa.func.sum(t.provisional.c.reserved))
                .where(t.provisional.c.status == "active")
                .where(only(t.provisional.c.municipality))
                .group_by(t.provisional.c.municipality)
            ).all()
        )
    )
    q["target"] = q["quota"] + q["backlog"]
    q["coupled"] = q["municipality"].map(used).fillna(0).astype("int64")
    q["reserved"] = q["municipality"].map(reserved).fillna(0.0).astype(float)
    q["available"] = q["target"] - q["coupled"]
    # Whole persons: a fraction of a reserved person still blocks that place.
    q["remaining"] = np.floor(q["available"] - q["reserved"] + 1e-9).clip(lower=0).astype("int64")
    return q


def backup(ledger: Ledger, path: str | os.PathLike[str]) -> Path:
    """Copy the ledger to ``path``: a consistent SQLite copy (``.sqlite``/``.db``) or a JSON dump.

    The SQLite copy uses SQLite's online backup API, so it is consistent even while other
    processes write. A ``.json`` path (any database) dumps every table, rows in key order.
    """
    out = Path(path)
    if out.exists():
        raise LedgerError(f"{out} exists; backups never overwrite a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".json":
            dump: dict[str, Any] = {}
            with ledger.engine.connect() as conn:
                for table in t.metadata.sorted_tables:
                    order = list(table.primary_key.columns)
                    rows = conn.execute(sa.select(table).order_by(*order)).mappings().all()
                    dump[table.name] = [dict(r) for r in rows]
            tmp.write_text(json.dumps(dump, indent=1, default=str) + "\n", encoding="utf-8")
        else:
            if ledger.engine.dialect.name != "sqlite":
                raise LedgerError(
                    "a database backup of a server database is a .json dump; use pg_dump for more"
                )
            import sqlite3

            source = ledger.engine.raw_connection()
            try:
                target = sqlite3.connect(tmp)
                try:
                    source.driver_connection.backup(target)  # type: ignore[union-attr]
                finally:
                    target.close()
            finally:
                source.close()
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    with ledger.write("ledger backup") as tx:
        tx.audit("backup", out.name, {"bytes": out.stat().st_size})
    return out
