"""Sessions signed with the ledger's secret (coupler.ledger.sessions, coupler.web.auth): shared by
every app on one ledger (SQLite and PostgreSQL), refused by an app on another ledger, ended by
disabling the account, by signing out anywhere and by rotating the secret."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pgutil import pg_database
from webutil import csrf_of, free_port, serving

from coupler.cli import main
from coupler.ledger import Ledger
from coupler.ledger import schema as t
from coupler.ledger.sessions import (
    current_secret,
    prepare,
    rotate_secret,
    web_revoked,
    web_secret,
)
from coupler.ledger.users import disable_user
from coupler.web import create_app
from coupler.web.app import server_config
from coupler.web.auth import COOKIE, LedgerStore, Sessions
from coupler.web.demo import Demo


def _url(ledger: Ledger) -> str:
    return ledger.engine.url.render_as_string(hide_password=False)


def _again(ledger: Ledger) -> Ledger:
    """A second, independent handle on the same ledger (as a second server process has)."""
    return Ledger.open(db_url=_url(ledger), create=False)


def _password(demo: Demo, name: str) -> str:
    return next(p for n, _, p in demo.accounts if n == name)


@contextmanager
def _app(ledger: Ledger, **options: bytes) -> Iterator[httpx.Client]:
    """A new review app on ``ledger`` served live, and an HTTP client of it."""
    config = server_config(create_app(ledger, **options), "127.0.0.1", free_port())
    with (
        serving(config) as url,
        httpx.Client(base_url=url, follow_redirects=True, timeout=120) as client,
    ):
        yield client


def _log_in(client: httpx.Client, demo: Demo, name: str) -> str:
    """Sign in through the form; the session cookie set."""
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "name": name, "password": _password(demo, name)},
    )
    assert r.status_code == 200 and 'id="whoami"' in r.text
    return str(client.cookies[COOKIE])


def _sign_in(ledger: Ledger, demo: Demo, name: str = "regie", **options: bytes) -> str:
    """Sign in through the form of a new app on ``ledger``; the session cookie it set."""
    with _app(ledger, **options) as client:
        return _log_in(client, demo, name)


def _shows(client: httpx.Client, cookie: str) -> bool:
    """Whether the app of ``client`` shows the period page to ``cookie``."""
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    r = client.get("/periode")
    return r.status_code == 200 and 'id="whoami"' in r.text and "/login" not in str(r.url)


def _signed_in(ledger: Ledger, cookie: str, **options: bytes) -> bool:
    """Whether a new app on ``ledger`` shows the period page to ``cookie``."""
    with _app(ledger, **options) as client:
        return _shows(client, cookie)


@pytest.fixture
def other(template, tmp_path: Path) -> Iterator[Ledger]:
    """Another copy of the demo ledger (same accounts and passwords, a secret of its own)."""
    backend, demo, pg_name = template
    if backend == "sqlite":
        db = tmp_path / "other.sqlite"
        shutil.copy(demo.db, db)
        ledger = Ledger.open(db, create=False)
        yield ledger
        ledger.close()
        return
    with pg_database(template=pg_name) as (_, url):
        ledger = Ledger.open(db_url=url)
        yield ledger
        ledger.close()


def test_a_session_works_on_every_app_of_the_ledger_only(fresh, other) -> None:
    """A cookie issued by one app is accepted by a second app (its own connection, as a second
    server process or a restart has) on the same ledger, and refused by an app on another
    ledger with the same accounts."""
    ledger, demo = fresh
    cookie = _sign_in(ledger, demo)
    second = _again(ledger)
    try:
        assert _signed_in(second, cookie)
        assert _signed_in(ledger, cookie)
    finally:
        second.close()
    assert not _signed_in(other, cookie)
    assert _signed_in(other, _sign_in(other, demo))


def test_a_disabled_account_is_signed_out_on_every_app(fresh) -> None:
    """Disabling an account ends its session on every app of the ledger, though the cookie's
    signature is still good."""
    ledger, demo = fresh
    cookie = _sign_in(ledger, demo, "analist")
    second = _again(ledger)
    try:
        assert _signed_in(second, cookie)
        disable_user(ledger, "analist")
        assert not _signed_in(second, cookie)
        assert not _signed_in(ledger, cookie)
    finally:
        second.close()


def test_signing_out_on_one_app_signs_out_on_all(fresh) -> None:
    """A session signed out through one app is refused by another app on the same ledger."""
    ledger, demo = fresh
    second = _again(ledger)
    try:
        with _app(ledger) as client:
            cookie = _log_in(client, demo, "regie")
            assert _signed_in(second, cookie)
            page = client.get("/periode")
            client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert not _signed_in(second, cookie)
    finally:
        second.close()


def test_rotating_the_secret_signs_everyone_out(fresh) -> None:
    """`coupler user rotate-secret` on the ledger makes every running app refuse every earlier
    session (no restart), writes an audit row without the secret, and new sign-ins work."""
    ledger, demo = fresh
    cookies = [_sign_in(ledger, demo, name) for name in ("regie", "analist")]
    before = current_secret(ledger)
    assert before is not None
    with _app(ledger) as running:
        assert _shows(running, cookies[0])
        r = CliRunner().invoke(
            main, ["user", "rotate-secret", "--db-url", _url(ledger), "--user", "beheer"]
        )
        assert r.exit_code == 0, r.output
        assert not _shows(running, cookies[0])
    after = current_secret(ledger)
    assert after is not None and after != before
    assert not any(_signed_in(ledger, c) for c in cookies)
    assert _signed_in(ledger, _sign_in(ledger, demo))
    with ledger.read() as conn:
        rows = conn.execute(
            sa.select(t.audit.c.who, t.audit.c.detail).where(t.audit.c.action == "rotate-secret")
        ).all()
    assert [row.who for row in rows] == ["beheer"]
    assert all(
        after.hex() not in str(row.detail) and before.hex() not in str(row.detail) for row in rows
    )


def test_a_pepper_must_match(fresh) -> None:
    """With a pepper (serve --secret-file) only apps with the same pepper accept the session;
    an app without it, on the same ledger, does not."""
    ledger, demo = fresh
    pepper = b"p" * 40
    cookie = _sign_in(ledger, demo, pepper=pepper)
    assert _signed_in(ledger, cookie, pepper=pepper)
    assert not _signed_in(ledger, cookie)
    assert not _signed_in(ledger, cookie, pepper=b"q" * 40)


def test_the_secret_is_made_once_even_by_racing_first_starts(ledger_target) -> None:
    """Four processes' first starts at once on a ledger without a secret make exactly one
    secret, the one they all get."""
    ledger_target.open().close()
    handles = [ledger_target.open() for _ in range(4)]
    got: list[bytes] = []
    barrier = threading.Barrier(len(handles))

    def start(ledger: Ledger) -> None:
        barrier.wait()
        got.append(prepare(ledger))

    threads = [threading.Thread(target=start, args=(h,)) for h in handles]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert len(got) == 4 and len(set(got)) == 1
        with handles[0].read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(web_secret)).scalar() == 1
    finally:
        for h in handles:
            h.close()


def test_an_older_ledger_gets_the_tables_on_first_use(ledger_target) -> None:
    """A ledger made before the session tables (dropped here) gets them, and a secret, when the
    first app starts on it; no other table changes."""
    ledger = ledger_target.open()
    try:
        with ledger.engine.begin() as conn:
            web_revoked.drop(conn)
            web_secret.drop(conn)
            before = set(sa.inspect(conn).get_table_names())
        # A handle made without Ledger.open (which would create them while upgrading).
        bare = Ledger(ledger.engine)
        create_app(bare)
        after = set(sa.inspect(ledger.engine).get_table_names())
        assert after - before == {"web_secret", "web_revoked"} and before <= after
        assert current_secret(bare) is not None
    finally:
        ledger.close()


def test_a_short_secret_file_is_refused(tmp_path: Path) -> None:
    """serve --secret-file with a secret under 32 characters: exit 2, one line naming the file,
    never the secret; the same for $COUPLER_SECRET."""
    short = tmp_path / "secret.txt"
    short.write_text("tooshort-abc\n", encoding="utf-8")
    r = CliRunner().invoke(
        main, ["serve", "--secret-file", str(short), "--db", str(tmp_path / "x")]
    )
    assert r.exit_code == 2, r.output
    assert f"the secret in {short} is too short" in r.output and "tooshort-abc" not in r.output
    r = CliRunner().invoke(
        main, ["serve", "--db", str(tmp_path / "x")], env={"COUPLER_SECRET": "tooshort-abc"}
    )
    assert r.exit_code == 2 and "$COUPLER_SECRET is too short" in r.output
    assert "tooshort-abc" not in r.output


def test_a_process_that_has_not_seen_a_rotation_yet_judges_by_the_ledger(fresh) -> None:
    """Right after a rotation by another process, a store that still holds the old secret
    refuses a cookie signed with the old one and accepts one signed with the new one."""
    ledger, _ = fresh
    late = Sessions(LedgerStore(ledger), idle=600)
    old = late.dump(late.new("regie"))
    assert late.load(old) is not None
    rotate_secret(ledger)
    prompt = Sessions(LedgerStore(ledger), idle=600)
    new = prompt.dump(prompt.new("regie"))
    assert late.load(old) is None
    assert late.load(new) is not None
