"""Load on the loopback interface: 20 concurrent sessions reviewing and overriding one batch lose
no write and never over-spend a quota; the batch page of a 2,500-coupling batch is served (its
time is printed, with only a generous sanity bound)."""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import sqlalchemy as sa
from webutil import csrf_of, sign_in

from coupler.ledger import approve, quota_state
from coupler.ledger import schema as t
from coupler.ledger.explanations import review_households, review_overrides
from coupler.ledger.users import add_user

SESSIONS = 20


def test_concurrent_reviewers_lose_no_write_and_never_overspend(site) -> None:
    """20 regievoerders in parallel each open the batch and two households and override both to
    the same two municipalities. Every accepted override is in the ledger with its author and an
    audit row, refusals are only for lack of room, the planned persons never exceed any
    municipality's room, and the batch then approves within quota."""
    b = site.demo.batch_id
    with site.ledger.read() as conn:
        period = site.ledger.open_period(conn)
        q = quota_state(conn, period.id).set_index("municipality")
        cp = pd.DataFrame(
            conn.execute(
                sa.select(
                    t.couplings.c.household_id, t.couplings.c.municipality, t.couplings.c.persons
                )
                .where((t.couplings.c.batch_id == b) & (t.couplings.c.status == "proposed"))
                .order_by(t.couplings.c.household_id)
            ).all(),
            columns=["household_id", "municipality", "persons"],
        )
    planned = cp.groupby("municipality")["persons"].sum()
    room = (q["available"] - q["reserved"]).sub(planned, fill_value=0)
    targets = [str(c) for c in room.sort_values(ascending=False).index[:2]]
    movers = cp[~cp["municipality"].isin(targets)].head(2 * SESSIONS)
    assert len(movers) == 2 * SESSIONS
    # Give the two targets room for about half of the moves, so that both outcomes are common.
    half = int(movers["persons"].sum()) // 4
    with site.ledger.write("test room") as tx:
        for c in targets:
            tx.conn.execute(
                t.quotas.update()
                .where((t.quotas.c.period_id == period.id) & (t.quotas.c.municipality == c))
                .values(quota=t.quotas.c.quota + max(0, half - int(room[c])))
            )
    with site.ledger.read() as conn:
        q = quota_state(conn, period.id).set_index("municipality")
    names = [str(q.at[c, "name"]) for c in targets]
    for i in range(SESSIONS):
        add_user(site.ledger, f"rv{i:02d}", "regievoerder", f"password-of-rv{i:02d}")

    results: list[tuple[str, str, str, int]] = []  # (user, household, target code, status)
    lock = threading.Lock()
    barrier = threading.Barrier(SESSIONS)
    errors: list[BaseException] = []

    def reviewer(i: int) -> None:
        try:
            name = f"rv{i:02d}"
            with sign_in(site.url, name, f"password-of-rv{i:02d}") as c:
                c.get(f"/batch/{b}").raise_for_status()
                barrier.wait(timeout=120)
                for k in range(2):
                    h = movers["household_id"].iloc[2 * i + k]
                    page = c.get(f"/batch/{b}/household/{h}")
                    page.raise_for_status()
                    target = (i + k) % 2
                    r = c.post(
                        f"/batch/{b}/household/{h}/override",
                        data={
                            "csrf": csrf_of(page.text),
                            "municipality": names[target],
                            "reason": f"load {name}",
                        },
                    )
                    with lock:
                        results.append((name, h, targets[target], r.status_code))
                    if r.status_code == 400:
                        assert "places left" in r.text
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(i,)) for i in range(SESSIONS)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    elapsed = time.perf_counter() - start
    assert not errors, errors[0]
    assert len(results) == 2 * SESSIONS
    assert {s for *_, s in results} <= {200, 400}
    accepted = {(u, h, c) for u, h, c, s in results if s == 200}
    assert accepted, "no override went through"

    with site.ledger.read() as conn:
        stored = {
            (r.by, r.household_id, r.municipality)
            for r in conn.execute(
                sa.select(review_overrides).where(review_overrides.c.batch_id == b)
            )
        }
        audited = conn.execute(
            sa.select(t.audit.c.who, t.audit.c.subject, t.audit.c.detail).where(
                t.audit.c.action == "override-pending"
            )
        ).all()
        q2 = quota_state(conn, period.id).set_index("municipality")
    assert stored == accepted  # no accepted write lost, nothing stored that was refused
    assert {(w, s, json.loads(d)["to"]) for w, s, d in audited} == accepted
    moved = cp.set_index("household_id")
    now = moved["municipality"].copy()
    for _, h, c in accepted:
        now[h] = c
    need = moved["persons"].groupby(now).sum()
    free = q2["available"] - q2["reserved"]
    assert (need <= free.reindex(need.index)).all()  # never over-spent
    s = approve(site.ledger, b, reason="load test")
    assert s["overrides"] == len(accepted)
    with site.ledger.read() as conn:
        final = quota_state(conn, period.id)
    assert (final["coupled"] <= final["target"].clip(lower=0)).all()
    print(
        f"\n{SESSIONS} sessions, {len(results)} overrides ({len(accepted)} accepted) in {elapsed:.1f} s"
    )


def _grow_batch(site, size: int) -> None:
    """Copy the proposed batch's couplings (and explanations) until it holds ``size`` couplings:
    the page's work depends on the rows, not on how the engine made them."""
    b = site.demo.batch_id
    with site.ledger.write("test grow") as tx:
        conn = tx.conn
        rows = [
            dict(r)
            for r in conn.execute(
                sa.select(t.couplings).where(t.couplings.c.batch_id == b)
            ).mappings()
        ]
        expl = {
            r["household_id"]: dict(r)
            for r in conn.execute(
                sa.select(review_households).where(review_households.c.batch_id == b)
            ).mappings()
        }
        new, new_expl = [], []
        k = 0
        while len(rows) + len(new) < size:
            src = rows[k % len(rows)]
            hid = f"X{k:06d}"
            new.append({**{c: v for c, v in src.items() if c != "id"}, "household_id": hid})
            e = expl.get(src["household_id"])
            if e is not None:
                new_expl.append({**e, "household_id": hid})
            k += 1
        conn.execute(t.couplings.insert(), new)
        conn.execute(review_households.insert(), new_expl)


def test_batch_page_with_2500_couplings(site) -> None:
    """The batch page of a batch with 2,500 couplings is served (default page of 100 rows and a
    500-row page, sorted and filtered), each within a generous sanity bound; times printed."""
    _grow_batch(site, 2500)
    b = site.demo.batch_id
    with sign_in(site.url, "regie", site.password("regie")) as c:
        c.get(f"/batch/{b}").raise_for_status()  # warm
        times = {}
        for label, params in (
            ("default (100 rows)", {}),
            ("500 rows", {"per_page": 500}),
            ("sorted by score, desc", {"sort": "score", "dir": "desc"}),
            ("filtered: province", {"province": "Gelderland"}),
        ):
            start = time.perf_counter()
            r = c.get(f"/batch/{b}", params=params)
            times[label] = time.perf_counter() - start
            r.raise_for_status()
            assert "2500 koppelingen" in r.text or params
    print("\nbatch page, 2,500 couplings: " + ", ".join(f"{k} {v:.3f} s" for k, v in times.items()))
    assert max(times.values()) < 30
