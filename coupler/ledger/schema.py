"""The ledger's tables (SQLAlchemy Core) and its versioned upgrades.

The schema carries a version in ``schema_version``. A new ledger is created at
:data:`SCHEMA_VERSION`; an older one is upgraded step by step by :func:`upgrade`, each step in the
same transaction as the version bump, so a failed upgrade leaves the file as it was.

Adding a version: append a function to :data:`UPGRADES` that takes a connection to a database at
version ``n`` and brings it to ``n + 1`` (create the new tables, ``ALTER TABLE ... ADD COLUMN``
for new columns), change the tables below to the new shape and raise :data:`SCHEMA_VERSION`.
A step must only use DDL written in the step itself or tables it creates whole, so that it keeps
working when the current tables change again.

Privacy (DOMAIN.md section 9): rows name households only by their pseudonymous id and keep only
what the ledger needs: persons, municipality, hard-criterion kind and municipality, grant
probability. No names, no nationality, no soft attributes.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("upgraded_at", sa.String(32), nullable=False),
)

periods = sa.Table(
    "periods",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(16), nullable=False, unique=True),  # e.g. 2025-H1
    sa.Column("total", sa.Integer, nullable=False),  # national total, persons
    sa.Column("months", sa.Integer, nullable=False, default=6),
    sa.Column("status", sa.String(8), nullable=False),  # open | closed
    sa.Column("scenario", sa.String(1024)),  # scenario folder; NULL = embedded nl-2024
    sa.Column("opened_at", sa.String(32), nullable=False),
    sa.Column("closed_at", sa.String(32)),
)

quotas = sa.Table(
    "quotas",
    metadata,
    sa.Column("period_id", sa.Integer, sa.ForeignKey("periods.id"), primary_key=True),
    sa.Column("municipality", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("province", sa.String(64), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("quota", sa.Integer, nullable=False),
    # Persons carried over from the previous period: + deficit (achterstand), - surplus.
    sa.Column("backlog", sa.Integer, nullable=False),
    # Set when the period closes: quota + backlog - coupled, the next period's backlog.
    sa.Column("carry", sa.Integer),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("period_id", sa.Integer, sa.ForeignKey("periods.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # batch | replan
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # proposed | approved | expired
    sa.Column("month", sa.Integer),
    sa.Column("pacing", sa.Text),  # JSON: factor, slack, fallback
    sa.Column("households", sa.Integer, nullable=False),
    sa.Column("persons", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text),  # JSON of Result.to_json()
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("decided_at", sa.String(32)),
    sa.Column("decided_by", sa.String(64)),
    sa.UniqueConstraint("period_id", "checksum", name="uq_batch_checksum"),
)

couplings = sa.Table(
    "couplings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("persons", sa.Integer, nullable=False),
    sa.Column("proposed", sa.String(8)),  # municipality the tool proposed (NULL: uncoupled)
    sa.Column("municipality", sa.String(8)),  # current municipality (after overrides, omkoppeling)
    # proposed | approved | uncoupled | expired
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("broken", sa.String(64)),  # kinds of broken hard criteria, ';'-separated
    sa.Column("score", sa.Float),
    sa.Column("reason", sa.Text),
    sa.Column("decided_at", sa.String(32)),
    sa.Column("decided_by", sa.String(64)),
)
sa.Index("ix_couplings_household", couplings.c.household_id)
sa.Index("ix_couplings_batch", couplings.c.batch_id)

criteria = sa.Table(
    "criteria",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id")),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("municipality", sa.String(8), nullable=False),
    sa.Column("hard", sa.Boolean, nullable=False),
    sa.Column("provisional_id", sa.Integer),  # v2
)

charges = sa.Table(
    "charges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("period_id", sa.Integer, sa.ForeignKey("periods.id"), nullable=False),
    sa.Column("municipality", sa.String(8), nullable=False),
    sa.Column("persons", sa.Integer, nullable=False),  # + charged, - released
    sa.Column("source", sa.String(16), nullable=False),  # approve | omkoppel | kansrijk
    sa.Column("coupling_id", sa.Integer),
    sa.Column("at", sa.String(32), nullable=False),
)
sa.Index("ix_charges_period", charges.c.period_id, charges.c.municipality)

omkoppelingen = sa.Table(
    "omkoppelingen",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("period_id", sa.Integer, sa.ForeignKey("periods.id"), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("coupling_id", sa.Integer),
    sa.Column("eligible", sa.Boolean, nullable=False),
    sa.Column("rules", sa.Text, nullable=False),  # JSON: rule -> {passed, reason}
    sa.Column("decision", sa.String(16), nullable=False),  # recoupled | stays | rejected
    sa.Column("old_municipality", sa.String(8)),
    sa.Column("new_municipality", sa.String(8)),
    sa.Column("job_municipality", sa.String(8)),
    sa.Column("distance_km", sa.Float),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("who", sa.String(64), nullable=False),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Column("reason", sa.Text),
)

# --- version 2: Kansrijke Koppeling ------------------------------------------------------------

provisional = sa.Table(
    "provisional",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("persons", sa.Integer, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("reserved", sa.Float, nullable=False),  # probability x persons
    sa.Column("municipality", sa.String(8), nullable=False),
    # active | confirmed | replanned | refused
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("coupling_id", sa.Integer),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("decided_at", sa.String(32)),
)

#: The version a new ledger is created at and an older one upgraded to.
SCHEMA_VERSION = 2


def _v1_to_v2(conn: sa.Connection) -> None:
    """Version 2 adds Kansrijke Koppeling: the provisional table and criteria.provisional_id."""
    conn.exec_driver_sql(
        "CREATE TABLE provisional ("
        " id INTEGER NOT NULL PRIMARY KEY, household_id VARCHAR(64) NOT NULL,"
        " persons INTEGER NOT NULL, probability FLOAT NOT NULL, reserved FLOAT NOT NULL,"
        " municipality VARCHAR(8) NOT NULL, status VARCHAR(12) NOT NULL, coupling_id INTEGER,"
        " created_at VARCHAR(32) NOT NULL, created_by VARCHAR(64) NOT NULL,"
        " decided_at VARCHAR(32))"
        if conn.dialect.name == "sqlite"
        else "CREATE TABLE provisional ("
        " id SERIAL PRIMARY KEY, household_id VARCHAR(64) NOT NULL,"
        " persons INTEGER NOT NULL, probability FLOAT NOT NULL, reserved FLOAT NOT NULL,"
        " municipality VARCHAR(8) NOT NULL, status VARCHAR(12) NOT NULL, coupling_id INTEGER,"
        " created_at VARCHAR(32) NOT NULL, created_by VARCHAR(64) NOT NULL,"
        " decided_at VARCHAR(32))"
    )
    conn.exec_driver_sql("ALTER TABLE criteria ADD COLUMN provisional_id INTEGER")


#: UPGRADES[n - 1] brings a ledger from version n to n + 1.
UPGRADES: tuple[Callable[[sa.Connection], None], ...] = (_v1_to_v2,)

assert len(UPGRADES) == SCHEMA_VERSION - 1


def v1_tables() -> list[sa.Table]:
    """The tables of version 1 in their version-1 shape (used to test the upgrade path)."""
    old = sa.MetaData()
    out = []
    for table in metadata.sorted_tables:
        if table.name == "provisional":
            continue
        cols = [c._copy() for c in table.columns if c.name != "provisional_id"]
        cons = [
            sa.UniqueConstraint(*[c.name for c in u.columns], name=u.name)
            for u in table.constraints
            if isinstance(u, sa.UniqueConstraint)
        ]
        out.append(sa.Table(table.name, old, *cols, *cons))
    return out
