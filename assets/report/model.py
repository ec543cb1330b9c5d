"""What the report shows, as plain values: rendering and tests need no warehouse."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

#: The marts the report sections read; a missing one becomes a notice, not a failure.
REPORT_TABLES = ("watchlist", "watchlist_history", "portfolio_monthly")


def missing_message(table: str) -> str:
    """The notice shown (and logged) in place of a section whose mart is not built yet."""
    return (
        f"marts.{table} does not exist yet (first run, or its asset has not been "
        "materialized); this section is empty."
    )


@dataclass
class BacktestView:
    """The early warning's back-test on the bank's own outcomes, and the model card."""

    engine: str = ""
    runs: list[dict] = field(default_factory=list)
    roc: list[dict] = field(default_factory=list)
    calibration: list[dict] = field(default_factory=list)
    cutoffs: list[dict] = field(default_factory=list)
    weak_signals: list[dict] = field(default_factory=list)
    model: dict | None = None


@dataclass
class ReportData:
    """Everything the HTML report shows; plain values so rendering needs no warehouse."""

    as_of: date
    generated_at: str = ""
    watchlist_columns: list[str] = field(default_factory=list)
    watchlist_rows: list[dict] = field(default_factory=list)
    enterprise_names: dict[str, str] = field(default_factory=dict)
    tier_history: list[tuple[str, str, int]] = field(default_factory=list)
    npl_month_end: str | None = None
    npl_by_industry: list[tuple[str, float, float]] = field(default_factory=list)
    npl_by_branch: list[tuple[str, float, float]] = field(default_factory=list)
    screening_decisions: list[tuple[str, int]] | None = None
    backtest: BacktestView | None = None
    #: The previous refresh (as-of date) in watchlist_history and the firms that left since.
    previous_as_of: str | None = None
    previous_tiers: dict[str, str] = field(default_factory=dict)
    cleared: list[dict] = field(default_factory=list)
    #: (month_end, tier, firms) at the last 12 month ends, from the decision history.
    tier_by_month: list[tuple[str, str, int]] = field(default_factory=list)
    #: (month_end, npl_principal, outstanding) of the whole book at the last 12 month ends.
    npl_trend: list[tuple[str, float, float]] = field(default_factory=list)
    industry_names: dict[str, str] = field(default_factory=dict)
    branch_names: dict[str, str] = field(default_factory=dict)
    #: Pre-lending screening of the last month: window, decisions, main rules.
    screening_window: tuple[str, str] | None = None
    screening_month: list[tuple[str, int]] = field(default_factory=list)
    screening_rules: list[tuple[str, str, int]] = field(default_factory=list)
    #: Guarantee circles with members in trouble at the latest month end <= D (issue 13):
    #: dicts with circle_id, month_end, members (list of dicts: enterprise_id, name, state,
    #: exposure), edges ([(guarantor_id, borrower_id)]), total_exposure, exposure_at_risk.
    circles: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    #: SQL relation the watchlist rows come from: marts.watchlist (the current date), or D's
    #: rows of marts.watchlist_history for a past date (empty: marts.watchlist).
    watchlist_from: str = ""

    @classmethod
    def without_warehouse(cls, as_of: date) -> ReportData:
        """Before the first load there is no warehouse file: every section says so."""
        return cls(
            as_of=as_of,
            generated_at=now(),
            missing={t: missing_message(t) for t in REPORT_TABLES},
        )

    @property
    def new_entries(self) -> list[dict]:
        return [r for r in self.watchlist_rows if str(r.get("status") or "") == "new"]

    @property
    def escalated(self) -> list[dict]:
        return [r for r in self.watchlist_rows if str(r.get("status") or "") == "escalated"]


def now() -> str:
    """Generation time as shown in the report header (local time, to the second)."""
    return datetime.now().isoformat(timespec="seconds")


def as_items(value: object, *, reasons: bool = False) -> list[str]:
    """A signals/reasons cell as a list, whether the mart stores VARCHAR[] or text.

    Text may be a JSON array or delimited; reasons are prose (they may hold commas), so they
    split only on semicolons, `|` and newlines, signals also on commas.
    """
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return as_items(parsed, reasons=reasons)
        except ValueError:
            text = text[1:-1]
    pattern = r"[;；|\n]" if reasons else r"[;；|\n,，]"
    return [p.strip().strip("'\"").strip() for p in re.split(pattern, text) if p.strip()]


def top_counts(
    values: Iterable[object], *, reasons: bool = False, n: int = 15
) -> list[tuple[str, int]]:
    """Most frequent items over a column of list-or-text cells (each counted once per row).

    Counted here rather than in SQL because the cells may be text in any of the shapes
    `as_items` reads, and the watchlist rows are already fetched for the full table.
    """
    counter: Counter[str] = Counter()
    for v in values:
        counter.update(set(as_items(v, reasons=reasons)))
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
