"""Security of the review screen against a live uvicorn server (SQLite and PostgreSQL):
roles enforced in the queries, CSRF on every form, escaping, bound filter values, quiet logs,
security headers, throttling and session expiry."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from webutil import csrf_of, sign_in

from coupler.ledger import quota_state
from coupler.ledger import schema as t
from coupler.ledger.explanations import review_households, review_overrides
from coupler.ledger.users import add_user, disable_user
from coupler.web.auth import MemoryStore, Sessions, Throttle


def _couplings(site, *extra: str) -> pd.DataFrame:
    cols = ["household_id", "municipality", *extra]
    with site.ledger.read() as conn:
        return pd.DataFrame(
            conn.execute(
                sa.select(*[t.couplings.c[c] for c in cols]).where(
                    t.couplings.c.batch_id == site.demo.batch_id
                )
            ).all(),
            columns=cols,
        )


def _audit_count(site) -> int:
    with site.ledger.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.audit)).scalar_one())


def roomy(site) -> str:
    """The name of the municipality with the most room left after the proposed batch."""
    with site.ledger.read() as conn:
        period = site.ledger.open_period(conn)
        q = quota_state(conn, period.id).set_index("municipality")
    planned = _couplings(site, "persons").groupby("municipality")["persons"].sum()
    room = (q["available"] - q["reserved"]).sub(planned, fill_value=0)
    return str(q.at[room.idxmax(), "name"])


def _own(site) -> str:
    return site.role("gemeente").split(":")[1]


def test_gemeente_sees_only_its_own_couplings(site) -> None:
    """A gemeente user's batch page lists exactly the couplings to its municipality, and a filter
    naming another municipality cannot widen that."""
    own = _own(site)
    mine = _couplings(site)
    mine = set(mine.loc[mine["municipality"] == own, "household_id"])
    assert mine
    with sign_in(site.url, "gemeente", site.password("gemeente")) as c:
        page = c.get(f"/batch/{site.demo.batch_id}", params={"per_page": 500}).text
        shown = set(pd.Series(_ids(page)))
        assert shown == mine
        other = c.get(
            f"/batch/{site.demo.batch_id}", params={"municipality": "Amsterdam", "per_page": 500}
        ).text
        assert not (set(_ids(other)) - mine)


def _ids(html: str) -> list[str]:
    import re

    return re.findall(r'class="hh">([^<]+)<', html)


def test_gemeente_forbidden_elsewhere(site) -> None:
    """A gemeente user gets 403 on another municipality's household, on a batch without couplings
    to its municipality, on that batch's export and on the audit; a regievoerder gets 200."""
    own = _own(site)
    cp = _couplings(site)
    other = cp.loc[cp["municipality"].notna() & (cp["municipality"] != own), "household_id"].iloc[0]
    with site.ledger.read() as conn:
        used = {c for (c,) in conn.execute(sa.select(t.couplings.c.municipality).distinct()) if c}
        codes = [c for (c,) in conn.execute(sa.select(t.quotas.c.municipality).distinct())]
    empty = sorted(set(codes) - used)[0]
    add_user(site.ledger, "leeg", f"gemeente:{empty}", "a-long-password-1")
    b = site.demo.batch_id
    with sign_in(site.url, "gemeente", site.password("gemeente")) as c:
        assert c.get(f"/batch/{b}/household/{other}").status_code == 403
        assert c.get("/audit").status_code == 403
        assert c.get("/audit.csv").status_code == 403
    with sign_in(site.url, "leeg", "a-long-password-1") as c:
        assert c.get(f"/batch/{b}").status_code == 403
        r = c.get(f"/batch/{b}/review.xlsx")
        assert r.status_code == 403
        assert "spreadsheet" not in r.headers.get("content-type", "")
    with sign_in(site.url, "regie", site.password("regie")) as c:
        assert c.get(f"/batch/{b}/household/{other}").status_code == 200
        assert c.get(f"/batch/{b}/review.xlsx").status_code == 200


def test_post_without_valid_csrf_is_refused(site) -> None:
    """An override or approval POSTed without a CSRF token, with a forged one or with another
    session's token is refused (403) and writes nothing."""
    b = site.demo.batch_id
    hh = _couplings(site)["household_id"].iloc[0]
    before = _audit_count(site)
    with (
        sign_in(site.url, "regie", site.password("regie")) as c,
        sign_in(site.url, "analist", site.password("analist")) as other,
    ):
        foreign = csrf_of(other.get("/periode").text)
        for token in (None, "forged", foreign):
            data = {"municipality": "Utrecht", "reason": "test"}
            if token is not None:
                data["csrf"] = token
            r = c.post(f"/batch/{b}/household/{hh}/override", data=data)
            assert r.status_code == 403
            r = c.post(
                f"/batch/{b}/approve", data={"reason": "x", **({"csrf": token} if token else {})}
            )
            assert r.status_code == 403
    assert _audit_count(site) == before
    with site.ledger.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(review_overrides)).scalar() == 0
        assert (
            conn.execute(sa.select(t.batches.c.status).where(t.batches.c.id == b)).scalar()
            == "proposed"
        )


def test_analist_and_gemeente_cannot_decide(site) -> None:
    """With a valid CSRF token, an analist and a gemeente user get 403 on every POST that decides
    (override, approve, withdraw, queue decisions); the ledger is unchanged."""
    b = site.demo.batch_id
    own = _own(site)
    cp = _couplings(site)
    hh = cp.loc[cp["municipality"] == own, "household_id"].iloc[0]
    before = _audit_count(site)
    for name in ("analist", "gemeente"):
        with sign_in(site.url, name, site.password(name)) as c:
            token = csrf_of(c.get(f"/batch/{b}").text)
            posts = [
                (f"/batch/{b}/household/{hh}/override", {"municipality": "Utrecht", "reason": "r"}),
                (f"/batch/{b}/approve", {"reason": "r"}),
                (f"/batch/{b}/withdraw", {"reason": "r"}),
                ("/omkoppeling/1/decide", {"decision": "approved", "reason": "r"}),
                ("/kansrijk/1/decide", {"decision": "rejected", "reason": "r"}),
            ]
            for path, data in posts:
                r = c.post(path, data={"csrf": token, **data})
                assert r.status_code == 403, (name, path)
    assert _audit_count(site) == before


def test_hostile_ids_and_reasons_are_escaped(site) -> None:
    """Household ids such as ``<script>`` and ``" onmouseover=`` and a hostile reason are shown
    escaped on the batch, household and audit pages, never as markup."""
    b = site.demo.batch_id
    cp = _couplings(site)
    hostile = ["<script>alert(1)</script>", '" onmouseover="alert(1)" x="']
    with site.ledger.write("test") as tx:
        for new, old in zip(hostile, cp["household_id"].iloc[:2], strict=True):
            for table in (t.couplings, review_households):
                tx.conn.execute(
                    table.update()
                    .where((table.c.batch_id == b) & (table.c.household_id == old))
                    .values(household_id=new)
                )
    with sign_in(site.url, "regie", site.password("regie")) as c:
        page = c.get(f"/batch/{b}", params={"per_page": 500}).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert '" onmouseover="alert(1)"' not in page
        assert "&#34; onmouseover=&#34;alert(1)&#34;" in page
        detail = c.get(f"/batch/{b}/household/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert detail.status_code == 200
        assert "<script>alert(1)</script>" not in detail.text
        token = csrf_of(detail.text)
        c.post(
            f"/batch/{b}/household/%3Cscript%3Ealert(1)%3C%2Fscript%3E/override",
            data={"csrf": token, "municipality": roomy(site), "reason": "<script>evil()</script>"},
        ).raise_for_status()
        for path in (f"/batch/{b}/household/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/audit"):
            text = c.get(path).text
            assert "<script>evil()</script>" not in text
            assert "&lt;script&gt;evil()&lt;/script&gt;" in text
            assert "<script" not in text.lower()


@pytest.mark.parametrize(
    "params",
    [
        {"municipality": "' OR '1'='1"},
        {"province": "x'; DROP TABLE couplings; --"},
        {"azc": "1) OR 1=1 --"},
        {"persons": "1 OR 1=1"},
        {"sort": "household_id; DROP TABLE users"},
        {"page": "1; DELETE FROM audit"},
    ],
)
def test_sql_looking_filters_change_nothing(site, params) -> None:
    """SQL-looking filter values are plain values: the page answers (no error), a text filter
    matches nothing, and every table keeps its rows."""
    b = site.demo.batch_id

    def counts() -> tuple[int, ...]:
        with site.ledger.read() as conn:
            return tuple(
                int(conn.execute(sa.select(sa.func.count()).select_from(x)).scalar_one())
                for x in (t.couplings, t.audit, t.batches)
            )

    before = counts()
    with sign_in(site.url, "regie", site.password("regie")) as c:
        full = len(_ids(c.get(f"/batch/{b}", params={"per_page": 500}).text))
        r = c.get(f"/batch/{b}", params={**params, "per_page": 500})
        assert r.status_code == 200
        shown = len(_ids(r.text))
        if set(params) & {"municipality", "province", "azc"}:
            assert shown == 0
        else:
            assert shown == min(full, 100 if "page" in params else full)
        assert c.get("/audit", params={"who": "' OR 1=1 --"}).status_code == 200
    assert counts() == before


def test_log_holds_no_secret_or_personal_value(site) -> None:
    """The server log (uvicorn and app) holds no password, session token, household id or
    reason, through failed and good sign-ins, browsing households and an override."""
    b = site.demo.batch_id
    cp = _couplings(site)
    hh = cp["household_id"].iloc[0]
    reason = "reason-text-that-must-not-be-logged"
    bad = httpx.Client(base_url=site.url, follow_redirects=True)
    token = csrf_of(bad.get("/login").text)
    bad.post("/login", data={"csrf": token, "name": "regie", "password": "wrong-password-xyz"})
    with sign_in(site.url, "regie", site.password("regie")) as c:
        cookie = c.cookies.get("coupler_session")
        detail = c.get(f"/batch/{b}/household/{hh}")
        c.post(
            f"/batch/{b}/household/{hh}/override",
            data={"csrf": csrf_of(detail.text), "municipality": roomy(site), "reason": reason},
        ).raise_for_status()
        c.get(f"/batch/{b}", params={"municipality": "Utrecht"})
    log = "\n".join(site.log)
    assert "GET /batch/{batch}/household/{household:path} 200" in log  # the log is captured
    for secret in (site.password("regie"), "wrong-password-xyz", cookie, token, hh, reason):
        assert secret and secret not in log
    assert not any(h in log for h in cp["household_id"])


def test_security_headers_and_cookie_flags(site) -> None:
    """Every page carries a CSP without inline script, no framing, nosniff and a referrer policy;
    the session cookie is HttpOnly and SameSite=Strict."""
    r = httpx.get(f"{site.url}/login")
    h = r.headers
    assert "script-src 'none'" in h["content-security-policy"]
    assert "unsafe-inline" not in h["content-security-policy"]
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    cookie = h["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "<script" not in r.text.lower()


def test_failed_logins_are_throttled(site) -> None:
    """After five failed sign-ins for a name, even the right password is refused (429) for a
    while, and the page says so."""
    c = httpx.Client(base_url=site.url, follow_redirects=True)
    for _ in range(5):
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"csrf": token, "name": "regie", "password": "nope-nope-nope"})
        assert r.status_code == 401
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf": token, "name": "regie", "password": site.password("regie")})
    assert r.status_code == 429
    assert 'id="whoami"' not in r.text


def test_disabled_user_loses_its_session(site) -> None:
    """Disabling an account ends its open sessions at the next request."""
    with sign_in(site.url, "analist", site.password("analist")) as c:
        assert c.get("/periode").status_code == 200
        disable_user(site.ledger, "analist")
        r = c.get("/periode")
        assert 'id="whoami"' not in r.text and "/login" in str(r.url)


def test_session_idle_timeout_and_revocation() -> None:
    """A session cookie stops working after the idle time, when revoked, or when tampered with."""
    s = Sessions(MemoryStore(b"k" * 32), idle=1)
    session = s.new("regie")
    cookie = s.dump(session)
    assert s.load(cookie) == session
    assert s.load(cookie[:-2] + "xx") is None
    time.sleep(2.1)
    assert s.load(cookie) is None
    fresh = s.new("regie")
    s.revoke(fresh)
    assert s.load(s.dump(fresh)) is None


def test_throttle_doubles_and_resets() -> None:
    """The lock starts at the fifth failure, doubles with each further one, and a success
    clears it."""
    th = Throttle(max_failures=5, base=30, cap=900)
    for _ in range(4):
        th.fail("k", now=0)
    assert th.wait("k", now=0) == 0
    th.fail("k", now=0)
    assert th.wait("k", now=0) == 30
    th.fail("k", now=0)
    assert th.wait("k", now=0) == 60
    th.success("k")
    assert th.wait("k", now=0) == 0
