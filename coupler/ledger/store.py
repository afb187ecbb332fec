"""The ledger database: connection, one transaction per command, the audit log, quota state.

Every command that changes the ledger runs inside :meth:`Ledger.write`: one transaction that
also writes the command's audit rows, so a command is recorded if and only if it took effect.
On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it takes the database's write lock
before reading, so two processes that both check a quota and then charge it are serialised and
the second one sees the first one's charges. On other databases (PostgreSQL) the transaction
locks the open period's row (``SELECT ... FOR UPDATE``) before it reads any quota, which
serialises writers of the same period in the same way.

Reads (:meth:`Ledger.read`: web pages, ``batch show``, ``period status``, opening a ledger that
needs no upgrade) take no write lock: on SQLite they begin a deferred transaction, and the ledger
runs in WAL mode, so a read sees the last committed state and never waits for a write in
progress, nor a write for reads. (A read that has to create a missing table, e.g.
:func:`coupler.ledger.housing.ensure_table` on a ledger opened before the table existed, takes
the write lock for that moment.)
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sqlite3
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
from coupler.jsonsafe import dumps
from coupler.ledger import schema as t

#: Environment variable naming the ledger file when --db is not given.
DB_ENV = "COUPLER_DB"
#: Environment variable with a SQLAlchemy URL (e.g. postgresql+psycopg://...) for --db-url.
DB_URL_ENV = "COUPLER_DB_URL"
DEFAULT_DB = "coupler-ledger.sqlite"

#: Execution option marking a connection of Ledger.read (a deferred transaction on SQLite).
_READ_ONLY = "coupler_read_only"

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
                detail=None if detail is None else dumps(detail, sort_keys=True),
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
        """Open (and upgrade) the ledger at a SQLite path or SQLAlchemy URL.

        Parameters
        ----------
        create
            Create a new ledger when the file (or database) has none. Without it a missing
            ledger is an error naming the absolute path; only ``coupler period open`` and
            ``coupler ledger init`` create one.

        Raises
        ------
        LedgerError
            One line naming the file or URL: missing, in a missing folder, empty (0 bytes),
            truncated, damaged, not SQLite, another program's database, or unreachable.
        """
        url = resolve_url(db, db_url)
        engine = make_engine(url)
        where = describe(engine)
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            _check_sqlite_file(Path(str(engine.url.database)), create=create)
        ledger = cls(engine, user)
        try:
            ledger.ensure_schema(create=create)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            raise LedgerError(f"cannot use the ledger {where}: {db_error(exc)}") from None
        except LedgerError:
            engine.dispose()
            raise
        ledger.use_wal()
        return ledger

    def use_wal(self) -> None:
        """Switch a SQLite ledger to WAL mode (kept in the file; a no-op once set), so that
        readers and the writer do not block each other. Only done to a coupler ledger, never to
        a file :meth:`open` refused."""
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            # Outside any transaction (the driver is in autocommit mode, see make_engine).
            raw.driver_connection.execute("PRAGMA journal_mode = WAL")  # type: ignore[union-attr]
        except sqlite3.OperationalError:
            pass  # e.g. a read-only folder: keep the rollback journal; reads still defer
        finally:
            raw.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------
    def ensure_schema(self, *, create: bool = True) -> int:
        """Create a new ledger (with ``create``) or upgrade an older one; the version found.

        A ledger that is up to date is only read (no write lock): opening it for a read does not
        wait for another process's write.
        """
        with self.read() as conn:
            inspector = sa.inspect(conn)
            names = set(inspector.get_table_names())
            if (
                "schema_version" in names
                and not {tb.name for tb in t.metadata.sorted_tables} - names
            ):
                found = int(conn.execute(sa.select(t.schema_version.c.version)).scalar_one())
                if found == t.SCHEMA_VERSION:
                    return found
        with self.engine.begin() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("schema_version"):
                if inspector.get_table_names():
                    raise LedgerError(
                        f"{describe(self.engine)} holds tables but no coupler ledger "
                        "(another program's database?)"
                    )
                if not create:
                    raise LedgerError(
                        f"no coupler ledger in {describe(self.engine)}; create one with "
                        "`coupler period open` or `coupler ledger init`"
                    )
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
            # Tables added whole by a module (e.g. batch_context) are created where missing;
            # existing tables are never altered here.
            t.metadata.create_all(conn)
            if found < t.SCHEMA_VERSION:
                conn.execute(
                    t.schema_version.update().values(version=t.SCHEMA_VERSION, upgraded_at=now())
                )
            # Tables that are wholly new (no existing table changes) need no version step.
            t.metadata.create_all(conn, checkfirst=True)
            return int(found)

    def version(self) -> int:
        with self.read() as conn:
            return int(conn.execute(sa.select(t.schema_version.c.version)).scalar_one())

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def write(self, command: str) -> Iterator[Tx]:
        """One transaction for one command: commit on success, roll back on any error."""
        with self.engine.begin() as conn:
            yield Tx(conn=conn, who=self.user, command=command, at=now())

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection for reading: on SQLite a deferred transaction that takes no write lock
        and sees one consistent state. Writes belong in :meth:`write`."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_READ_ONLY: True})
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


def describe(engine: sa.Engine) -> str:
    """Where the ledger is, for messages: the absolute file path or the URL without password."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def db_error(exc: BaseException) -> str:
    """The first line of a database driver's message, without SQLAlchemy's SQL and links."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    """One clear line for a ledger file that is missing, empty, truncated or not SQLite."""
    if not path.parent.is_dir():
        raise LedgerError(f"the folder {path.parent} of the ledger {path} does not exist")
    if path.is_dir():
        raise LedgerError(f"the ledger {path} is a folder, not a file")
    if not path.exists():
        if create:
            return
        raise LedgerError(
            f"no ledger at {path}; check --db or $COUPLER_DB, or create one with "
            "`coupler period open` or `coupler ledger init`"
        )
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise LedgerError(
            f"the ledger {path} is empty (0 bytes), not a coupler ledger; restore it from a "
            "backup or remove it"
        )
    if not header.startswith(_SQLITE_MAGIC):
        raise LedgerError(f"{path} is not a SQLite database, so not a coupler ledger")
    if len(header) < 100:
        raise LedgerError(
            f"the ledger {path} is truncated ({size} bytes); restore it from a backup"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[24:28] == header[92:96]
    wal = path.with_name(path.name + "-wal")
    if counter_valid and size < page_size * pages and not wal.exists():
        raise LedgerError(
            f"the ledger {path} is truncated ({size:,} of {page_size * pages:,} bytes); "
            "restore it from a backup"
        )


def make_engine(url: str) -> sa.Engine:
    """An engine for the ledger at ``url``.

    On SQLite (WAL mode is set by :meth:`Ledger.use_wal`), a transaction takes the write lock
    up front (``BEGIN IMMEDIATE``), except one of :meth:`Ledger.read`, which is
    deferred (``BEGIN``): it takes no lock until it reads, and in WAL mode only a snapshot.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60.0}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event issue BEGIN itself (the driver would defer it).
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            read = conn.get_execution_options().get(_READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        if isinstance(exc, sa.exc.ArgumentError):
            why = "not a database URL (e.g. postgresql+psycopg2://user@host:5432/coupler)"
        elif isinstance(exc, ValueError):
            why = f"is the port a number? ({exc})"
        else:
            why = str(exc)
        raise LedgerError(f"cannot use database URL: {why}") from None


def select_frame(conn: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    """The rows of ``query`` as a DataFrame with one column per selected column, named by its
    label (``.label(...)`` renames one); the columns are there also when no row matches."""
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


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

    q = select_frame(
        conn,
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
        .order_by(t.quotas.c.municipality),
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


def check(ledger: Ledger) -> list[str]:
    """Violations of the ledger's integrity, one line each; empty when the ledger is sound.

    Checks, in order: SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``; that the
    charges of each period and municipality sum to the persons of its approved couplings; that
    every change has its audit row (each period opened and closed, batch proposed and approved,
    provisional coupling, permit decision and omkoppeling); and that no municipality is charged
    more than its quota + backlog (when that is positive).
    """
    problems: list[str] = []
    with ledger.read() as conn:
        if ledger.engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("PRAGMA integrity_check").all()
            lines = [x for r in rows for x in str(r[0]).splitlines() if x.strip()]
            if lines != ["ok"]:
                more = [f"... and {len(lines) - 5} more"] if len(lines) > 5 else []
                return [f"SQLite integrity_check: {x}" for x in lines[:5]] + more
            fk = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            problems += [f"row {r[1]} of table {r[0]} points to a missing {r[2]}" for r in fk[:10]]
        problems += _check_charges(conn)
        problems += _check_audit(conn)
        problems += _check_quota(conn)
    return problems


def _check_charges(conn: sa.Connection) -> list[str]:
    c, b, ch = t.couplings, t.batches, t.charges
    approved = conn.execute(
        sa.select(b.c.period_id, c.c.municipality, sa.func.sum(c.c.persons))
        .select_from(c.join(b, c.c.batch_id == b.c.id))
        .where(c.c.status == "approved", c.c.municipality.is_not(None))
        .group_by(b.c.period_id, c.c.municipality)
    ).all()
    charged = conn.execute(
        sa.select(ch.c.period_id, ch.c.municipality, sa.func.sum(ch.c.persons)).group_by(
            ch.c.period_id, ch.c.municipality
        )
    ).all()
    want = {(int(p), str(m)): int(n) for p, m, n in approved}
    have = {(int(p), str(m)): int(n) for p, m, n in charged if int(n) != 0}
    names = dict(conn.execute(sa.select(t.periods.c.id, t.periods.c.name)).all())
    return [
        f"period {names.get(p, p)}, {m}: charges {have.get((p, m), 0)} persons, approved "
        f"couplings {want.get((p, m), 0)} persons"
        for p, m in sorted(set(want) | set(have))
        if want.get((p, m), 0) != have.get((p, m), 0)
    ]


def _check_audit(conn: sa.Connection) -> list[str]:
    logged = {
        (str(a), str(s)) for a, s in conn.execute(sa.select(t.audit.c.action, t.audit.c.subject))
    }
    need: list[tuple[str, str, str]] = []
    for name, status in conn.execute(sa.select(t.periods.c.name, t.periods.c.status)):
        need.append(("open", name, f"period {name} opened"))
        if status == "closed":
            need.append(("close", name, f"period {name} closed"))
    for bid, kind, status in conn.execute(
        sa.select(t.batches.c.id, t.batches.c.kind, t.batches.c.status)
    ):
        if kind == "batch":
            need.append(("propose", f"batch {bid}", f"batch {bid} proposed"))
        if kind in ("batch", "replan") and status == "approved":
            need.append(("approve", f"batch {bid}", f"batch {bid} approved"))
    for h, decision in conn.execute(
        sa.select(t.omkoppelingen.c.household_id, t.omkoppelingen.c.decision)
    ):
        need.append((f"omkoppel-{decision}", h, f"an omkoppeling decision ({decision})"))
    for h, status in conn.execute(sa.select(t.provisional.c.household_id, t.provisional.c.status)):
        need.append(("provisional", h, "a provisional coupling"))
        if status == "confirmed":
            need.append(("permit-confirmed", h, "a confirmed provisional coupling"))
    missing = [what for action, subject, what in need if (action, str(subject)) not in logged]
    # Household ids are personal: name the change, never the id.
    return [f"no audit row for {what}" for what in missing[:20]] + (
        [f"... and {len(missing) - 20} more changes without an audit row"]
        if len(missing) > 20
        else []
    )


def _check_quota(conn: sa.Connection) -> list[str]:
    out = []
    for pid, name in conn.execute(sa.select(t.periods.c.id, t.periods.c.name)):
        q = quota_state(conn, pid, reserve=False)
        over = q[(q["coupled"] > q["target"]) & (q["coupled"] > 0)]
        out += [
            f"period {name}, {r.municipality}: {int(r.coupled)} persons charged, quota + backlog "
            f"{int(r.target)}"
            for r in over.itertuples(index=False)
        ]
    return out


def backup(ledger: Ledger, path: str | os.PathLike[str]) -> Path:
    """Copy the ledger to ``path``: a consistent SQLite copy (``.sqlite``/``.db``) or a JSON dump.

    The SQLite copy uses SQLite's online backup API, so it is consistent even while other
    processes write. A ``.json`` path (any database) dumps every table, rows in key order.
    """
    out = Path(path)
    if out.exists():
        raise LedgerError(f"{out} exists; backups never overwrite a file")
    problems = check(ledger)
    if problems:
        raise LedgerError(
            f"the ledger {describe(ledger.engine)} fails its check ({problems[0]}"
            f"{f'; and {len(problems) - 1} more' if len(problems) > 1 else ''}); "
            "run `coupler ledger check`; no backup was written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".json":
            dump: dict[str, Any] = {}
            with ledger.read() as conn:
                for table in t.metadata.sorted_tables:
                    order = list(table.primary_key.columns)
                    rows = conn.execute(sa.select(table).order_by(*order)).mappings().all()
                    dump[table.name] = [dict(r) for r in rows]
            tmp.write_text(dumps(dump, indent=1) + "\n", encoding="utf-8")
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
