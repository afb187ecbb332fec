"""``coupler serve`` (the review screen) and ``coupler user`` (its accounts).

The accounts live in the ledger (:mod:`coupler.ledger.users`); passwords are asked for without
echo (or read from the first line of ``--password-file``) and stored only as argon2 hashes. So does
the secret that signs the sessions (:mod:`coupler.ledger.sessions`): ``coupler user
rotate-secret`` replaces it, signing everyone out.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tempfile
from pathlib import Path

import click

from coupler.cli.ledger import _ledger_options
from coupler.ledger import Ledger, LedgerError
from coupler.ledger.sessions import rotate_secret
from coupler.ledger.users import add_user, disable_user, list_users, set_password


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise LedgerError(f"cannot read {password_file}: {exc.strerror}") from None
        return lines[0] if lines else ""
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


_password_option = click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read the password from the first line of this file instead of asking.",
)


@click.group()
def user() -> None:
    """Accounts of the review screen: regievoerder, analist or gemeente:GMxxxx."""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    help="regievoerder (reads, decides), analist (reads) or gemeente:GM0363 "
    "(reads its own municipality's couplings).",
)
@_password_option
@_ledger_options
def user_add(ledger: Ledger, name: str, role: str, password_file: Path | None) -> None:
    """Add account NAME with --role; asks for a password (at least 10 characters)."""
    u = add_user(ledger, name, role, _password(password_file))
    click.echo(f"added {u.name} ({u.role})")


@user.command("list")
@_ledger_options
def user_list(ledger: Ledger) -> None:
    """List the accounts: name, role, active."""
    for u in list_users(ledger):
        state = "active" if u["active"] else "disabled"
        click.echo(f"{u['name']:<20} {u['role']:<20} {state:<9} changed {u['changed_at']}")


@user.command("disable")
@click.argument("name")
@_ledger_options
def user_disable(ledger: Ledger, name: str) -> None:
    """Disable account NAME: it can no longer sign in."""
    disable_user(ledger, name)
    click.echo(f"disabled {name}")


@user.command("rotate-secret")
@_ledger_options
def user_rotate_secret(ledger: Ledger) -> None:
    """Sign every account out: a new session-signing secret in the ledger.

    Every server on this ledger refuses the old sessions at their next request; no restart is
    needed. Use it when a cookie, a backup or the ledger may have leaked.
    """
    rotate_secret(ledger)
    click.echo("rotated the session secret; every session is signed out")


@user.command("password")
@click.argument("name")
@_password_option
@_ledger_options
def user_password(ledger: Ledger, name: str, password_file: Path | None) -> None:
    """Set a new password for NAME (and enable it again)."""
    set_password(ledger, name, _password(password_file))
    click.echo(f"changed the password of {name}")


#: Environment variable with the secret of ``serve --secret-file``.
PEPPER_ENV = "COUPLER_SECRET"
MIN_PEPPER = 32


def _pepper(secret_file: Path | None) -> bytes | None:
    """The secret of --secret-file (its first line) or $COUPLER_SECRET, or None; never shown."""
    if secret_file is not None:
        where = str(secret_file)
        try:
            lines = secret_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise LedgerError(f"cannot read the secret file {where}: {why}") from None
        value = lines[0].strip() if lines else ""
    elif os.environ.get(PEPPER_ENV):
        where, value = f"${PEPPER_ENV}", os.environ[PEPPER_ENV].strip()
    else:
        return None
    if len(value) < MIN_PEPPER:
        raise LedgerError(
            f"the secret in {where} is too short: it needs at least {MIN_PEPPER} characters"
        )
    return value.encode("utf-8")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ledger SQLite file [default: $COUPLER_DB or ./coupler-ledger.sqlite].",
)
@click.option("--db-url", default=None, help="SQLAlchemy URL of the ledger instead of --db.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback is shown to the network.",
)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--demo",
    is_flag=True,
    help="Create a demo ledger with users in a temporary folder and serve it.",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help=f"A secret (first line, at least {MIN_PEPPER} characters) mixed into the session "
    f"signing key, so that the ledger alone cannot forge a session [default: ${PEPPER_ENV}, or "
    "none]. Every server on the ledger needs the same one.",
)
@click.option(
    "--idle-minutes",
    type=float,
    default=30.0,
    show_default=True,
    help="Sign a session out after this many minutes without a request.",
)
def serve(
    db: Path | None,
    db_url: str | None,
    host: str,
    port: int,
    demo: bool,
    secret_file: Path | None,
    idle_minutes: float,
) -> None:
    """Serve the review screen (Periode, Batch, Huishouden, queues, Audit) over the ledger.

    Sessions are signed with a secret kept in the ledger: they survive a restart and every
    server on the same ledger accepts them. `coupler user rotate-secret` signs everyone out.

    \b
    Examples:
      coupler serve --demo
      coupler serve --db coupler-ledger.sqlite
    """
    import uvicorn

    from coupler.web import create_app
    from coupler.web.app import server_config

    if not _is_loopback(host):
        click.echo(
            f"warning: listening on {host}: the review screen holds personal data; serve it "
            "behind HTTPS (a reverse proxy) and only on a trusted network",
            err=True,
        )
    if demo:
        from coupler.web.demo import build_demo

        if db is not None or db_url is not None:
            raise LedgerError("--demo makes its own ledger; leave out --db and --db-url")
        folder = Path(tempfile.mkdtemp(prefix="coupler-demo-"))
        click.echo(f"building a demo ledger in {folder} (takes a little while) ...", err=True)
        d = build_demo(folder)
        db = d.db
        click.echo(f"demo ledger: {d.db}")
        click.echo(f"open http://{host}:{port}/ and sign in as one of:")
        for name, role, password in d.accounts:
            click.echo(f"  {name:<10} password {password:<20} ({role})")
        click.echo(f"the proposed batch to review is batch {d.batch_id}")
    pepper = _pepper(secret_file)
    ledger = Ledger.open(db, db_url=db_url, create=False)
    app = create_app(
        ledger,
        pepper=pepper,
        idle_seconds=60 * idle_minutes,
        secure_cookie=not _is_loopback(host),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        uvicorn.Server(server_config(app, host, port, log_level="info")).run()
    finally:
        ledger.close()


COMMANDS = [serve, user]
