"""The web queues act through the ledger (SQLite and PostgreSQL, live uvicorn): approving an
omkoppeling moves the coupling and the quota, rejecting keeps it, a Kansrijke Koppeling is settled
with the permit decision, every write names the web user, and only a regievoerder may decide."""

from __future__ import annotations

import sqlalchemy as sa
from webutil import csrf_of, sign_in

from coupler.ledger import quota_state
from coupler.ledger import schema as t


def _proposal(site):
    with site.ledger.read() as conn:
        return conn.execute(
            sa.select(t.omkoppelingen).where(t.omkoppelingen.c.decision == "proposed")
        ).first()


def _coupling(site, coupling_id: int):
    with site.ledger.read() as conn:
        return conn.execute(sa.select(t.couplings).where(t.couplings.c.id == coupling_id)).one()


def _available(site) -> dict[str, float]:
    with site.ledger.read() as conn:
        q = quota_state(conn, site.ledger.open_period(conn).id)
    return dict(zip(q["municipality"], q["available"] - q["reserved"], strict=True))


def _audit(site, action: str) -> list[tuple[str, str | None]]:
    with site.ledger.read() as conn:
        return [
            (r.who, r.reason)
            for r in conn.execute(
                sa.select(t.audit.c.who, t.audit.c.reason).where(t.audit.c.action == action)
            )
        ]


def test_omkoppeling_approval_moves_coupling_and_quota(site) -> None:
    """Approving the demo's proposal (which breaks the household's family criterion) without a
    reason is refused and changes nothing; with a reason the coupling moves to the new
    municipality, the quota room moves by the household's persons, and the audit names the web
    user and the reason."""
    p = _proposal(site)
    assert p is not None
    before = _coupling(site, p.coupling_id)
    room = _available(site)
    with sign_in(site.url, "regie", site.password("regie")) as c:
        page = c.get("/omkoppeling").text
        assert f'id="omk-{p.id}"' in page
        r = c.post(
            f"/omkoppeling/{p.id}/decide", data={"csrf": csrf_of(page), "decision": "approved"}
        )
        assert r.status_code == 400 and "needs a reason" in r.text
        assert _coupling(site, p.coupling_id).municipality == before.municipality
        r = c.post(
            f"/omkoppeling/{p.id}/decide",
            data={"csrf": csrf_of(page), "decision": "approved", "reason": "baan in Eindhoven"},
        )
        assert r.status_code == 200 and 'id="message"' in r.text
        assert f'id="omk-{p.id}"' not in r.text  # decided: no form any more
    after = _coupling(site, p.coupling_id)
    assert before.municipality == p.old_municipality
    assert after.municipality == p.new_municipality
    assert after.reason == "baan in Eindhoven" and after.broken
    moved = _available(site)
    assert moved[p.old_municipality] == room[p.old_municipality] + before.persons
    assert moved[p.new_municipality] == room[p.new_municipality] - before.persons
    with site.ledger.read() as conn:
        decision = conn.execute(
            sa.select(t.omkoppelingen.c.decision).where(t.omkoppelingen.c.id == p.id)
        ).scalar_one()
    assert decision == "recoupled"
    assert _audit(site, "omkoppel-approve") == [("regie", "baan in Eindhoven")]


def test_omkoppeling_rejection_needs_reason_and_keeps_coupling(site) -> None:
    """Rejecting needs a reason; a rejected proposal leaves the coupling and the quota as they
    were and is audited with the web user."""
    p = _proposal(site)
    room = _available(site)
    with sign_in(site.url, "regie", site.password("regie")) as c:
        token = csrf_of(c.get("/omkoppeling").text)
        r = c.post(f"/omkoppeling/{p.id}/decide", data={"csrf": token, "decision": "rejected"})
        assert r.status_code == 400
        r = c.post(
            f"/omkoppeling/{p.id}/decide",
            data={"csrf": token, "decision": "rejected", "reason": "te ver van familie"},
        )
        assert r.status_code == 200
    assert _coupling(site, p.coupling_id).municipality == p.old_municipality
    assert _available(site) == room
    assert _audit(site, "omkoppel-reject") == [("regie", "te ver van familie")]


def test_kansrijk_permit_settles_the_provisional_coupling(site) -> None:
    """'Permit refused' releases the reservation (status refused); 'permit granted' confirms or
    re-plans the coupling (never leaves it active); both are audited with the web user, and a
    settled item cannot be settled again."""
    with site.ledger.read() as conn:
        active = conn.execute(
            sa.select(t.provisional)
            .where(t.provisional.c.status == "active")
            .order_by(t.provisional.c.id)
        ).all()
    assert len(active) >= 2
    refused, granted = active[0], active[1]
    room = _available(site)
    with sign_in(site.url, "regie", site.password("regie")) as c:
        token = csrf_of(c.get("/kansrijk").text)
        r = c.post(f"/kansrijk/{refused.id}/decide", data={"csrf": token, "decision": "refused"})
        assert r.status_code == 200 and "reservering is vrijgegeven" in r.text
        r = c.post(f"/kansrijk/{granted.id}/decide", data={"csrf": token, "decision": "granted"})
        assert r.status_code == 200 and 'id="message"' in r.text
        again = c.post(
            f"/kansrijk/{refused.id}/decide", data={"csrf": token, "decision": "granted"}
        )
        assert again.status_code == 400
    with site.ledger.read() as conn:
        status = dict(
            conn.execute(
                sa.select(t.provisional.c.id, t.provisional.c.status).where(
                    t.provisional.c.id.in_([refused.id, granted.id])
                )
            ).all()
        )
        permits = conn.execute(
            sa.select(t.audit.c.action, t.audit.c.who).where(t.audit.c.action.like("permit-%"))
        ).all()
    assert status[refused.id] == "refused"
    assert status[granted.id] in ("confirmed", "replanned")
    outcome = "confirmed" if status[granted.id] == "confirmed" else "replan"
    assert _available(site)[refused.municipality] >= room[refused.municipality]
    assert sorted(a for a, _ in permits) == sorted(["permit-refused", f"permit-{outcome}"])
    assert {w for _, w in permits} == {"regie"}


def test_only_a_regievoerder_acts_on_the_queues(site) -> None:
    """An analist and a gemeente user get 403 on every queue decision (omkoppeling approve and
    reject, permit granted and refused), and nothing changes in the ledger."""
    p = _proposal(site)
    with site.ledger.read() as conn:
        kr = conn.execute(sa.select(t.provisional.c.id)).scalars().first()
        audits = conn.execute(sa.select(sa.func.count()).select_from(t.audit)).scalar_one()
    for name in ("analist", "gemeente"):
        with sign_in(site.url, name, site.password(name)) as c:
            page = c.get("/omkoppeling").text
            assert 'class="queue-decide"' not in page
            token = csrf_of(page)
            for path, decision in (
                (f"/omkoppeling/{p.id}/decide", "approved"),
                (f"/omkoppeling/{p.id}/decide", "rejected"),
                (f"/kansrijk/{kr}/decide", "granted"),
                (f"/kansrijk/{kr}/decide", "refused"),
            ):
                r = c.post(path, data={"csrf": token, "decision": decision, "reason": "r"})
                assert r.status_code == 403, (name, path, decision)
    assert _coupling(site, p.coupling_id).municipality == p.old_municipality
    with site.ledger.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.audit)).scalar_one() == audits


def test_batch_approval_refusal_names_no_household(site) -> None:
    """Approving the demo's proposed batch (some of its couplings break a hard criterion) without
    a reason is refused with a message that counts the couplings and names none of the batch's
    households, in the page and in every log line; nothing is approved."""
    with site.ledger.read() as conn:
        batch = conn.execute(
            sa.select(t.batches.c.id).where(t.batches.c.status == "proposed")
        ).scalar_one()
        ids = [
            h
            for (h,) in conn.execute(
                sa.select(t.couplings.c.household_id).where(t.couplings.c.batch_id == batch)
            )
        ]
    with sign_in(site.url, "regie", site.password("regie")) as c:
        page = c.get(f"/batch/{batch}").text
        r = c.post(f"/batch/{batch}/approve", data={"csrf": csrf_of(page), "reason": ""})
    assert r.status_code == 400 and "a hard criterion; approving" in r.text, r.text
    assert ids and not [h for h in ids if h in r.text]
    assert not [line for line in site.log for h in ids if h in line]
    with site.ledger.read() as conn:
        status = conn.execute(
            sa.select(t.batches.c.status).where(t.batches.c.id == batch)
        ).scalar_one()
    assert status == "proposed"
