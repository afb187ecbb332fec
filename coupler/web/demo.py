"""A demo ledger for ``coupler serve --demo``: everything the review screen shows, made up.

It holds one open period (a small national total, 1,500, so that some hard criteria must break), an approved first batch, one omkoppeling
request decided against it, a few Kansrijke Koppelingen, and a proposed second batch of generated
(synthetic, pseudonymous) households to review, plus three accounts with random passwords: a
regievoerder, an analist and a gemeente user for the municipality with the most couplings in the
proposed batch.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from coupler.generate import generate_cases
from coupler.ledger import Ledger, Pacing, approve, open_period, propose
from coupler.ledger import schema as t
from coupler.ledger.kansrijk import propose_provisional  # defines provisional_context, likewise
from coupler.ledger.omkoppeling import omkoppel
from coupler.ledger.users import add_user


@dataclass(frozen=True)
class Demo:
    """Where the demo ledger is, its proposed batch and the accounts with their passwords."""

    db: Path  # the SQLite file (unused when built at a database URL)
    batch_id: int
    accounts: tuple[tuple[str, str, str], ...]  # (name, role, password)


def build_demo(
    folder: Path,
    *,
    persons: int = 400,
    total: int = 1500,
    seed: int = 7,
    db_url: str | None = None,
) -> Demo:
    """Create the demo ledger in ``folder`` (or at ``db_url``, an empty database)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "demo-ledger.sqlite"
    ledger = Ledger.open(None if db_url else db, db_url=db_url, user="demo")
    path = resources.files("coupler.scenarios") / "nl-2024" / "municipalities.csv"
    municipalities = pd.read_csv(str(path))
    try:
        open_period(ledger, "2025-H1", total, reason="demo")
        hh, cr = generate_cases(municipalities, persons=60, seed=seed)
        hh["household_id"] = "A" + hh["household_id"].astype(str)
        cr["household_id"] = "A" + cr["household_id"].astype(str)
        first = propose(ledger, hh, cr, pacing=Pacing(enabled=False))
        approve(ledger, first.batch_id, reason="demo: first batch")
        with ledger.read() as conn:
            coupled = conn.execute(
                sa.select(t.couplings.c.household_id, t.couplings.c.municipality)
                .where(
                    (t.couplings.c.batch_id == first.batch_id)
                    & (t.couplings.c.status == "approved")
                )
                .order_by(t.couplings.c.id)
            ).all()
        _omkoppeling(ledger, folder, [h for h, _ in coupled[:2]])
        _kansrijk(ledger, folder, municipalities, seed)
        hh2, cr2 = generate_cases(municipalities, persons=persons, seed=seed + 1)
        second = propose(ledger, hh2, cr2, pacing=Pacing(enabled=False))
        with ledger.read() as conn:
            top = conn.execute(
                sa.select(t.couplings.c.municipality, sa.func.count())
                .where(
                    (t.couplings.c.batch_id == second.batch_id)
                    & t.couplings.c.municipality.is_not(None)
                )
                .group_by(t.couplings.c.municipality)
                .order_by(sa.func.count().desc(), t.couplings.c.municipality)
            ).first()
        gemeente = str(top[0]) if top else "GM0363"
        accounts = []
        for name, role in (
            ("regie", "regievoerder"),
            ("analist", "analist"),
            ("gemeente", f"gemeente:{gemeente}"),
        ):
            password = secrets.token_urlsafe(12)
            add_user(ledger, name, role, password)
            accounts.append((name, role, password))
    finally:
        ledger.close()
    return Demo(db, int(second.batch_id), tuple(accounts))


def _omkoppeling(ledger: Ledger, folder: Path, households: list[str]) -> None:
    rows = [
        {
            "request_id": f"R{i + 1:02d}",
            "household_id": h,
            "job_municipality": "Eindhoven",
            "job_type": "welding" if i == 0 else "cleaning",
            "matches_education": "yes",
            "matches_experience": "no",
            "available_in_current_region": "no",
            "contract_signed": "yes",
            "monthly_salary": 2400,
            "contract_months": 12,
            "contract_year": 2025,
            "payslip_seen": "yes",
            "reba_paid": "yes",
            "housing_offered": "no",
            "inburgering_started": "no",
        }
        for i, h in enumerate(households)
    ]
    path = folder / "omkoppeling-requests.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    omkoppel(ledger, path)


def _kansrijk(ledger: Ledger, folder: Path, municipalities: pd.DataFrame, seed: int) -> None:
    hh, cr = generate_cases(municipalities, persons=12, seed=seed + 2)
    hh["household_id"] = "K" + hh["household_id"].astype(str)
    cr["household_id"] = "K" + cr["household_id"].astype(str)
    hh["grant_probability"] = 0.85
    hpath, cpath = folder / "kansrijk-households.csv", folder / "kansrijk-criteria.csv"
    hh.to_csv(hpath, index=False)
    cr.to_csv(cpath, index=False)
    propose_provisional(ledger, hpath, cpath)


__all__ = ["Demo", "build_demo"]
