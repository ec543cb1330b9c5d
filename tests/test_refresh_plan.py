"""A night with nothing new: the schedule and `risk refresh` share one decision
(assets/refresh_plan.py) and skip the rebuild; anything that would change the published
warehouse makes them rebuild."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES

from assets.refresh_plan import (
    PublishedState,
    RefreshFacts,
    code_version,
    decide_refresh,
    plan_refresh,
)

D = date(2024, 12, 31)
T = datetime(2024, 12, 30, 8, 0)
LANDING = {("loans", "/l/loans/a.csv"): (10, T), ("repayments", "/l/repayments/a.csv"): (20, T)}
SAME = RefreshFacts(
    as_of_date=D, code_version="v1", key_check="k1", landing=LANDING,
    published=PublishedState(D, "v1", frozenset({"k1"}), dict(LANDING)),
    build_written_after_publish=False,
)


def _published(**changes) -> RefreshFacts:
    return replace(SAME, published=replace(SAME.published, **changes))


def test_nothing_new_is_no_rebuild_and_full_always_rebuilds() -> None:
    plan = plan_refresh(SAME)
    assert not plan.rebuild and "nothing to do" in plan.reason
    assert plan_refresh(SAME, full=True).rebuild


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (replace(SAME, published=None), "no published warehouse"),
        (replace(SAME, as_of_date=date(2025, 1, 1)), "as-of date 2025-01-01 differs"),
        (_published(code_version="v0"), "code, dbt project or rule files changed"),
        (_published(code_version=None), "code, dbt project or rule files changed"),
        (replace(SAME, key_check="k2"), "pseudonym key changed"),
        (replace(SAME, build_written_after_publish=True), "build file changed"),
        (replace(SAME, previous_run_interrupted=True), "previous refresh was interrupted"),
        (replace(SAME, landing={**LANDING, ("loans", "/l/loans/b.csv"): (5, T)}), "1 new"),
        (replace(SAME, landing={**LANDING, ("loans", "/l/loans/a.csv"): (11, T)}), "1 changed"),
        (replace(SAME, landing={("loans", "/l/loans/a.csv"): (10, T)}), "1 removed"),
    ],
)
def test_every_difference_from_the_published_refresh_rebuilds(
    facts: RefreshFacts, reason: str
) -> None:
    plan = plan_refresh(facts)
    assert plan.rebuild and reason in plan.reason


def test_a_redelivered_file_with_a_new_mtime_is_changed() -> None:
    later = replace(SAME, landing={**LANDING, ("loans", "/l/loans/a.csv"): (10, T.replace(hour=9))})
    assert plan_refresh(later).changed_files == ("/l/loans/a.csv",)


def test_code_version_follows_the_rule_files(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "assets" / "signals").mkdir(parents=True)
    catalog = root / "assets" / "signals" / "catalog.yml"
    catalog.write_text("version: '1'\n")
    before = code_version(root)
    assert code_version(root) == before
    catalog.write_text("version: '2'\n")
    assert code_version(root) != before


def test_nothing_published_yet_rebuilds(tmp_path: Path) -> None:
    """The first night: no published warehouse, so there is something to do. (The second
    night with nothing new, end to end, is in tests/test_nights.py: it shares the first
    night's refresh.)"""
    landing = tmp_path / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    assert decide_refresh(tmp_path / "w.duckdb", landing, D).rebuild


HOLD = """
import sys, time; sys.path.insert(0, {root!r})
from pathlib import Path
from assets.core import publish
publish.acquire(Path({path!r}), what="a refresh that gets killed")
print("locked", flush=True)
time.sleep(600)
"""


def test_a_refresh_killed_while_holding_the_lock_is_seen_by_the_next(tmp_path: Path) -> None:
    import subprocess
    import sys

    from assets.core import publish

    published = tmp_path / "w.duckdb"
    with publish.run_lock(published):
        assert not publish.holder_was_interrupted(published)  # a fresh lock file
    assert not publish.holder_was_interrupted(published)  # released cleanly: empty
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(root=root, path=str(published))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
    finally:
        proc.kill()
        proc.wait()
    assert publish.holder_was_interrupted(published)  # from outside: the file names it
    with publish.run_lock(published):
        assert publish.holder_was_interrupted(published)  # what this holder found
    assert not publish.holder_was_interrupted(published)


def test_a_whole_enterprise_recompute_takes_its_guarantee_and_link_neighbours() -> None:

    from assets.refresh_plan import _neighbours

    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    assert _neighbours(con, {"A"}) == set()  # a landing without the network tables
    con.execute("CREATE TABLE raw.loans AS SELECT * FROM (VALUES ('L1', 'A'), ('L2', 'B'), "
                "('L3', 'E')) AS t(loan_id, enterprise_id)")
    # C guarantees A's loan; A guarantees B's; a fund (no enterprise) guarantees E's
    con.execute("CREATE TABLE raw.guarantees AS SELECT * FROM (VALUES ('G1', 'L1', 'C'), "
                "('G2', 'L2', 'A'), ('G3', 'L3', 'GF11')) AS t(guarantee_id, loan_id, "
                "guarantor_id)")
    con.execute("CREATE TABLE raw.enterprise_links AS SELECT * FROM (VALUES ('D', 'A'), "
                "('E', 'F')) AS t(enterprise_id, related_id)")
    assert _neighbours(con, {"A"}) == {"B", "C", "D"}
    assert _neighbours(con, {"F"}) == {"E"}
    assert _neighbours(con, set()) == set()
