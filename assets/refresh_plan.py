"""Does tonight's refresh have anything to do? One answer for the schedule and `risk refresh`.

A refresh rebuilds when any of these differs from what the published warehouse holds (its
`main.published_refresh` row and its `raw.load_manifest`): the as-of date, the code version
(a hash of the pipeline's code, dbt project and rule files: catalog, scorecard, access
rules), the pseudonym key, a landing file (new, changed in size or mtime, or gone), the
build file was written after the publish (a back-test refit, a failed run), or the last
holder of the run lock was killed (its run is then marked failed by the rebuild). Otherwise the
published warehouse already is what a rebuild would publish: the schedule returns a
SkipReason and `risk refresh` prints one line and exits 0. `risk refresh --full` (run tag
`risk/full_refresh`) always rebuilds.

`plan_refresh` is pure (facts in, decision out); `refresh_facts` gathers the facts from the
landing zone and the two DuckDB files, read-only. Plain Python and DuckDB; no Dagster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from assets.contract import LOAD_ORDER, TABLES
from assets.core import publish, settings
from assets.core.metadata import table_exists
from assets.ingestion import file_stamp, pseudonym_key_check, scan_landing

#: Run tag (and `risk refresh --full`): rebuild even when nothing changed.
FULL_REFRESH_TAG = "risk/full_refresh"
#: What the code version hashes: everything that shapes what a refresh publishes.
_CODE_GLOBS = (
    ("assets", "**/*.py"),
    ("assets", "**/*.yml"),
    ("assets", "**/*.json"),
    ("assets", "**/*.j2"),
    ("assets", "**/*.html"),
    ("dbt_project", "dbt_project.yml"),
    ("dbt_project", "profiles.yml"),
    ("dbt_project/models", "**/*"),
    ("dbt_project/macros", "**/*"),
    ("dbt_project/seeds", "**/*"),
    ("dbt_project/tests", "**/*"),
    ("orchestration", "**/*.py"),
)

FileKey = tuple[str, str]  # (table, source file)
Stamp = tuple[int, datetime]  # (size, mtime) as raw.load_manifest records them


@dataclass(frozen=True)
class PublishedState:
    """What the published warehouse says about the refresh it holds."""

    as_of_date: date | None
    code_version: str | None
    key_checks: frozenset[str]
    loaded: Mapping[FileKey, Stamp]


@dataclass(frozen=True)
class RefreshFacts:
    as_of_date: date
    code_version: str
    key_check: str
    landing: Mapping[FileKey, Stamp]
    published: PublishedState | None
    build_written_after_publish: bool
    previous_run_interrupted: bool = False


@dataclass(frozen=True)
class RefreshPlan:
    rebuild: bool
    reason: str
    new_files: tuple[str, ...] = field(default=())
    changed_files: tuple[str, ...] = field(default=())
    removed_files: tuple[str, ...] = field(default=())


def plan_refresh(facts: RefreshFacts, *, full: bool = False) -> RefreshPlan:
    """Rebuild or not, and why (one line). Pure: the same facts give the same plan."""
    if full:
        return RefreshPlan(True, "full rebuild requested")
    pub = facts.published
    if pub is None:
        return RefreshPlan(True, "no published warehouse from an earlier refresh")
    if pub.as_of_date != facts.as_of_date:
        return RefreshPlan(
            True, f"as-of date {facts.as_of_date} differs from the published {pub.as_of_date}"
        )
    if pub.code_version != facts.code_version:
        return RefreshPlan(True, "code, dbt project or rule files changed since the publish")
    if facts.key_check not in pub.key_checks and pub.key_checks:
        return RefreshPlan(True, "the pseudonym key changed")
    if facts.previous_run_interrupted:
        return RefreshPlan(True, "the previous refresh was interrupted (its process was killed)")
    if facts.build_written_after_publish:
        return RefreshPlan(
            True, "the build file changed after the publish (a back-test refit or a failed run)"
        )
    new = tuple(sorted(f for _, f in facts.landing.keys() - pub.loaded.keys()))
    removed = tuple(sorted(f for _, f in pub.loaded.keys() - facts.landing.keys()))
    changed = tuple(sorted(
        f for k, (size, mtime) in facts.landing.items()
        if k in pub.loaded and (pub.loaded[k][0], pub.loaded[k][1]) != (size, mtime)
        for f in (k[1],)
    ))
    if new or changed or removed:
        parts = [f"{len(x)} {what}" for x, what in ((new, "new"), (changed, "changed"),
                                                   (removed, "removed")) if x]
        return RefreshPlan(True, f"landing files: {', '.join(parts)}", new, changed, removed)
    return RefreshPlan(
        False,
        f"nothing to do: no new or changed landing files, as of {facts.as_of_date} already "
        "published with this code",
    )


# ---------------------------------------------------------------------------------------------
# Gathering the facts


def code_version(root: Path = settings.PROJECT_ROOT) -> str:
    """sha256 (16 hex) over the paths and bytes of the code, dbt project and rule files."""
    digest = hashlib.sha256()
    files: set[Path] = set()
    for folder, pattern in _CODE_GLOBS:
        files |= {p for p in (root / folder).glob(pattern) if p.is_file()
                  and "__pycache__" not in p.parts}
    for p in sorted(files):
        digest.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def landing_stamps(landing_dir: Path) -> dict[FileKey, Stamp]:
    """{(table, file): (size, mtime)} of every landing file ingestion would read."""
    landing_dir = landing_dir.resolve()
    return {
        (table, str(p)): file_stamp(p)
        for table in LOAD_ORDER
        for p in scan_landing(landing_dir, table)[0]
    }


def published_state(published: Path) -> PublishedState | None:
    """The published file's refresh row and load manifest; None when it has none (never
    published, or published before code versions were recorded) or cannot be read."""
    if not published.is_file():
        return None
    try:
        with duckdb.connect(str(published), read_only=True) as con:
            cols = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = 'main' AND table_name = "
                "'published_refresh'").fetchall()}
            if not {"as_of_date", "code_version"} <= cols:
                return None
            as_of, version = con.execute(
                "SELECT CAST(as_of_date AS DATE), CAST(code_version AS VARCHAR) "
                f"FROM {publish.PUBLISH_INFO} LIMIT 1").fetchone()
            loaded = {
                (t, f): (size, mtime)
                for t, f, size, mtime in con.execute(
                    "SELECT table_name, source_file, file_size, file_mtime "
                    "FROM raw.load_manifest QUALIFY row_number() OVER ("
                    "PARTITION BY table_name, source_file ORDER BY loaded_at DESC) = 1"
                ).fetchall()
            }
            keys = frozenset(r[0] for r in con.execute(
                "SELECT key_check FROM raw.pseudonym_keys").fetchall())
    except duckdb.Error:
        return None
    return PublishedState(as_of, version, keys, loaded)


def build_written_after_publish(published: Path) -> bool:
    """Whether the build file (or its WAL) was modified after the published file was."""
    if not published.is_file():
        return True
    build = publish.build_path(published)
    stamps = [p.stat().st_mtime_ns for p in (build, Path(f"{build}.wal")) if p.exists()]
    return bool(stamps) and max(stamps) > published.stat().st_mtime_ns


def refresh_facts(published: Path, landing_dir: Path, as_of: date) -> RefreshFacts:
    """Everything `plan_refresh` decides from, read without writing anything."""
    return RefreshFacts(
        as_of_date=as_of,
        code_version=code_version(),
        key_check=pseudonym_key_check(),
        landing=landing_stamps(landing_dir),
        published=published_state(published),
        build_written_after_publish=build_written_after_publish(published),
        previous_run_interrupted=publish.holder_was_interrupted(published),
    )


def decide_refresh(
    published: Path, landing_dir: Path, as_of: date, *, full: bool = False
) -> RefreshPlan:
    """The plan for a refresh of `published` from `landing_dir` as of `as_of`."""
    if full:
        return plan_refresh(RefreshFacts(as_of, "", "", {}, None, True), full=True)
    return plan_refresh(refresh_facts(published, landing_dir, as_of))


# ---------------------------------------------------------------------------------------------
# Incremental nights: the earliest month end tonight's changes touch

#: Table in the build file: the as-of date and code version its month-end facts were last
#: built for (written after a successful dbt step, removed when one starts).
INCREMENTAL_BASE = "main.dbt_incremental_base"
#: Nothing to recompute (every changed row is dated after the last month end <= D).
NOTHING = date.max
_ALL = "DATE '0001-01-01'"
#: Per landing table: the earliest date a row can change a month-end fact from (SQL over the
#: raw columns, alias r). A row's own dates, never its file's; a schedule row moves its
#: loan's settlements (prepayments included), so from the loan's contract or disbursement;
#: enterprise master data (industry peers, size, region) recomputes every month end.
AFFECTED_FROM: dict[str, str] = {
    "repayments": "r.payment_date",
    "fund_flows": "r.txn_date",
    "registry_events": "CASE WHEN r.event_type <> 'status_change' THEN r.event_date END",
    "tax_filings": "least(last_day(try_cast(r.period || '-01' AS DATE)), r.filed_date)",
    "tax_ratings": "make_date(CAST(r.year AS INTEGER), 1, 1)",
    "utility_bills": "least(last_day(try_cast(r.period || '-01' AS DATE)), r.paid_date)",
    "loans": "least(r.contract_date, r.disbursement_date)",
    "repayment_schedule": "least(r.due_date, (SELECT least(min(l.contract_date), "
                          "min(l.disbursement_date)) FROM {db}raw.loans AS l "
                          "WHERE l.loan_id = r.loan_id))",
    "loan_applications": "r.application_date",
    "enterprises": _ALL,
}


#: Per landing table: rows that change every month end of their enterprise (SQL condition,
#: alias r): a status change also sets the status shown before it
#: (int_enterprise_month__registry_events). Those enterprises are recomputed whole.
WHOLE_ENTERPRISE: dict[str, str] = {"registry_events": "r.event_type = 'status_change'"}

#: The tables whose rows start an enterprise's month-end rows (int_enterprise__month_spine:
#: from its first data, else from its establishment month). A firm with no row in any of
#: them until tonight starts later from tonight on, so its earlier rows go: recomputed whole.
FIRST_DATA = ("tax_filings", "utility_bills", "registry_events", "loans", "loan_applications")

#: The tables whose rows settle a loan's installments (int_loan_installments__settled): a
#: changed row (and the published version it replaces) settles its loan again tonight.
LOAN_ROWS = ("loans", "repayment_schedule", "repayments")


def _last_month_end(d: date) -> date:
    """The last month end on or before d."""
    return d if _is_month_end(d) else date(d.year, d.month, 1) - timedelta(days=1)


def _is_month_end(d: date) -> bool:
    return d == date.max or (d + timedelta(days=1)).day == 1


def _next_month_end(me: date) -> date:
    d = me + timedelta(days=1)
    while not _is_month_end(d):
        d += timedelta(days=1)
    return d


@dataclass(frozen=True)
class Recompute:
    """What the nightly dbt step rebuilds: everything (`full`), or the month ends from
    `from_month_end` on (NOTHING: none) and every month end of `enterprises`.

    The network PD facts (another firm on red by its PD) of a firm read its neighbours'
    features, so they recompute the same month ends and every month end of `enterprises`
    and of their neighbours (`network_enterprises`); all of them when the champion PD
    scorecard is not the one they were built with (`network_from_month_end`).

    The settled installments are per loan: `loans` (rows changed tonight) are settled again,
    and so are the loans that D's move from `previous_as_of` (what the build was built for)
    reaches: disbursed, paid or 91 days past a due date in between (the model's own SQL)."""

    full: bool
    from_month_end: date | None
    reason: str
    enterprises: frozenset[str] = frozenset()
    network_from_month_end: date | None = None
    network_enterprises: frozenset[str] = frozenset()
    previous_as_of: date | None = None
    loans: frozenset[str] = frozenset()


def plan_recompute(
    build: Path, published: Path, as_of: date, *, full: bool = False, pd_champion: str = ""
) -> Recompute:
    """Full rebuild or the earliest month end to recompute tonight, from the rows loaded since
    the publish (files of `raw.load_manifest` in the build not in the published one): their
    own dates and those of the versions they replaced, and the month ends that D newly
    reaches. Full when asked, when nothing was published, when the published warehouse or the
    build's facts are from other code or key or a later D, or when the last dbt step failed.
    `pd_champion`: the fingerprint of the champion scoring tonight's network PD facts
    (`champion_fingerprint`); another than the one they were built with recomputes them all."""
    if full:
        return Recompute(True, None, "full rebuild requested")
    if build.resolve() == published.resolve() or not build.is_file():
        return Recompute(True, None, "no build file beside the published warehouse")
    pub = published_state(published)
    if pub is None:
        return Recompute(True, None, "no published warehouse with a recorded code version")
    version = code_version()
    if pub.code_version != version:
        return Recompute(True, None, "code changed since the publish")
    if pub.as_of_date is None or pub.as_of_date > as_of:
        return Recompute(True, None, f"as-of date {as_of} is before the published {pub.as_of_date}")
    with duckdb.connect(str(build), read_only=True) as con:
        base = con.execute(f"SELECT * FROM {INCREMENTAL_BASE}").fetchone() if table_exists(
            con, *INCREMENTAL_BASE.split(".")) else None
        if base is None or base[:2] != (pub.as_of_date, version):
            return Recompute(True, None, "the build's facts are not those published "
                             "(first night, or the last dbt step failed)")
        keys = frozenset(r[0] for r in con.execute(
            "SELECT key_check FROM raw.pseudonym_keys").fetchall())
        if keys != pub.key_checks:
            return Recompute(True, None, "the pseudonym key changed")
        con.execute(f"ATTACH '{published}' AS pub (READ_ONLY)")
        earliest, enterprises, loans = _changed_rows(con, pub)
        network_enterprises = frozenset(enterprises | _neighbours(con, set(enterprises)))
        starts = [d for d in (earliest, _newly_disbursed_from(con, pub.as_of_date, as_of))
                  if d is not None]
        if starts and min(starts) < _calendar_start(con):
            earliest = date.min  # the calendar starts earlier: every spine row moves
    last_me, pub_last_me = _last_month_end(as_of), _last_month_end(pub.as_of_date)
    candidates = [d for d in (earliest,) if d is not None]
    if last_me > pub_last_me:
        candidates.append(_next_month_end(pub_last_me))
    first = min(candidates, default=NOTHING)
    from_me = first if _is_month_end(first) else _next_month_end(first)
    whole = f"; every month end of {len(enterprises)} enterprise(s)" if enterprises else ""
    if from_me > last_me:
        from_me, reason = NOTHING, f"no changed row dated on or before {last_me}{whole}"
    else:
        reason = f"recompute month ends from {from_me}{whole}"
    network_from = from_me
    if len(base) < 3 or base[2] != pd_champion:
        network_from = date.min
        reason += "; network PD facts: all month ends (another champion PD scorecard)"
    return Recompute(False, from_me, reason, enterprises, network_from, network_enterprises,
                     pub.as_of_date, loans)


def _calendar_start(con: duckdb.DuckDBPyConnection) -> date:
    """The first day of the build's first calendar month (int_calendar__month_ends). A row
    dated before it starts the calendar earlier, and with it every enterprise's month spine
    (24 months before the calendar at the earliest), so all month ends are recomputed;
    date.max (every changed row counts as earlier) when the build has no calendar yet."""
    if not table_exists(con, "intermediate", "int_calendar__month_ends"):
        return date.max
    (first,) = con.execute(
        "SELECT min(month_start) FROM intermediate.int_calendar__month_ends").fetchone()
    return first or date.max


def _newly_disbursed_from(
    con: duckdb.DuckDBPyConnection, previous: date, as_of: date
) -> date | None:
    """The earliest contract or disbursement date of the loans D's move from `previous`
    brings in (disbursed after it, on or before D): rows loaded on an earlier night that only
    now count for the calendar (int_calendar__month_ends)."""
    if not table_exists(con, "raw", "loans"):
        return None
    (first,) = con.execute(
        "SELECT min(least(contract_date, disbursement_date)) FROM raw.loans "
        "WHERE disbursement_date > ? AND disbursement_date <= ?", [previous, as_of]).fetchone()
    return first


def _changed_rows(
    con: duckdb.DuckDBPyConnection, pub: PublishedState
) -> tuple[date | None, frozenset[str], frozenset[str]]:
    """Over the rows loaded since the publish and the published versions of the same keys:
    the earliest AFFECTED_FROM date; the enterprises to recompute whole: those of
    WHOLE_ENTERPRISE rows, those whose first data arrived tonight, and their neighbours; and
    the loans of LOAN_ROWS rows."""
    loaded = con.execute(
        "SELECT table_name, source_file, file_size, file_mtime FROM raw.load_manifest "
        "QUALIFY row_number() OVER (PARTITION BY table_name, source_file "
        "ORDER BY loaded_at DESC) = 1").fetchall()
    new_files: dict[str, list[str]] = {}
    for table, file, size, mtime in loaded:
        if pub.loaded.get((table, file)) != (size, mtime):
            new_files.setdefault(table, []).append(file)
    dates: list[date] = []
    enterprises: set[str] = set()
    arrivals: set[str] = set()  # firms with rows in FIRST_DATA tonight
    loans: set[str] = set()
    for table, files in new_files.items():
        expr = AFFECTED_FROM.get(table)
        if expr is None:  # a table whose rows' reach is not known here: every month end
            dates.append(date.min)
            continue
        same_key = " AND ".join(f"n.{c} = r.{c}" for c in TABLES[table].primary_key)
        con.execute("CREATE OR REPLACE TEMP TABLE changed_files AS SELECT unnest($1) AS f",
                    [files])
        in_files = "_source_file IN (SELECT f FROM changed_files)"
        versions = (  # (relation, condition, schema prefix of the loans lookup)
            (f"raw.{table}", f"r.{in_files}", ""),
            (f"pub.raw.{table}", f"EXISTS (SELECT 1 FROM raw.{table} AS n "
             f"WHERE n.{in_files} AND {same_key})", "pub."),
        )
        for relation, condition, db in versions:
            (d,) = con.execute(
                f"SELECT min({expr.format(db=db)}) FROM {relation} AS r WHERE {condition}"
            ).fetchone()
            if d is not None:
                dates.append(d)
            if table in WHOLE_ENTERPRISE:
                enterprises |= {e for (e,) in con.execute(
                    f"SELECT DISTINCT r.enterprise_id FROM {relation} AS r "
                    f"WHERE {condition} AND {WHOLE_ENTERPRISE[table]}").fetchall()}
            if table in LOAN_ROWS:
                loans |= {loan for (loan,) in con.execute(
                    f"SELECT DISTINCT r.loan_id FROM {relation} AS r WHERE {condition}"
                ).fetchall()}
        if table in FIRST_DATA:
            arrivals |= {e for (e,) in con.execute(
                f"SELECT DISTINCT enterprise_id FROM raw.{table} WHERE {in_files}").fetchall()}
    enterprises |= _first_data_tonight(con, arrivals)
    return ((min(dates) if dates else None),
            frozenset(enterprises | _neighbours(con, enterprises)), frozenset(loans))


def _first_data_tonight(con: duckdb.DuckDBPyConnection, arrivals: set[str]) -> set[str]:
    """The firms of `arrivals` with no row in any FIRST_DATA table of the published
    warehouse: their month-end rows started at their establishment and now start later."""
    if not arrivals:
        return set()
    con.execute("CREATE OR REPLACE TEMP TABLE arriving_firms AS SELECT unnest($1) AS e",
                [sorted(arrivals)])
    # every published warehouse has these raw tables: ingestion creates each contract table
    known = " UNION ".join(
        f"SELECT enterprise_id FROM pub.raw.{t} WHERE enterprise_id IN "
        "(SELECT e FROM arriving_firms)" for t in FIRST_DATA)
    return {e for (e,) in con.execute(
        f"SELECT e FROM arriving_firms WHERE e NOT IN ({known})").fetchall()}


def _neighbours(con: duckdb.DuckDBPyConnection, enterprises: set[str]) -> set[str]:
    """The firms one guarantee or link away from `enterprises`: their network features
    (another firm on red by a status trigger) change wherever the firm's status does."""
    if not enterprises:
        return set()
    present = {t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = "
        "current_database() AND table_schema = 'raw' AND table_name IN "
        "('guarantees', 'enterprise_links', 'loans')").fetchall()}
    con.execute("CREATE OR REPLACE TEMP TABLE whole_firms AS SELECT unnest($1) AS e",
                [sorted(enterprises)])
    pairs = []
    if {"guarantees", "loans"} <= present:
        pairs.append("SELECT g.guarantor_id AS a, l.enterprise_id AS b FROM raw.guarantees "
                     "AS g JOIN raw.loans AS l USING (loan_id)")
    if "enterprise_links" in present:
        pairs.append("SELECT enterprise_id AS a, related_id AS b FROM raw.enterprise_links")
    if not pairs:
        return set()
    edges = " UNION ALL ".join(pairs)
    return {e for (e,) in con.execute(
        f"SELECT b FROM ({edges}) WHERE a IN (SELECT e FROM whole_firms) "
        f"UNION SELECT a FROM ({edges}) WHERE b IN (SELECT e FROM whole_firms)").fetchall()
        if e is not None}


def mark_incremental_base(build: Path, as_of: date | None, pd_champion: str = "") -> None:
    """Record (as_of) or clear (None) what the build's month-end facts were built for: the
    as-of date, the code version and the champion that scored the network PD facts."""
    with duckdb.connect(str(build)) as con:
        if as_of is None:
            con.execute(f"DROP TABLE IF EXISTS {INCREMENTAL_BASE}")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {INCREMENTAL_BASE} AS SELECT "
                        "CAST($1 AS DATE) AS as_of_date, CAST($2 AS VARCHAR) AS code_version, "
                        "CAST($3 AS VARCHAR) AS pd_champion",
                        [as_of, code_version(), pd_champion])
