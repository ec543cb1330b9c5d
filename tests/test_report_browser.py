"""The report in a real headless browser (Chromium): it renders, on a desktop and a phone width.

Skipped when Chromium is not installed. The screenshots land in the test's tmp directory
(`pytest --basetemp=DIR` keeps them) so a person can look at them; the test checks a PNG is
written at the window's size and is not blank (many colours: text, red/amber tiers, charts).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from assets.report.model import ReportData
from assets.report.render import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
Image = pytest.importorskip("PIL.Image")

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def _data() -> ReportData:
    rows = [
        {
            "as_of_date": "2026-10-31", "enterprise_id": f"91330100MA2{i:07d}", "tier": tier,
            "risk_score": 90 - i, "signals": ["overdue_now", "tax_arrears"],
            "reasons": "a loan is 45 days past due; 120000 CNY of tax unpaid",
            "first_flagged_date": "2026-09-30", "status": status,
            "recommended_action": None, "name": f"杭州示例{i}号机械制造有限公司",
            "branch_id": "BR330101", "branch_name": "杭州城东支行", "exposure": 1_250_000.0 * i,
        }
        for i, (tier, status) in enumerate(
            [("red", "new"), ("red", "escalated"), ("amber", "continuing")] * 4, start=1
        )
    ]
    return ReportData(
        as_of=date(2026, 10, 31), generated_at="2026-11-01T02:10:00",
        watchlist_columns=list(rows[0]), watchlist_rows=rows,
        tier_by_month=[(f"2026-{m:02d}-28", t, n) for m in range(1, 11)
                       for t, n in (("red", m), ("amber", 2 * m))],
        npl_trend=[(f"2026-{m:02d}-28", 1000.0 * m, 100000.0) for m in range(1, 11)],
        npl_month_end="2026-10-31",
        npl_by_industry=[("C", 0.05, 1e8), ("F", 0.12, 5e7), ("A", 0.0, 1e6)],
        npl_by_branch=[("BR330101", 0.08, 2e7), ("BR330102", 0.0, 3e7)],
        industry_names={"C": "制造业", "F": "批发和零售业", "A": "农、林、牧、渔业"},
        branch_names={"BR330101": "杭州城东支行"},
        previous_as_of="2026-10-30",
    )


def _screenshot(html: Path, png: Path, width: int, height: int) -> None:
    profile = png.with_suffix(".profile")
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
         f"--window-size={width},{height}", html.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert png.exists(), proc.stderr[-2000:]


@pytest.mark.parametrize(("device", "width"), [("desktop", 1280), ("phone", 390)])
def test_report_renders_in_a_browser(tmp_path: Path, device: str, width: int) -> None:
    html = tmp_path / "report.html"
    html.write_text(render_report(_data(), lang="zh"), encoding="utf-8")
    png = tmp_path / f"report-{device}.png"
    _screenshot(html, png, width, 2000)
    with Image.open(png) as im:
        assert im.size == (width, 2000)
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50, "the page looks blank"
        # Red of the red tier (cards, labels, bars) is on the page.
        assert any(r > 150 and g < 90 and b < 80 for _, (r, g, b) in colours)
