"""The published warehouse (contract section 5): build aside, one refresh at a time, publish in
one rename.

- The build file `<name>.build.duckdb` sits beside RISK_WAREHOUSE `<name>.duckdb`. Every step
  of a refresh writes there; it persists between nights (incremental ingestion, history marts).
- A run lock `<name>.duckdb.lock` (`fcntl.flock`, released by the kernel when the process dies,
  even on kill -9) lets one refresh at a time touch the build file; the file holds who has it.
- The build file only grows (DuckDB reuses freed blocks but never shrinks the file): after a
  publish, `compact()` rewrites it into a fresh file (ATTACH + COPY FROM DATABASE) and renames
  that over it when the file is more than RISK_COMPACT_RATIO times its live size.
- Publishing writes the chosen schemas into a temporary file in the same folder, in DuckDB's
  v1.5.0 storage format (the PyPI DuckDB 1.5 CLI opens it), and `os.replace`s it over
  RISK_WAREHOUSE: readers see the old file until they reconnect, then the new one, never a
  half-built one. A killed publish leaves a stray temporary file that the next publish removes.
- A normal night publishes incrementally: the temporary file starts as a filesystem copy of
  the published file (never opened by DuckDB, so an analyst's lock cannot stop it), and only
  tables whose content fingerprint changed are rewritten; tables that only grew get the new
  rows appended. A record beside the file (`.<name>.duckdb.publish-state.json`) holds each
  table's fingerprint and the file's identity; when it does not match the file (first publish,
  a file someone wrote to, a DuckDB upgrade) or the file has grown past twice its live size,
  the publish is a full copy of every table.

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
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    """What a publish wrote. `mode` is "full" (every table copied into a new file) or
    "incremental" (the previous published file copied, only changed tables rewritten and
    grown tables appended to); `rewritten`, `appended` (table -> rows added), `patched`
    (table -> rows deleted and inserted) and `kept` name what the incremental publish did."""

    path: Path
    tables: dict[str, int]  # schema.table -> rows
    bytes: int
    seconds: float
    mode: str = "full"
    rewritten: tuple[str, ...] = ()
    appended: Mapping[str, int] = field(default_factory=dict)
    patched: Mapping[str, int] = field(default_factory=dict)  # table -> rows deleted + inserted
    kept: int = 0
    reason: str = ""  # why a publish was full
    #: Seconds spent fingerprinting the build, copying the published file, writing tables,
    #: and syncing + renaming.
    steps: Mapping[str, float] = field(default_factory=dict)


def _scratch(memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that files are attached to, for publish and compaction: rows
    keep their order (appends and patches rely on it), no progress bars in the run log."""
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit = {literal(memory_limit)}")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    return con


class NotPublished(RuntimeError):
    """A publish limited to some tables (`only`) found other changes in the build file, or
    cannot tell; `str()` says why in one line."""


def _stray_temp_files(published: Path) -> list[Path]:
    return sorted(published.parent.glob(f".{published.name}.*.publishing*"))


def state_path(published: Path) -> Path:
    """`.<name>.duckdb.publish-state.json`: what the last publish wrote (the file's identity
    and each table's fingerprint), so the next one knows what it may keep."""
    return published.with_name(f".{published.name}.publish-state.json")


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


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _replace_durably(tmp: Path, target: Path) -> None:
    """Put a finished DuckDB file in place: on disk first, then the stale WAL of the old file
    removed, then one rename, then the folder entry on disk (a crash leaves old or new)."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    Path(f"{target}.wal").unlink(missing_ok=True)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


# --- What changed since the last publish -----------------------------------------------------
#
# A table's fingerprint is its row count with the sum and the XOR of DuckDB's 64-bit hash of
# every published column of every row: equal fingerprints mean the same rows (in any order)
# but for a hash collision, which no ordinary change produces. Its signature is its columns,
# their types and the documentation comments. Fingerprints are always computed on the build
# file, so a kept table is exactly what a full copy would write.


def _identity(path: Path) -> dict[str, int]:
    """The published file's inode, size, mtime and ctime: any write to it (an analyst who
    opened it read-write) changes one of them, and the next publish is then a full one."""
    st = path.stat()
    return {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns}


def _format_key(schemas: tuple[str, ...], drop_columns: Mapping[str, frozenset[str]]) -> str:
    """What must not change for a published file to be reused: the DuckDB version (its hash
    function), the storage version, the schemas and the columns left out (a column newly left
    out must not survive in the old file's free blocks)."""
    return json.dumps({
        "duckdb": duckdb.__version__,
        "storage": PUBLISHED_STORAGE_VERSION,
        "schemas": sorted(schemas),
        "drop": {k: sorted(v) for k, v in sorted(drop_columns.items())},
    }, sort_keys=True)


def _read_state(published: Path) -> dict:
    try:
        return json.loads(state_path(published).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(published: Path, state: dict) -> None:
    """Written after the rename (a kill before it leaves the old state, which no longer
    matches the file: the next publish is full)."""
    path = state_path(published)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.writing")
    tmp.write_text(json.dumps(state))
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _published_columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str,
    drop_columns: Mapping[str, frozenset[str]],
) -> tuple[list[str], str]:
    """The columns published for one build table, and its signature."""
    gone = drop_columns.get(f"{schema}.{table}", frozenset()) | drop_columns.get(
        f"{schema}.*", frozenset()
    )
    rows = con.execute(
        "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE database_name = "
        "'build' AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, table],
    ).fetchall()
    comment = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = 'build' AND schema_name = ? "
        "AND table_name = ?", [schema, table],
    ).fetchone()[0]
    kept = [r for r in rows if r[0] not in gone]
    return [r[0] for r in kept], json.dumps([comment, kept])


def _fingerprint(
    con: duckdb.DuckDBPyConnection, name: str, cols: list[str], prefix_rows: int | None
) -> tuple[list, list | None]:
    """[rows, sum, xor] of the build table, and of its first `prefix_rows` rows by rowid
    (whether the table only grew by appending since the last publish), in one scan."""
    h = f"hash({', '.join(map(ident, cols))})"
    n = int(prefix_rows or 0)
    row = con.execute(
        f"SELECT count(*), sum(h::HUGEINT)::VARCHAR, bit_xor(h)::VARCHAR, "
        f"count(*) FILTER (WHERE r < {n}), sum(h::HUGEINT) FILTER (WHERE r < {n})::VARCHAR, "
        f"bit_xor(h) FILTER (WHERE r < {n})::VARCHAR "
        f"FROM (SELECT rowid AS r, {h} AS h FROM build.{name})"
    ).fetchone()
    whole = [int(row[0]), row[1] or "0", row[2] or "0"]
    prefix = [int(row[3]), row[4] or "0", row[5] or "0"] if prefix_rows is not None else None
    return whole, prefix


#: A changed table of at least this many rows is patched (rows whose hash is new inserted,
#: rows whose hash is gone deleted) rather than rewritten, unless most of it changed.
PATCH_MIN_ROWS = 100_000
#: DuckDB's memory while fingerprinting (a streaming scan; the cap keeps peak memory low).
FINGERPRINT_MEMORY = "2GB"
#: Above this share of changed rows a patched table is written anew instead.
PATCH_MAX_SHARE = 0.3


def _changed_rows(
    con: duckdb.DuckDBPyConnection, name: str, cols: list[str], rows: int, temp: str
) -> int | None:
    """The multiset difference of pub.`name` and build.`name` by row hash, kept in temp
    table `temp` (hash, rows gone, rows come): the rows deleted plus inserted by a patch, or
    None (temp table dropped) when more than PATCH_MAX_SHARE of the table changed."""
    h = f"hash({', '.join(map(ident, cols))})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {temp} AS SELECT h, coalesce(o.n, 0) AS gone, "
        f"coalesce(b.n, 0) AS came FROM (SELECT {h} AS h, count(*) AS n FROM pub.{name} "
        f"GROUP BY ALL) AS o FULL OUTER JOIN (SELECT {h} AS h, count(*) AS n "
        f"FROM build.{name} GROUP BY ALL) AS b USING (h) WHERE o.n IS DISTINCT FROM b.n"
    )
    gone, came = con.execute(f"SELECT sum(gone), sum(came) FROM {temp}").fetchone()
    gone, came = int(gone or 0), int(came or 0)
    if came > PATCH_MAX_SHARE * max(rows, 1):
        con.execute(f"DROP TABLE {temp}")
        return None
    return gone + came


def _apply_patch(con: duckdb.DuckDBPyConnection, name: str, cols: list[str], temp: str) -> None:
    """Delete the published rows of every hash whose count changed and insert the build's
    rows of those hashes (duplicates stay right)."""
    h = f"hash({', '.join(map(ident, cols))})"
    con.execute(f"DELETE FROM pub.{name} WHERE {h} IN (SELECT h FROM {temp})")
    con.execute(f"INSERT INTO pub.{name} SELECT {', '.join(map(ident, cols))} "
                f"FROM build.{name} WHERE {h} IN (SELECT h FROM {temp} WHERE came > 0)")
    con.execute(f"DROP TABLE {temp}")


class _Copy(threading.Thread):
    """The published file copied to the temporary file in the background (shutil.copyfile:
    copy_file_range / sendfile in the kernel, no Python buffers)."""

    def __init__(self, src: Path, dest: Path) -> None:
        super().__init__(name="publish-copy", daemon=True)
        self.src, self.dest = src, dest
        self.seconds = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.perf_counter()
        try:
            shutil.copyfile(self.src, self.dest)
        except BaseException as exc:  # re-raised by finish() in the publishing thread
            self.error = exc
        self.seconds = time.perf_counter() - started

    def finish(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def _reuse_problem(published: Path, state: dict, format_key: str, slack: float) -> str:
    """Why the previous published file cannot be the base of an incremental publish ('' when
    it can)."""
    if not published.exists():
        return "no published file yet"
    if not state:
        return "no record of the last publish"
    if state.get("format") != format_key:
        return "DuckDB version, storage version or published columns changed"
    if state.get("file") != _identity(published):
        return "the published file was changed since it was published"
    if state.get("live_bytes") and state["file"]["size"] > slack * state["live_bytes"]:
        return f"the published file is more than {slack:g} times its live size"
    return ""


def publish(
    build: Path,
    published: Path,
    *,
    schemas: tuple[str, ...],
    drop_columns: Mapping[str, frozenset[str]] | None = None,
    info: Mapping[str, object] | None = None,
    memory_limit: str | None = None,
    incremental: bool = True,
    slack: float = 2.0,
    only: Collection[str] | None = None,
) -> Published:
    """Publish every base table of `schemas` from `build` as a file that replaces `published`
    in one rename. `drop_columns` maps `schema.table` (or `schema.*`) to columns left out;
    `info` becomes the one row of main.published_refresh. The caller holds the run lock (no
    other writer of the build file, no other publish).

    Full: every table is copied into a new file. Incremental (when the last publish's record
    matches the published file, byte for byte unchanged since): the published file is copied
    by the filesystem, tables whose fingerprint changed are rewritten, tables that only grew
    are appended to, the rest are kept; it falls back to full when the file has more than
    `slack` times its live size (free blocks of rewritten tables).

    `only` (`schema.table` names) publishes only when the build file differs from the published
    file in those tables alone, else raises NotPublished: a job outside the nightly refresh
    (the back-test) publishes its own tables at once, but never what a refresh left in the
    build file without publishing it (its blocking checks failed, or it was killed); without
    `info` it keeps the published refresh's row (as-of date, code version)."""
    started = time.perf_counter()
    drop_columns = drop_columns or {}
    for stray in _stray_temp_files(published):  # left by a publish that was killed
        stray.unlink(missing_ok=True)
    for stray in published.parent.glob(f"{state_path(published).name}.*.writing"):
        stray.unlink(missing_ok=True)
    format_key = _format_key(schemas, drop_columns)
    state = _read_state(published)
    reason = "full publish asked for" if not incremental else _reuse_problem(
        published, state, format_key, slack)
    if only is not None and reason:
        raise NotPublished(f"not published: {reason}")
    previous: dict = state.get("tables", {}) if not reason else {}
    tmp = published.with_name(f".{published.name}.{os.getpid()}.publishing")
    fingerprints: dict[str, dict] = {}
    rewritten: list[str] = []
    appended: dict[str, int] = {}
    patched: dict[str, int] = {}
    steps: dict[str, float] = {}
    # The previous published file is copied by the kernel while the build is fingerprinted.
    copier = _Copy(published, tmp) if not reason else None
    try:
        if copier is not None:
            copier.start()
        with _scratch(memory_limit) as con:
            con.execute(f"ATTACH {literal(str(build))} AS build (READ_ONLY)")
            tables = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = 'build' AND NOT temporary "
                "AND list_contains(?, schema_name) ORDER BY ALL",
                [list(schemas)],
            ).fetchall()
            plan: dict[str, tuple[str, list[str], int]] = {}  # table -> (action, cols, from)
            steps["fingerprint"] = time.perf_counter()
            # A scan needs no cache: DuckDB would otherwise keep the whole build file in memory.
            con.execute(f"SET memory_limit = {literal(FINGERPRINT_MEMORY)}")
            for schema, table in tables:
                key = f"{schema}.{table}"
                cols, signature = _published_columns(con, schema, table, drop_columns)
                old = previous.get(key)
                same_shape = old is not None and old["signature"] == signature
                whole, prefix = _fingerprint(
                    con, f"{ident(schema)}.{ident(table)}", cols,
                    old["fingerprint"][0] if same_shape else None,
                )
                fingerprints[key] = {"signature": signature, "fingerprint": whole}
                if same_shape and whole == old["fingerprint"]:
                    plan[key] = ("keep", cols, 0)
                elif same_shape and prefix == old["fingerprint"]:
                    plan[key] = ("append", cols, old["fingerprint"][0])
                elif same_shape and whole[0] >= PATCH_MIN_ROWS:
                    plan[key] = ("patch", cols, 0)
                else:
                    plan[key] = ("create", cols, 0)
            if only is not None:
                others = sorted(
                    {k for k, (action, _, _) in plan.items() if action != "keep"}
                    | {k for k in previous if k not in plan}
                ) if not reason else []
                others = [k for k in others if k not in only]
                if others:
                    raise NotPublished(
                        "not published: the build file holds changes no publish has carried "
                        f"yet (a refresh that did not publish) in {', '.join(others[:5])}"
                        + (f" and {len(others) - 5} more" if len(others) > 5 else "")
                    )
            if not reason:
                steps["fingerprint"] = time.perf_counter() - steps["fingerprint"]
                waited = time.perf_counter()
                copier.finish()
                steps["copy"], steps["copy_wait"] = copier.seconds, time.perf_counter() - waited
                if _identity(published) != state["file"]:
                    reason, previous = "the published file changed while it was copied", {}
                    tmp.unlink()
                    if only is not None:
                        raise NotPublished(f"not published: {reason}")
            if "copy" not in steps:
                steps["fingerprint"] = time.perf_counter() - steps["fingerprint"]
            con.execute(f"SET memory_limit = {literal(memory_limit or '80%')}")
            written = time.perf_counter()
            if reason:
                con.execute(
                    f"ATTACH {literal(str(tmp))} AS pub "
                    f"(STORAGE_VERSION {literal(PUBLISHED_STORAGE_VERSION)})"
                )
                plan = {k: ("create", cols, 0) for k, (_, cols, _) in plan.items()}
            else:
                con.execute(f"ATTACH {literal(str(tmp))} AS pub")
                if info is None and only is not None:  # still the same refresh's row
                    cur = con.execute(f"SELECT * EXCLUDE (published_at, tables) "
                                      f"FROM pub.{PUBLISH_INFO}")
                    info = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
                # Patch or rewrite: decided before dropping, so rewritten tables reuse blocks.
                for i, (key, (action, cols, _)) in enumerate(list(plan.items())):
                    if action == "patch":
                        schema, table = key.split(".", 1)
                        changed = _changed_rows(
                            con, f"{ident(schema)}.{ident(table)}", cols,
                            fingerprints[key]["fingerprint"][0], f"_changed_{i}",
                        )
                        plan[key] = ("create", cols, 0) if changed is None else (
                            "patch", cols, i)
                        if changed is not None:
                            patched[key] = changed
                # Dropped first and checkpointed, so the new versions reuse their blocks.
                gone = [k for k in previous if k not in plan] + [
                    k for k, (action, _, _) in plan.items() if action == "create" and k in previous
                ]
                with transaction(con):
                    for key in [*gone, PUBLISH_INFO]:
                        schema, table = key.split(".", 1)
                        con.execute(f"DROP TABLE IF EXISTS pub.{ident(schema)}.{ident(table)}")
                con.execute("CHECKPOINT pub")
            with transaction(con):
                for schema in schemas:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS pub.{ident(schema)}")
                for key, (action, cols, start) in plan.items():
                    schema, table = key.split(".", 1)
                    name = f"{ident(schema)}.{ident(table)}"
                    select = f"SELECT {', '.join(map(ident, cols))} FROM build.{name}"
                    if action == "create":
                        con.execute(f"CREATE TABLE pub.{name} AS {select}")
                        _copy_comments(con, schema, table, cols)
                        rewritten.append(key)
                    elif action == "append":
                        con.execute(f"INSERT INTO pub.{name} {select} WHERE rowid >= {start}")
                        appended[key] = fingerprints[key]["fingerprint"][0] - start
                    elif action == "patch":
                        _apply_patch(con, name, cols, f"_changed_{start}")
                counts = {k: v["fingerprint"][0] for k, v in fingerprints.items()}
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
                row = [f"CAST({literal(now)} AS TIMESTAMP) AS published_at"] + [
                    f"{literal(v)} AS {ident(k)}" for k, v in (info or {}).items()
                ] + [f"CAST({literal(json.dumps(counts))} AS JSON) AS tables"]
                con.execute(f"CREATE TABLE pub.{PUBLISH_INFO} AS SELECT {', '.join(row)}")
            con.execute("CHECKPOINT pub")
            size = con.execute(
                "SELECT block_size * used_blocks FROM pragma_database_size() "
                "WHERE database_name = 'pub'"
            ).fetchone()[0]
            con.execute("DETACH pub")
            con.execute("DETACH build")
            steps["write"] = time.perf_counter() - written
        renamed = time.perf_counter()
        # A WAL beside the published name belongs to an older file (one built in place before
        # publishing existed, already seeded into the build file): replayed on the new file it
        # would corrupt it.
        _replace_durably(tmp, published)
        steps["sync_rename"] = time.perf_counter() - renamed
        _write_state(published, {
            "format": format_key, "file": _identity(published), "live_bytes": int(size),
            "tables": fingerprints,
        })
    finally:
        if copier is not None and copier.is_alive():
            copier.join()  # a publish that stopped early: let the copy end before cleaning up
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
    return Published(
        published, counts, published.stat().st_size, time.perf_counter() - started,
        mode="full" if reason else "incremental",
        rewritten=tuple(rewritten), appended=appended, patched=patched,
        kept=sum(1 for action, _, _ in plan.values() if action == "keep"),
        reason=reason, steps={k: round(v, 2) for k, v in steps.items()},
    )


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
        with _scratch(memory_limit) as con:
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
