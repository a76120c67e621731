"""The one door to the SQLite database (via sqlite-utils), with explicit, numbered migrations.

Nothing here holds a cleartext identifier of an enrolled leak: leaks are described by counts, lab
names and column names; findings by URL, hashes, counts, categories and redacted samples.

The tables are created by the numbered migrations of :mod:`dumpwatch.migrations`, applied in order,
once each, by :func:`migrate` (recorded in ``_migrations``).

Writes go through :func:`write`, never ``db.atomic()``: several processes share the database (the
daemon, its crawl children, the CLI), and under WAL a deferred transaction that reads, then writes,
fails at once with "database is locked" when another process committed in between (SQLite cannot
upgrade a stale read snapshot, and ``busy_timeout`` does not apply to that upgrade). :func:`write`
starts with ``BEGIN IMMEDIATE``, so the write lock is taken before the first read, and waits while
another process holds it, up to ``DUMPWATCH_WRITE_TIMEOUT`` seconds (default 60) in all, then raises
:class:`DatabaseBusy`. Storage failures (disk full, read-only file, unable to open) become a
:class:`StorageError` naming the database and what to do; what was committed before stays.

Each table has one owner module (:data:`dumpwatch.migrations.TABLE_OWNERS`): its SQL is written
there only, and the others call that module's functions. This module owns ``leaks`` and
``findings``; rows go in and come out with their JSON columns as Python values (:func:`_encoded`
and :func:`_decoded` are the only places that turn them into JSON text and back).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from dumpwatch.clock import utcnow
from dumpwatch.errors import DatabaseBusy, DumpwatchError, StorageError
from dumpwatch.filemodes import private_file, tighten
from dumpwatch.migrations import MIGRATIONS

log = logging.getLogger(__name__)

WRITE_TIMEOUT_ENV = "DUMPWATCH_WRITE_TIMEOUT"
DEFAULT_WRITE_TIMEOUT = 60.0  # seconds a write waits for another process's write lock, in all
BUSY_TIMEOUT_MS = 10000  # how long a read waits (SQLite's own busy handler)






# SQLite messages (sqlite3.Error text) and errnos that mean "the storage failed", with what to do.
_SQLITE_FAILURES = (
    ("database or disk is full", "the disk (or the database's size limit) is full: free space on it"),
    ("readonly database", "the database is read-only: check the permissions of the file and its directory"),
    ("unable to open database", "the database cannot be opened: check that the directory exists, is a "
                                "directory and is writable"),
    ("disk i/o error", "the disk failed while writing: check the disk and free space on it"),
    ("file is not a database", "the file is not a dumpwatch database: move it away or fix --home"),
    ("database disk image is malformed", "the database is damaged: restore it from a backup"),
)
_OS_FAILURES = {
    errno.ENOSPC: "the disk is full: free space on it",
    errno.EDQUOT: "the disk quota is exceeded: free space or raise the quota",
    errno.EROFS: "the file system is read-only: remount it read-write or choose another --home",
    errno.EACCES: "permission denied: check the permissions of the home directory",
    errno.EPERM: "operation not permitted: check the permissions of the home directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory: fix --home",
    errno.EIO: "the disk failed while writing: check the disk",
}


def storage_failure(exc: BaseException, path: str | Path | None = None,
                    home: str | Path | None = None) -> StorageError | None:
    """The :class:`StorageError` an exception stands for (``None`` when it is not a storage failure).

    ``path`` is the database (or file) concerned, ``home`` the dumpwatch home (default: the
    database's directory); the message names them and what to do.
    """
    if isinstance(exc, StorageError):
        return exc
    where = Path(path) if path else None
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            return None
        for needle, advice in _SQLITE_FAILURES:
            if needle in text:
                return StorageError(_storage_message(where, home, str(exc), advice))
        return None
    if isinstance(exc, OSError) and exc.errno in _OS_FAILURES:
        where = Path(exc.filename) if exc.filename else where
        return StorageError(_storage_message(where, home, exc.strerror or str(exc), _OS_FAILURES[exc.errno]))
    return None


def _storage_message(where: Path | None, home: str | Path | None, what: str, advice: str) -> str:
    home = home or (where.parent if where is not None and where.suffix == ".db" else None)
    place = f" {where}" if where is not None else ""
    return (f"storage failure at{place}{f' (dumpwatch home {home})' if home else ''}: {what}; {advice}, "
            "then run the command again. Nothing already recorded was lost.")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def write_timeout() -> float:
    """Seconds a write may wait, in all, for another process's write lock (``DUMPWATCH_WRITE_TIMEOUT``)."""
    raw = os.environ.get(WRITE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_WRITE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise DumpwatchError(f"{WRITE_TIMEOUT_ENV}={raw!r} is not a number of seconds; unset it or give "
                             f"one, e.g. {WRITE_TIMEOUT_ENV}=60") from None
    return max(0.0, value)


def db_path(db: sqlite_utils.Database) -> str:
    """The file of a database ("" for an in-memory one)."""
    try:
        row = db.conn.execute("PRAGMA database_list").fetchone()
    except sqlite3.Error:
        return ""
    return row[2] if row and row[2] else ""


@contextlib.contextmanager
def write(db: sqlite_utils.Database, *, timeout: float | None = None) -> Iterator[sqlite_utils.Database]:
    """One write transaction that takes the write lock first (``BEGIN IMMEDIATE``), retrying while
    another process holds it, for ``timeout`` seconds in all (default: :func:`write_timeout`).

    Commits on success, rolls back on any exception. Inside another :func:`write` it is a savepoint
    of the outer transaction. Raises :class:`DatabaseBusy` past the timeout and :class:`StorageError`
    for a storage failure (disk full, read-only...), which both name the database and what to do.
    """
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():  # nested: a savepoint of the caller's (immediate) transaction
            yield db
        return
    limit = write_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    _locked(db, "BEGIN IMMEDIATE", deadline, limit)
    try:
        yield db
    except BaseException as exc:
        db.rollback()
        failure = storage_failure(exc, db_path(db))
        if failure is not None and failure is not exc:
            raise failure from exc
        raise
    try:
        _locked(db, "COMMIT", deadline, limit)
    except BaseException:
        db.rollback()
        raise


def _locked(db: sqlite_utils.Database, statement: str, deadline: float, limit: float) -> None:
    """Run BEGIN IMMEDIATE or COMMIT, waiting (bounded, with backoff) while the database is busy."""
    conn = db.conn
    delay = 0.005
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        # SQLite's busy handler waits inside the statement, at most what is left of our bound
        conn.execute(f"PRAGMA busy_timeout = {int(max(0.0, min(remaining, BUSY_TIMEOUT_MS / 1000)) * 1000)}")
        try:
            conn.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                failure = storage_failure(exc, db_path(db))
                if failure is not None:
                    raise failure from exc
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                path = db_path(db) or "the database"
                raise DatabaseBusy(
                    f"{path} stayed locked by another process for {limit:.0f} s ({attempts} attempts); nothing "
                    f"was written by this step. Another dumpwatch process (a crawl, the daemon, a long "
                    f"command) holds it: wait for it to finish and run the command again, or give it more "
                    f"time with {WRITE_TIMEOUT_ENV}=SECONDS") from exc
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, 0.5)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def open_db(path: str | Path | None = None) -> sqlite_utils.Database:
    """Open (creating if needed, mode 0600) and migrate a database; ``None`` gives an in-memory one."""
    if path is None:
        db = sqlite_utils.Database(memory=True)
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db)
        return db
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _private(Path(path))
        db = sqlite_utils.Database(path)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: the journal mode may wait for a lock
        db.execute("PRAGMA secure_delete=ON")  # deleted evidence and errors are overwritten, not left in free pages
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db)
    except (sqlite3.Error, OSError) as exc:
        failure = storage_failure(exc, path)
        if failure is None:
            raise
        raise failure from exc
    return db


def _private(path: Path) -> None:
    """The database file is created 0600 before SQLite opens it (SQLite gives its ``-wal`` and
    ``-shm`` files the database's mode); an existing one, or its companions, looser is tightened."""
    if path.exists():
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            tighten(p)
    else:
        private_file(path)


# -- migrations ------------------------------------------------------------------------------------

def _applied(db: sqlite_utils.Database) -> set[str] | None:
    if "_migrations" not in db.table_names():
        return None
    return {name for (name,) in db.execute("SELECT name FROM _migrations").fetchall()}


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet applied; return their names.

    Readers of an up-to-date database take no lock; otherwise each migration runs under the write
    lock and is checked again there, so processes opening a new database at once apply it once.
    """
    done = _applied(db)
    if done is not None and all(name in done for name, _ in MIGRATIONS):
        return []
    applied = []
    for name, fn in MIGRATIONS:
        with write(db):
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            if name in (_applied(db) or set()):
                continue
            fn(db)
            db["_migrations"].insert({"name": name, "applied_at": utcnow()})
        log.debug("applied migration %s", name)
        applied.append(name)
    return applied


def installation_id(db: sqlite_utils.Database) -> str:
    """This installation's id (32 hex digits, random, made with the database by a migration).

    Part of every idempotency key, so two installations never send the same key for the same copy
    and incident, while one installation sends the same key on every retry and after a restart. It
    lives in the database, not beside it: a database restored from a backup keeps the id of the
    rows (incident numbers, alert keys) its keys are made from, so a message made again from
    restored rows has the key it was first sent with and a receiver that drops keys it processed
    drops it, rightly; a new home with a new database is a new installation. It is no secret."""
    row = db.execute("SELECT value FROM meta WHERE key = 'installation_id'").fetchone()
    if row is None:  # the migration made it: the row was deleted by hand
        raise StorageError(f"the database {db_path(db) or '(in memory)'} has no installation id: restore it "
                           "from a backup, or run: sqlite3 DB \"INSERT INTO meta VALUES ('installation_id', "
                           "lower(hex(randomblob(16))))\"")
    return row[0]


# -- leaks -----------------------------------------------------------------------------------------

LEAK_JSON = ("columns", "labs", "categories")


def save_leak(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    with write(db):
        db["leaks"].upsert(_encoded(row, LEAK_JSON), pk="name")


def leaks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [_decoded(r, LEAK_JSON) for r in db["leaks"].rows_where(order_by="name")]


def get_leak(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM leaks WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    cols = [d[0] for d in db.execute("SELECT * FROM leaks LIMIT 0").description]
    return _decoded(dict(zip(cols, row)), LEAK_JSON)


def remove_leak(db: sqlite_utils.Database, name: str, note: dict[str, Any]) -> int:
    """Delete a leak's row and add ``note`` (under ``detail.leak_removed``) to each of its findings,
    which are kept; return how many findings were noted. One transaction."""
    with write(db):
        db.execute("DELETE FROM leaks WHERE name = ?", [name])
        ids = [r[0] for r in db.execute("SELECT id FROM findings WHERE leak = ?", [name]).fetchall()]
        for fid in ids:
            detail = get_finding(db, fid).get("detail") or {}
            detail["leak_removed"] = note
            db.execute("UPDATE findings SET detail = ? WHERE id = ?",
                       [json.dumps(detail, ensure_ascii=False, sort_keys=True), fid])
    return len(ids)


# -- findings --------------------------------------------------------------------------------------

FINDING_JSON = ("identifiers", "labs", "categories", "sample", "errors", "detail")


def finding_row(finding: Any, *, source: str = "", url: str | None = None,
                first_seen: str | None = None, detail: dict | None = None) -> dict[str, Any]:
    """A ``findings`` row for a :class:`matchers.finding.Finding` (no id, not yet inserted).

    Its JSON columns (:data:`FINDING_JSON`) hold Python values; :func:`insert_finding` encodes them.
    """
    now = utcnow()
    return _finding_shape(
        dedup_key=f"{finding.verdict}:{finding.leak or '-'}:{finding.sha256 or finding.input}",
        verdict=finding.verdict, leak=finding.leak, source=source, url=url or finding.input,
        sha256=finding.sha256, size=finding.size, first_seen=first_seen or now, detected_at=now,
        matched_records=finding.matched_records, records_seen=finding.records_seen,
        schema_score=round(finding.schema_score, 3), identifiers=dict(finding.identifiers),
        labs=dict(finding.labs), categories=list(finding.categories), sample=list(finding.sample),
        errors=list(finding.errors), detail=detail or {},
        # False when the scan could not read everything: the counts are lower bounds
        complete=int(finding.complete))


def health_row(*, source: str, problem: str, at: str, detail: dict | None = None) -> dict[str, Any]:
    """A ``findings`` row for a source-health problem (no document: no hash, no counts), deduplicated
    per source, problem and day (``at`` is an ISO 8601 time)."""
    return _finding_shape(
        dedup_key=f"source-health:{source}:{problem}:{at[:10]}", verdict="source-health", source=source,
        url="", first_seen=at, detected_at=at, detail={"problem": problem, **(detail or {})})


def _finding_shape(*, dedup_key: str, verdict: str, first_seen: str, detected_at: str,
                   **fields: Any) -> dict[str, Any]:
    """The one shape of a ``findings`` row: every column, empty values where a kind has none."""
    row: dict[str, Any] = {
        "dedup_key": dedup_key, "verdict": verdict, "leak": None, "source": "", "url": "", "sha256": None,
        "size": None, "first_seen": first_seen, "detected_at": detected_at, "matched_records": 0,
        "records_seen": 0, "schema_score": None, "identifiers": {}, "labs": {}, "categories": [], "sample": [],
        "errors": [], "detail": {}, "complete": 1,
    }
    unknown = set(fields) - set(row)
    if unknown:
        raise TypeError(f"not a column of findings: {', '.join(sorted(unknown))}")
    row.update(fields)
    return row


def insert_finding(db: sqlite_utils.Database, row: dict[str, Any]) -> int | None:
    """Insert a finding row (its JSON columns as Python values); return its id, or ``None`` if the
    same copy was already recorded.

    Call inside ``with store.write(db):`` to make it part of a larger transaction (the alerts outbox).
    """
    with write(db):
        existing = db.execute("SELECT id FROM findings WHERE dedup_key = ?", [row["dedup_key"]]).fetchone()
        if existing:
            return None
        return db["findings"].insert(_encoded(row, FINDING_JSON)).last_pk


def get_finding(db: sqlite_utils.Database, finding_id: int) -> dict[str, Any]:
    return _decoded(db["findings"].get(finding_id), FINDING_JSON)


def findings(db: sqlite_utils.Database, *, where: str | None = None, params: Any = None,
             limit: int | None = None) -> list[dict[str, Any]]:
    rows = db["findings"].rows_where(where, params, order_by="id desc", limit=limit)
    return [_decoded(r, FINDING_JSON) for r in rows]


def finding_filter(*, verdict: str | None = None, leak: str | None = None, lab: str | None = None,
                   source: str | None = None, since: str | None = None) -> tuple[str | None, list[Any]]:
    """The ``where`` and ``params`` of :func:`findings` for these filters (each optional): a verdict,
    a leak, a lab among the finding's labs, a source, detected at or after ``since`` (ISO 8601)."""
    where, params = [], []
    for column, value in (("verdict", verdict), ("leak", leak), ("source", source)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if lab:
        where.append("EXISTS (SELECT 1 FROM json_each(findings.labs) WHERE json_each.key = ?)")
        params.append(lab)
    if since:
        where.append("detected_at >= ?")
        params.append(since)
    return " AND ".join(where) or None, params


def finding_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many findings of each verdict."""
    return {r["verdict"]: r["n"] for r in db.query("SELECT verdict, count(*) AS n FROM findings GROUP BY verdict")}


def collect_findings_before(db: sqlite_utils.Database, into: str, before: str) -> None:
    """Put the ids of the findings detected before ``before`` in the table ``into`` (housekeeping)."""
    db.execute(f"INSERT INTO {into} (id) SELECT id FROM findings WHERE detected_at < ?", [before])


def delete_findings(db: sqlite_utils.Database, ids_sql: str) -> int:
    """Delete the findings whose ids ``ids_sql`` (a ``SELECT id ...``) gives; return how many."""
    return db.execute(f"DELETE FROM findings WHERE id IN ({ids_sql})").rowcount


def _encoded(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A row as SQLite stores it: its JSON columns encoded (UTF-8, sorted keys): the one place where
    Python values become JSON text on the way in, as :func:`_decoded` is on the way out."""
    row = dict(row)
    for k in keys:
        if not isinstance(row.get(k), str):
            row[k] = json.dumps(row.get(k), ensure_ascii=False, sort_keys=True)
    return row


def _decoded(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    row = dict(row)
    for k in keys:
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row
