"""The review screen for regievoerders: a server-rendered web application over the ledger.

Start it with ``coupler serve --db LEDGER`` (or ``coupler serve --demo``); see docs/web.md.
"""

from __future__ import annotations

from coupler.web.app import create_app

__all__ = ["create_app"]
