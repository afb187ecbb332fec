"""The municipality view (SQLite and PostgreSQL, live uvicorn): a gemeente user sees only its own
couplings with the housing follow-up, records events through the housing module (audited with
the web user), and gets 403 for another municipality's household; other roles cannot record."""

from __future__ import annotations

import re

import sqlalchemy as sa
from webutil import csrf_of, sign_in

from coupler.ledger import schema as t
from coupler.ledger.housing import housing_events, today_utc


def _approved(site) -> list[tuple[str, str]]:
    with site.ledger.read() as conn:
        return [
            (str(h), str(m))
            for h, m in conn.execute(
                sa.select(t.couplings.c.household_id, t.couplings.c.municipality).where(
                    t.couplings.c.status == "approved"
                )
            )
        ]


def _own(site) -> str:
    return site.role("gemeente").split(":")[1]


def _events(site) -> list[tuple[str, str, str, str]]:
    with site.ledger.read() as conn:
        return [
            (r.household_id, r.event, r.by, r.date)
            for r in conn.execute(sa.select(housing_events).order_by(housing_events.c.id))
        ]


def _give_own_an_approved_coupling(site) -> str:
    """Approve the proposed batch so the gemeente user's municipality has approved couplings."""
    from coupler.ledger import Ledger, approve

    approve(Ledger(site.ledger.engine, user="regie"), site.demo.batch_id, reason="test")
    mine = [h for h, m in _approved(site) if m == _own(site)]
    assert mine
    return mine[0]


def test_gemeente_view_lists_only_its_own_couplings(site) -> None:
    """The Periode page of a gemeente user has the housing section listing exactly its approved
    couplings (no other municipality's household id appears on the page), its realised
    taakstelling row and its overdue section."""
    _give_own_an_approved_coupling(site)
    own = _own(site)
    with sign_in(site.url, "gemeente", site.password("gemeente")) as c:
        page = c.get("/periode").text
    assert 'id="housing"' in page and 'id="realised"' in page
    shown = set(re.findall(r'<td class="hh">([^<]+)</td>', page))
    mine = {h for h, m in _approved(site) if m == own}
    others = {h for h, m in _approved(site) if m != own}
    assert shown == mine
    assert not any(f">{h}<" in page for h in others - mine)
    start = page.index('id="realised"')
    realised = page[start : page.index("</table>", start)]
    assert realised.count("<tr><td>") == 1


def test_gemeente_records_an_offer_and_not_for_others(site) -> None:
    """A gemeente user records 'dwelling offered' for its own household (stored, audited with
    the user, shown as the state); posting for another municipality's household gets 403 and
    writes nothing; an analist and a regievoerder get 403 too."""
    household = _give_own_an_approved_coupling(site)
    other = next(h for h, m in _approved(site) if m != _own(site))
    today = today_utc().isoformat()
    with sign_in(site.url, "gemeente", site.password("gemeente")) as c:
        token = csrf_of(c.get("/periode").text)
        r = c.post(
            "/gemeente/event",
            data={"csrf": token, "household_id": household, "event": "offered", "date": today},
        )
        assert r.status_code == 200 and 'id="message"' in r.text
        r = c.post(
            "/gemeente/event",
            data={"csrf": token, "household_id": other, "event": "offered", "date": today},
        )
        assert r.status_code == 403
        r = c.post(
            "/gemeente/event",
            data={"csrf": token, "household_id": household, "event": "offered", "date": "nope"},
        )
        assert r.status_code == 400
    for name in ("analist", "regie"):
        with sign_in(site.url, name, site.password(name)) as c:
            token = csrf_of(c.get("/periode").text)
            r = c.post(
                "/gemeente/event",
                data={"csrf": token, "household_id": household, "event": "housed", "date": today},
            )
            assert r.status_code == 403, name
    assert _events(site) == [(household, "offered", "gemeente", today)]
    with site.ledger.read() as conn:
        who = (
            conn.execute(sa.select(t.audit.c.who).where(t.audit.c.subject == household))
            .scalars()
            .all()
        )
    assert "gemeente" in who


def test_period_page_maps_are_inline_svg(site) -> None:
    """The Periode page carries an inline-SVG fill-share choropleth (one path per municipality,
    no script, no inline style, served under the strict CSP); the realised-share map appears
    once a household is housed, and a gemeente user's map tells only its own numbers."""
    household = _give_own_an_approved_coupling(site)
    with sign_in(site.url, "regie", site.password("regie")) as c:
        r = c.get("/periode")
    assert "script-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    assert 'id="map-fill"' in page and 'id="map-realised"' not in page
    start = page.index('id="map-fill"')
    svg = page[start : page.index("</svg>", start)]
    assert svg.count('class="gm"') == 342
    assert "<script" not in page and "style=" not in svg
    today = today_utc().isoformat()
    with sign_in(site.url, "gemeente", site.password("gemeente")) as c:
        for event in ("offered", "housed"):
            token = csrf_of(c.get("/periode").text)
            r = c.post(
                "/gemeente/event",
                data={"csrf": token, "household_id": household, "event": event, "date": today},
            )
            assert r.status_code == 200, event
        mine = r.text
    with sign_in(site.url, "regie", site.password("regie")) as c:
        page = c.get("/periode").text
    # Realised counts persons housed within the period's dates: the demo's period may lie
    # before today, so the map shows only when the housed date falls inside it.
    from coupler.ledger.housing import period_dates

    with site.ledger.read() as conn:
        name = site.ledger.period(conn, None).name
    first, last = period_dates(name)
    assert ('id="map-realised"' in page) == (first <= today_utc() <= last)
    own = _own(site)
    start = mine.index('id="map-fill"')
    svg = mine[start : mine.index("</svg>", start)]
    told = re.findall(r'data-code="(GM\d+)"[^>]*><title>[^<]*gekoppeld', svg)
    assert told == [own]
    # A household housed inside the period (the demo couples after its period ends, so the date
    # is set in the ledger directly) colours its municipality on the realised map.
    with site.ledger.write("test") as tx:
        tx.conn.execute(
            housing_events.update()
            .where(housing_events.c.household_id == household)
            .values(date=first.isoformat())
        )
    with sign_in(site.url, "regie", site.password("regie")) as c:
        page = c.get("/periode").text
    start = page.index('id="map-realised"')
    svg = page[start : page.index("</svg>", start)]
    assert svg.count('class="gm"') == 342
    housed = re.findall(r'data-code="(GM\d+)" fill="([^"]+)"[^>]*><title>[^<]*gehuisvest', svg)
    assert [c for c, _ in housed if c == own] == [own]


def test_household_page_shows_housing_to_its_municipality(site) -> None:
    """A gemeente user's household page of one of its approved couplings shows the housing
    section with the event form; the regievoerder's page of the same household has none."""
    from urllib.parse import quote

    _give_own_an_approved_coupling(site)
    with site.ledger.read() as conn:
        household = (
            conn.execute(
                sa.select(t.couplings.c.household_id).where(
                    (t.couplings.c.batch_id == site.demo.batch_id)
                    & (t.couplings.c.municipality == _own(site))
                )
            )
            .scalars()
            .first()
        )
    path = f"/batch/{site.demo.batch_id}/household/{quote(household, safe='')}"
    with sign_in(site.url, "gemeente", site.password("gemeente")) as c:
        page = c.get(path).text
    assert 'id="housing"' in page and 'action="/gemeente/event"' in page
    with sign_in(site.url, "regie", site.password("regie")) as c:
        page = c.get(path).text
    assert 'id="housing"' not in page and "/gemeente/event" not in page
