"""The HTML report renders in headless Chromium with its map, plots and tables visible."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from coupler import SolveParams
from coupler.analysis.compare import compare, load_variants
from coupler.analysis.report import render

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def _artifacts() -> Path:
    d = Path(
        os.environ.get("COUPLER_ARTIFACTS") or Path(tempfile.gettempdir()) / "coupler-artifacts"
    )
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_report_renders_in_chromium(tiny_instance, tmp_path: Path) -> None:
    """Map, plots, KPI and impact tables of a two-variant comparison are visible in headless
    Chromium with the network cut off, and no request leaves the page."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (no browser download)"
    )
    agreement = tmp_path / "radius.toml"
    agreement.write_text(
        '[agreement]\nname = "r30"\n[policy.hard]\nradius_km = 30.0\n', encoding="utf-8"
    )
    comparison = compare(
        tiny_instance,
        load_variants(["default", str(agreement)]),
        params=SolveParams(time_limit=20),
    )
    page_file = tmp_path / "report.html"
    page_file.write_text(render(comparison.to_json()), encoding="utf-8")
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1300, "height": 900})
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            for selector in (
                "#summary",
                "#kpi-table",
                "#impact-table",
                "svg.map",
                "#plots svg",
                "#groups-table",
            ):
                assert page.locator(selector).first.is_visible(), selector
            assert page.locator("svg.map").count() == 3
            assert page.locator("svg.map path.gm").count() == 3 * tiny_instance.n_municipalities
            assert page.locator("#plots .plot svg").count() >= 2
            rows = page.locator("#kpi-table tbody tr").count()
            assert rows > 20
            box = page.locator("svg.map").first.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100
            shot = _artifacts() / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    shutil.copy(page_file, _artifacts() / "report.html")
