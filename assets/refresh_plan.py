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
from datetime import date, datetime
from pathlib import Path

import duckdb

from assets.contract import LOAD_ORDER
from assets.core import publish, settings
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
