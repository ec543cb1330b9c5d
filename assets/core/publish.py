"""The published warehouse (contract section 5): build aside, one refresh at a time, publish in
one rename.

- The build file `<name>.build.duckdb` sits beside RISK_WAREHOUSE `<name>.duckdb`. Every step
  of a refresh writes there; it persists between nights (incremental ingestion, history marts).
- A run lock `<name>.duckdb.lock` (`fcntl.flock`, released by the kernel when the process dies,
  even on kill -9) lets one refresh at a time touch the build file; the file holds who has it.
- The build file only grows (DuckDB reuses freed blocks but never shrinks the file): after a
  publish, `compact()` rewrites it into a fresh file (ATTACH + COPY FROM DATABASE) and renames
  that over it when the file is more than RISK_COMPACT_RATIO times its live size.
- Publishing copies the chosen schemas of the build file into a temporary file in the same
  folder, written in DuckDB's v1.5.0 storage format (the PyPI DuckDB 1.5 CLI opens it), and
  `os.replace`s it over RISK_WAREHOUSE: readers see the old file until they reconnect, then the
  new one, never a half-built one. A killed publish leaves a stray temporary file that the next
  publish removes.

Plain Python and DuckDB; no Dagster.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from assets.core.sql import ident, literal, transaction

#: DuckDB storage format of the published file: what the PyPI DuckDB 1.5 line reads.
PUBLISHED_STORAGE_VERSION = "v1.5.0"
#: One row about the refresh a published file holds; a file without it predates publishing.
PUBLISH_INFO = "main.published_refresh"


def build_path(published: Path) -> Path:
    """`<name>.build.duckdb` beside `<name>.duckdb`: the file every refresh step writes."""
    return published.with_name(f"{published.stem}.build{published.suffix or '.duckdb'}")


def lock_path(published: Path) -> Path:
    return published.with_name(published.name + ".lock")


# ---------------------------------------------------------------------------------------------
# The run lock


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse's run lock; `str()` is one line naming it."""


@dataclass
class _Held:
    fd: int
    count: int


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()
#: What the lock file held when this process took the lock: a holder that never released it.
_LEFT_BEHIND: dict[str, str] = {}


def process_start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc), '' where unknown: a pid
    plus its start time names a process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_tag(pid: int | None = None) -> str:
    """`host:pid:start` of this (or another) process."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start_ticks(pid)}"


def process_alive(tag: str) -> bool:
    """Whether the process `host:pid:start` still runs (a process on another host counts as
    alive: it cannot be checked from here)."""
    host, _, rest = tag.partition(":")
    pid_s, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_s.isdigit():
        return True
    pid = int(pid_s)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or process_start_ticks(pid) in ("", start)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('started')}" + (
        f" ({info['what']})" if info.get("what") else ""
    )


def acquire(published: Path, *, wait: float = 0.0, what: str = "") -> None:
    """Take the run lock of `published` (re-entrant within a process), waiting up to `wait`
    seconds; WarehouseBusy names the holder when it stays taken."""
    path = lock_path(published)
    key = str(path.resolve())
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held.count += 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise WarehouseBusy(
                        f"warehouse {published} is being refreshed by {_holder(path)}; "
                        f"lock {path}"
                    ) from None
                time.sleep(0.2)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "what": what,
        }
        _LEFT_BEHIND[key] = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        _HELD[key] = _Held(fd, 1)


def release(published: Path) -> None:
    """Give back one acquire(); the last one unlocks (the file stays: deleting it would race)."""
    key = str(lock_path(published).resolve())
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count == 0:
            del _HELD[key]
            os.ftruncate(held.fd, 0)
            fcntl.flock(held.fd, fcntl.LOCK_UN)
            os.close(held.fd)


def holder_was_interrupted(published: Path) -> bool:
    """Whether the lock's last holder ended without releasing it (killed mid-run: release()
    empties the file, the kernel only drops the lock). In the process holding the lock now:
    what the file held when it was taken; elsewhere: the file is not empty (a holder now, or
    one that was killed)."""
    path = lock_path(published)
    key = str(path.resolve())
    with _HELD_GUARD:
        if key in _HELD:
            return bool(_LEFT_BEHIND.get(key))
    try:
        return bool(path.read_text(errors="replace").strip())
    except OSError:
        return False


@contextmanager
def run_lock(published: Path, *, wait: float = 0.0, what: str = "") -> Iterator[None]:
    acquire(published, wait=wait, what=what)
    try:
        yield
    finally:
        release(published)


# ---------------------------------------------------------------------------------------------
# The build file


def is_published_copy(path: Path) -> bool:
    """Whether `path` was written by publish() (it then lacks what only the build file has)."""
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            return bool(con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = 'main' AND table_name = 'published_refresh'"
            ).fetchone()[0])
    except duckdb.Error:
        return False


def seed_build_file(published: Path) -> bool:
    """Before the first build aside: a warehouse built in place (before publishing existed)
    becomes the build file, so its load manifest and history marts carry on. Copied to a
    temporary name and renamed; False when there is nothing to seed from."""
    build = build_path(published)
    if build.exists() or not published.exists() or is_published_copy(published):
        return False
    for src, dest in ((Path(f"{published}.wal"), Path(f"{build}.wal")), (published, build)):
        if src.exists():
            part = dest.with_name(dest.name + ".seeding")
            shutil.copyfile(src, part)
            part.replace(dest)
    return True


# ---------------------------------------------------------------------------------------------
# Publishing


@dataclass(frozen=True)
class Published:
    path: Path
    tables: dict[str, int]  # schema.table -> rows
    bytes: int
    seconds: float


def _stray_temp_files(published: Path) -> list[Path]:
    return sorted(published.parent.glob(f".{published.name}.*.publishing*"))


def _copy_comments(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, cols: list[str]
) -> None:
    """The table's and its columns' documentation (dbt persist_docs) travel with the copy,
    so analysts read them in their SQL client."""
    row = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = 'build' AND schema_name = ? "
        "AND table_name = ?",
        [schema, table],
    ).fetchone()
    name = f"pub.{ident(schema)}.{ident(table)}"
    if row and row[0]:
        con.execute(f"COMMENT ON TABLE {name} IS {literal(row[0])}")
    for column, comment in con.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'build' "
        "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
        [schema, table],
    ).fetchall():
        if column in cols:
            con.execute(f"COMMENT ON COLUMN {name}.{ident(column)} IS {literal(comment)}")



def _replace_durably(tmp: Path, target: Path) -> None:
    """Put a finished DuckDB file in place: on disk first, then the stale WAL of the old file
    removed, then one rename, then the folder entry on disk (a crash leaves old or new)."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    Path(f"{target}.wal").unlink(missing_ok=True)
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

def publish(
    build: Path,
    published: Path,
    *,
    schemas: tuple[str, ...],
    drop_columns: Mapping[str, frozenset[str]] | None = None,
    info: Mapping[str, object] | None = None,
    memory_limit: str | None = None,
) -> Published:
    """Copy every base table of `schemas` from `build` into a new file that replaces
    `published` in one rename. `drop_columns` maps `schema.table` (or `schema.*`) to columns
    left out; `info` becomes the one row of main.published_refresh. The caller holds the run
    lock (no other writer of the build file, no other publish)."""
    started = time.perf_counter()
    drop_columns = drop_columns or {}
    for stray in _stray_temp_files(published):  # left by a publish that was killed
        stray.unlink(missing_ok=True)
    tmp = published.with_name(f".{published.name}.{os.getpid()}.publishing")
    counts: dict[str, int] = {}
    try:
        with duckdb.connect() as con:
            if memory_limit:
                con.execute(f"SET memory_limit = {literal(memory_limit)}")
            con.execute("SET preserve_insertion_order = true")
            con.execute(f"ATTACH {literal(str(build))} AS build (READ_ONLY)")
            con.execute(
                f"ATTACH {literal(str(tmp))} AS pub "
                f"(STORAGE_VERSION {literal(PUBLISHED_STORAGE_VERSION)})"
            )
            tables = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = 'build' AND NOT temporary "
                "AND list_contains(?, schema_name) ORDER BY ALL",
                [list(schemas)],
            ).fetchall()
            with transaction(con):
                for schema in schemas:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS pub.{ident(schema)}")
                for schema, table in tables:
                    gone = drop_columns.get(f"{schema}.{table}", frozenset()) | drop_columns.get(
                        f"{schema}.*", frozenset()
                    )
                    cols = [
                        r[0] for r in con.execute(
                            "SELECT column_name FROM duckdb_columns() WHERE database_name = "
                            "'build' AND schema_name = ? AND table_name = ? "
                            "ORDER BY column_index",
                            [schema, table],
                        ).fetchall()
                        if r[0] not in gone
                    ]
                    name = f"{ident(schema)}.{ident(table)}"
                    con.execute(
                        f"CREATE TABLE pub.{name} AS "
                        f"SELECT {', '.join(map(ident, cols))} FROM build.{name}"
                    )
                    counts[f"{schema}.{table}"] = con.execute(
                        f"SELECT count(*) FROM pub.{name}"
                    ).fetchone()[0]
                    _copy_comments(con, schema, table, cols)
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
                row = [f"CAST({literal(now)} AS TIMESTAMP) AS published_at"] + [
                    f"{literal(v)} AS {ident(k)}" for k, v in (info or {}).items()
                ] + [f"CAST({literal(json.dumps(counts))} AS JSON) AS tables"]
                con.execute(f"CREATE TABLE pub.{PUBLISH_INFO} AS SELECT {', '.join(row)}")
            con.execute("DETACH pub")
            con.execute("DETACH build")
        # A WAL beside the published name belongs to an older file (one built in place before
        # publishing existed, already seeded into the build file): replayed on the new file it
        # would corrupt it.
        _replace_durably(tmp, published)
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
    return Published(published, counts, published.stat().st_size, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Compacting the build file


@dataclass(frozen=True)
class Compaction:
    """The build file's size before and after, its live bytes, and whether it was rewritten."""

    path: Path
    bytes_before: int
    bytes_after: int
    live_bytes: int
    compacted: bool
    seconds: float


def live_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """Bytes of the blocks the database uses (what a fresh copy needs, about)."""
    row = con.execute("PRAGMA database_size").fetchone()
    block_size, used_blocks = row[2], row[4]
    return int(block_size) * int(used_blocks)


def compact(
    build: Path,
    *,
    ratio: float,
    min_bytes: int = 64 << 20,
    memory_limit: str | None = None,
    force: bool = False,
) -> Compaction:
    """Rewrite `build` into a fresh file when it is at least `min_bytes` and more than `ratio`
    times its live size (or `force`): checkpoint it (no WAL may outlive the old file), copy
    every schema, table, view, macro and comment with COPY FROM DATABASE into a temporary file
    beside it, fsync, and rename it over `build`. A kill leaves the old file and a stray
    temporary file that the next compaction removes. The caller holds the run lock."""
    started = time.perf_counter()
    for stray in sorted(build.parent.glob(f".{build.name}.*.compacting*")):
        stray.unlink(missing_ok=True)
    if not build.exists():
        return Compaction(build, 0, 0, 0, False, 0.0)
    with duckdb.connect(str(build)) as con:
        con.execute("CHECKPOINT")
        live = live_bytes(con)
        catalog = con.execute("SELECT current_database()").fetchone()[0]
    before = build.stat().st_size
    if not force and (before < min_bytes or before <= ratio * live):
        return Compaction(build, before, before, live, False, time.perf_counter() - started)
    tmp = build.with_name(f".{build.name}.{os.getpid()}.compacting")
    try:
        with duckdb.connect() as con:
            if memory_limit:
                con.execute(f"SET memory_limit = {literal(memory_limit)}")
            con.execute("SET preserve_insertion_order = true")
            # The source keeps its own catalog name, so views that name it still bind.
            con.execute(f"ATTACH {literal(str(build))} AS {ident(catalog)} (READ_ONLY)")
            con.execute(f"ATTACH {literal(str(tmp))} AS compacted")
            con.execute(f"COPY FROM DATABASE {ident(catalog)} TO compacted")
            con.execute("DETACH compacted")
            con.execute(f"DETACH {ident(catalog)}")
        _replace_durably(tmp, build)  # the build's WAL was checkpointed above: nothing in it
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
    return Compaction(build, before, build.stat().st_size, live, True,
                      time.perf_counter() - started)
