"""The ledger: memory across monthly batches (DOMAIN.md sections 2, 5, 6).

A real database (SQLite by default, any SQLAlchemy URL by option) that holds periods and their
quotas with the carried backlog, batches with proposed and approved couplings, omkoppeling
decisions, provisional (Kansrijke) couplings and an audit log. Every command is one transaction.
See docs/ledger.md.
"""

from __future__ import annotations

from coupler.ledger.batches import (
    Pacing,
    Proposal,
    approve,
    batch_table,
    paced_remaining,
    progress_table,
    propose,
    withdraw,
)
from coupler.ledger.housing import HousingRules
from coupler.ledger.periods import audit_trail, close_period, open_period, period_status
from coupler.ledger.schema import SCHEMA_VERSION
from coupler.ledger.store import Ledger, LedgerError, backup, check, quota_state
from coupler.ledger.users import User

# Every module that defines tables on the shared metadata is imported here, so that creating or
# upgrading a ledger (store.ensure_schema: metadata.create_all) knows all of them.
from coupler.ledger import context, explanations, kansrijk, sessions  # noqa: E402, F401  isort: skip

__all__ = [
    "SCHEMA_VERSION",
    "HousingRules",
    "Ledger",
    "LedgerError",
    "Pacing",
    "Proposal",
    "approve",
    "audit_trail",
    "backup",
    "batch_table",
    "check",
    "close_period",
    "open_period",
    "paced_remaining",
    "period_status",
    "progress_table",
    "propose",
    "quota_state",
    "withdraw",
    "User",
]
