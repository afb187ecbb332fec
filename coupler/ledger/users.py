"""Accounts of the review screen: users, roles and argon2 password hashes, kept in the ledger.

Roles (issue 13):

* ``regievoerder`` reads everything and decides (approve, override, omkoppeling, Kansrijke
  Koppeling);
* ``analist`` reads everything and decides nothing;
* ``gemeente:GM0363`` reads only couplings to its own municipality and decides nothing.

Passwords are hashed with argon2id (argon2-cffi, a memory-hard KDF); the ledger never holds a
password. Every change to an account is one ledger transaction with its audit row; the audit row
names the account, never the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from coupler.ledger.schema import metadata
from coupler.ledger.store import Ledger, LedgerError, Tx

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),  # regievoerder | analist | gemeente:GMxxxx
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("changed_at", sa.String(32), nullable=False),
)

ROLES = ("regievoerder", "analist")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_GEMEENTE = re.compile(r"gemeente:(GM\d{4})", re.IGNORECASE)
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verifying an unknown name costs as much as a known one, so timing does not reveal names.
_DUMMY_HASH = _hasher.hash("coupler-no-such-user")


@dataclass(frozen=True)
class User:
    """A signed-in account: its name and role, and what the role may do."""

    name: str
    role: str

    @property
    def municipality(self) -> str | None:
        """The municipality code of a ``gemeente:`` user, else None (sees everything)."""
        m = _GEMEENTE.fullmatch(self.role)
        return m.group(1).upper() if m else None

    @property
    def can_decide(self) -> bool:
        """Only a regievoerder approves, overrides and decides queue items."""
        return self.role == "regievoerder"


def check_role(role: str, codes: set[str] | None = None) -> str:
    """The canonical role for ``role``; raises :class:`LedgerError` for an unknown one."""
    text = role.strip()
    if text.lower() in ROLES:
        return text.lower()
    m = _GEMEENTE.fullmatch(text)
    if m:
        code = m.group(1).upper()
        if codes is not None and code not in codes:
            raise LedgerError(f"--role {text}: unknown municipality code {code}")
        return f"gemeente:{code}"
    raise LedgerError(f"--role must be regievoerder, analist or gemeente:GMxxxx; got '{role[:40]}'")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise LedgerError(
            "a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter "
            "or digit"
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise LedgerError(f"a password needs at least {MIN_PASSWORD} characters")


def _municipality_codes(tx: Tx) -> set[str]:
    from coupler.ledger import schema as t

    return {c for (c,) in tx.conn.execute(sa.select(t.quotas.c.municipality).distinct())}


def add_user(ledger: Ledger, name: str, role: str, password: str) -> User:
    """Create an active account; a ``gemeente:`` role must name a municipality of the ledger."""
    _check_name(name)
    _check_password(password)
    digest = _hasher.hash(password)
    with ledger.write("user add") as tx:
        codes = _municipality_codes(tx)
        canonical = check_role(role, codes or None)
        if tx.conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
            raise LedgerError(f"user '{name}' exists; use `coupler user password` to reset it")
        tx.conn.execute(
            users.insert().values(
                name=name,
                role=canonical,
                password_hash=digest,
                active=True,
                created_at=tx.at,
                changed_at=tx.at,
            )
        )
        tx.audit("user-add", name, {"role": canonical})
    return User(name, canonical)


def _update(ledger: Ledger, command: str, name: str, values: dict[str, Any]) -> None:
    with ledger.write(command) as tx:
        done = tx.conn.execute(
            users.update().where(users.c.name == name).values(changed_at=tx.at, **values)
        )
        if done.rowcount != 1:
            raise LedgerError(f"no user '{name}'")
        tx.audit(
            command.replace(" ", "-"),
            name,
            {k: v for k, v in values.items() if k != "password_hash"},
        )


def disable_user(ledger: Ledger, name: str) -> None:
    """Disable an account: it can no longer sign in and its sessions stop working."""
    _update(ledger, "user disable", name, {"active": False})


def set_password(ledger: Ledger, name: str, password: str) -> None:
    """Replace an account's password (and enable it again)."""
    _check_password(password)
    _update(
        ledger, "user password", name, {"password_hash": _hasher.hash(password), "active": True}
    )


def list_users(ledger: Ledger) -> list[dict[str, Any]]:
    """Every account: name, role, active, created and changed (never the hash)."""
    with ledger.read() as conn:
        rows = conn.execute(
            sa.select(
                users.c.name, users.c.role, users.c.active, users.c.created_at, users.c.changed_at
            ).order_by(users.c.name)
        ).mappings()
        return [dict(r) for r in rows]


def get_user(ledger: Ledger, name: str) -> User | None:
    """The active account ``name``, or None (unknown or disabled)."""
    with ledger.read() as conn:
        row = conn.execute(
            sa.select(users.c.name, users.c.role).where((users.c.name == name) & users.c.active)
        ).first()
    return None if row is None else User(row.name, row.role)


def authenticate(ledger: Ledger, name: str, password: str) -> User | None:
    """The account when ``password`` is right and the account active, else None."""
    with ledger.read() as conn:
        row = conn.execute(
            sa.select(users.c.name, users.c.role, users.c.password_hash, users.c.active).where(
                users.c.name == name
            )
        ).first()
    digest = row.password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row.active:
        return None
    return User(row.name, row.role)


__all__ = [
    "ROLES",
    "User",
    "add_user",
    "authenticate",
    "check_role",
    "disable_user",
    "get_user",
    "list_users",
    "set_password",
    "users",
]
