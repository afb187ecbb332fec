"""The review screen end to end in headless Chromium (playwright) against a real uvicorn server:
a regievoerder filters the broken couplings, opens a household, overrides it with a reason and
approves the batch, and the ledger shows it; a gemeente user sees only its own couplings.
Screenshots go to $COUPLER_ARTIFACTS (default ./artifacts)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from coupler.ledger import quota_state
from coupler.ledger import schema as t

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def _artifacts() -> Path:
    d = Path(os.environ.get("COUPLER_ARTIFACTS") or "artifacts") / "web"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _roomy(site, household: str) -> tuple[str, str, int, int]:
    """(code, name, room, persons): the municipality with the most room after the proposed
    batch, other than the household's own, and the household's size."""
    with site.ledger.read() as conn:
        q = quota_state(conn, site.ledger.open_period(conn).id).set_index("municipality")
        rows = conn.execute(
            sa.select(
                t.couplings.c.household_id, t.couplings.c.municipality, t.couplings.c.persons
            ).where(t.couplings.c.batch_id == site.demo.batch_id)
        ).all()
    planned: dict[str, int] = {}
    own = None
    size = 0
    for h, m, p in rows:
        if m:
            planned[m] = planned.get(m, 0) + p
        if h == household:
            own, size = m, int(p)
    room = (q["available"] - q["reserved"]).sub(
        __import__("pandas").Series(planned, dtype="float64"), fill_value=0
    )
    room = room.drop(own, errors="ignore")
    code = str(room.idxmax())
    return code, str(q.at[code, "name"]), int(room.max()), size


def _fits(roomy: tuple[str, str, int, int]) -> bool:
    return roomy[3] <= roomy[2]


def test_review_round_trip_in_chromium(site) -> None:
    """Sign in as regievoerder, filter the broken couplings, open one (a move to a municipality
    without room is refused and nothing is saved), override a household that fits with a reason,
    approve the batch (a reason is required for the breaks) and find all of it in the ledger;
    then sign in as the gemeente user, see only couplings to its municipality, and on its
    municipality view (only its own approved couplings) record a dwelling offer."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    out = _artifacts()
    backend = site.ledger.engine.dialect.name
    b = site.demo.batch_id
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(site.url + "/")
            page.fill("#name", "regie")
            page.fill("#password", site.password("regie"))
            page.click("#signin")
            assert page.locator("#whoami").inner_text() == "regie"
            page.screenshot(path=str(out / f"{backend}-1-periode.png"), full_page=True)

            page.click(f"#batches a[href='/batch/{b}']")
            page.check("#f-broken")
            page.click("#apply")
            page.wait_for_url("**broken=1**")
            rows = page.locator("#couplings tbody tr")
            n = rows.count()
            assert n >= 1
            assert page.locator("#couplings tbody tr.broken").count() == n
            page.screenshot(path=str(out / f"{backend}-2-batch-broken.png"), full_page=True)

            first = page.locator("#couplings a.hh").first
            broken = first.inner_text()
            first.click()
            assert page.locator("#household-id").inner_text() == broken
            assert page.locator("#criteria tbody tr").count() >= 1
            assert page.locator("svg.map circle.radius").count() >= 1
            assert page.locator("#side-by-side thead th").count() >= 3
            page.screenshot(path=str(out / f"{backend}-3-huishouden.png"), full_page=True)

            # The demo's quotas are tight (so that criteria break): a move to a municipality
            # without room for the household is refused with a message, and nothing is saved.
            _, full, room, size = _roomy(site, broken)
            if size > room:
                page.fill("#override-municipality", full)
                page.fill("#override-reason", "werk binnen 50 km")
                page.click("#override")
                page.wait_for_load_state()
                assert "places left" in page.locator("main").inner_text()
                assert page.locator("#pending").count() == 0

            # Override a household that fits the roomiest other municipality.
            with site.ledger.read() as conn:
                ids = (
                    conn.execute(
                        sa.select(t.couplings.c.household_id)
                        .where(t.couplings.c.batch_id == b)
                        .order_by(t.couplings.c.household_id)
                    )
                    .scalars()
                    .all()
                )
            household = next(h for h in ids if _fits(_roomy(site, h)))
            page.goto(f"{site.url}/batch/{b}/household/{quote(household, safe='')}")
            assert page.locator("#household-id").inner_text() == household
            code, name, _, _ = _roomy(site, household)
            page.fill("#override-municipality", name)
            page.fill("#override-reason", "werk binnen 50 km")
            page.click("#override")
            page.locator("#pending").wait_for(state="visible", timeout=60_000)
            assert page.locator("#current").inner_text() == name

            page.goto(f"{site.url}/batch/{b}")
            page.fill("#approve-reason", "tekort aan plaatsen; breuk geaccepteerd")
            page.click("#approve")
            assert "goedgekeurd" in page.locator("#message").inner_text()
            page.screenshot(path=str(out / f"{backend}-4-approved.png"), full_page=True)

            page.click("#lang")
            page.locator("html[lang=en]").wait_for(state="attached")
            assert "approved" in page.locator("#message").inner_text()
            page.click("#lang")
            page.locator("html[lang=nl]").wait_for(state="attached")
            page.click("#logout")
            context.close()

            with site.ledger.read() as conn:
                status = conn.execute(
                    sa.select(t.batches.c.status, t.batches.c.decided_by).where(t.batches.c.id == b)
                ).one()
                coupling = conn.execute(
                    sa.select(t.couplings).where(
                        (t.couplings.c.batch_id == b) & (t.couplings.c.household_id == household)
                    )
                ).one()
                audit = conn.execute(
                    sa.select(t.audit.c.who, t.audit.c.reason).where(
                        (t.audit.c.action == "override") & (t.audit.c.subject == household)
                    )
                ).all()
            assert tuple(status) == ("approved", "regie")
            assert coupling.municipality == code and coupling.status == "approved"
            assert coupling.reason == "werk binnen 50 km" and coupling.decided_by == "regie"
            assert [tuple(a) for a in audit] == [("regie", "werk binnen 50 km")]

            own = site.role("gemeente").split(":")[1]
            with site.ledger.read() as conn:
                own_name = (
                    conn.execute(sa.select(t.quotas.c.name).where(t.quotas.c.municipality == own))
                    .scalars()
                    .first()
                )
                expected = conn.execute(
                    sa.select(sa.func.count()).where(
                        (t.couplings.c.batch_id == b) & (t.couplings.c.municipality == own)
                    )
                ).scalar_one()
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(site.url + "/login")
            page.fill("#name", "gemeente")
            page.fill("#password", site.password("gemeente"))
            page.click("#signin")
            page.goto(f"{site.url}/batch/{b}?per_page=500")
            cells = page.locator("#couplings tbody tr td:nth-child(4)").all_inner_texts()
            assert len(cells) == expected >= 1
            assert all(c.strip().startswith(own_name) for c in cells)
            assert page.locator("#approve").count() == 0
            page.screenshot(path=str(out / f"{backend}-5-gemeente.png"), full_page=True)

            # The municipality view: only its own approved couplings; record a dwelling offer.
            with site.ledger.read() as conn:
                approved = {
                    str(h): str(m)
                    for h, m in conn.execute(
                        sa.select(t.couplings.c.household_id, t.couplings.c.municipality).where(
                            t.couplings.c.status == "approved"
                        )
                    )
                }
            page.goto(f"{site.url}/periode")
            assert page.locator("#map-fill svg.map path.gm").count() == 342
            listed = page.locator("#housing-couplings td.hh").all_inner_texts()
            assert sorted(listed) == sorted(h for h, m in approved.items() if m == own)
            row = page.locator("#housing-couplings tbody tr").first
            offered = row.locator("td.hh").inner_text()
            row.locator("select[name=event]").select_option("offered")
            row.locator("button[type=submit]").click()
            page.locator("#message").wait_for(state="visible", timeout=60_000)
            row = page.locator("#housing-couplings tbody tr", has_text=offered).first
            assert row.locator("td.state").inner_text() == "woning aangeboden"
            page.screenshot(path=str(out / f"{backend}-6-gemeente-huisvesting.png"), full_page=True)
            context.close()
            from coupler.ledger.housing import housing_events

            with site.ledger.read() as conn:
                events = conn.execute(
                    sa.select(
                        housing_events.c.household_id, housing_events.c.event, housing_events.c.by
                    )
                ).all()
            assert [tuple(e) for e in events] == [(offered, "offered", "gemeente")]
        finally:
            browser.close()
    assert all(r.startswith(site.url) for r in requests)
