"""The review screen's session-signing secret and its signed-out sessions, kept in the ledger.

Every ``coupler serve`` process on one ledger signs its session cookies with the same random
secret, made once and stored here, so a restart signs nobody out and two server processes share
their sessions. A session that signs out is listed until its cookie would have expired anyway, so
every process refuses it. :func:`rotate_secret` (``coupler user rotate-secret``) replaces the
secret: every session on every server is signed out at its next request.

Two tables of their own, created with the ledger (or, in a ledger made before them, by
:func:`prepare`); no existing table changes. The secret is as sensitive as the ledger itself:
whoever reads it can forge a session.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa

from coupler.ledger.schema import metadata
from coupler.ledger.store import Ledger

#: The one row (id 1) holding the secret, hex, and when it was made.
web_secret = sa.Table(
    "web_secret",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

#: Signed-out session ids, until (epoch seconds) their cookies expire anyway.
web_revoked = sa.Table(
    "web_revoked",
    metadata,
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("until", sa.Float, nullable=False),
)

#: Random bytes in a secret.
SECRET_BYTES = 32
_ROW = 1


def prepare(ledger: Ledger) -> bytes:
    """Make the tables (if this ledger predates them) and the secret (if there is none yet).

    Safe to run from several processes at once: the secret is made exactly once.

    Returns
    -------
    bytes
        The secret.
    """
    with ledger.read() as conn:
        names = set(sa.inspect(conn).get_table_names())
    if not {web_secret.name, web_revoked.name} <= names:
        with ledger.write("web prepare") as tx:
            metadata.create_all(tx.conn, tables=[web_secret, web_revoked], checkfirst=True)
    found = current_secret(ledger)
    return found if found is not None else _store(ledger, rotate=False)


def current_secret(ledger: Ledger) -> bytes | None:
    """The secret in the ledger now, or None when none was made yet."""
    with ledger.read() as conn:
        value = conn.execute(sa.select(web_secret.c.secret).where(web_secret.c.id == _ROW)).scalar()
    return None if value is None else bytes.fromhex(value)


def rotate_secret(ledger: Ledger) -> None:
    """Replace the secret with a new random one: every session everywhere is signed out.

    The audit records the rotation, never the secret.
    """
    prepare(ledger)
    _store(ledger, rotate=True)


def _store(ledger: Ledger, *, rotate: bool) -> bytes:
    new = secrets.token_bytes(SECRET_BYTES)
    try:
        with ledger.write("user rotate-secret" if rotate else "web prepare") as tx:
            # Read inside the write: another process may have made the secret meanwhile.
            old = tx.conn.execute(
                sa.select(web_secret.c.secret).where(web_secret.c.id == _ROW)
            ).scalar()
            if old is not None and not rotate:
                return bytes.fromhex(old)
            values = {"secret": new.hex(), "created_at": tx.at}
            if old is None:
                tx.conn.execute(web_secret.insert().values(id=_ROW, **values))
            else:
                tx.conn.execute(web_secret.update().where(web_secret.c.id == _ROW).values(values))
                # Every session is signed out now; the list has nothing left to refuse.
                tx.conn.execute(web_revoked.delete())
            tx.audit("rotate-secret" if rotate else "make-secret", "review screen")
    except sa.exc.IntegrityError:
        # PostgreSQL: a concurrent first start inserted the row first; use that one.
        if rotate:
            raise
        made = current_secret(ledger)
        assert made is not None
        return made
    return new


def revoke(ledger: Ledger, sid: str, until: float) -> None:
    """List session ``sid`` as signed out until ``until`` (epoch seconds); forget expired ones."""
    try:
        with ledger.write("web sign-out") as tx:
            tx.conn.execute(web_revoked.delete().where(web_revoked.c.until < time.time()))
            listed = tx.conn.execute(
                sa.select(web_revoked.c.sid).where(web_revoked.c.sid == sid)
            ).first()
            if listed is None:
                tx.conn.execute(web_revoked.insert().values(sid=sid, until=until))
    except sa.exc.IntegrityError:
        pass  # PostgreSQL: the same session signed out twice at once; it is listed.


def lookup(ledger: Ledger, sid: str) -> tuple[bytes | None, bool]:
    """The secret now (None when none was made yet) and whether session ``sid`` signed out, in
    one read (it runs on every request)."""
    with ledger.read() as conn:
        value = conn.execute(sa.select(web_secret.c.secret).where(web_secret.c.id == _ROW)).scalar()
        listed = conn.execute(sa.select(web_revoked.c.sid).where(web_revoked.c.sid == sid)).first()
    return (None if value is None else bytes.fromhex(value)), listed is not None


__all__ = ["current_secret", "lookup", "prepare", "revoke", "rotate_secret"]
