"""Disk full and other storage failures (issue 8): one clear line naming the home and what to do,
exit status 1, never a traceback, and nothing already committed lost.

The full database is a real one: ``PRAGMA max_page_count`` caps the file, so SQLite itself answers
"database or disk is full" (SQLITE_FULL), as on a full disk. The other cases work as root (CI runs
tests as root, whom file permissions do not stop): a home whose parent is a regular file, and a
database path that is a directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dumpwatch import store

ROOT = Path(__file__).resolve().parent.parent.parent


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_HOME", "DUMPWATCH_CONFIG")}


def _full(db) -> None:
    """Cap the database at its current size: the next write that needs a page fails with SQLITE_FULL."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def _finding(n: int, big: int = 0):
    import hashlib

    from matchers.finding import Finding

    return Finding(input=f"https://p.example/{n}", verdict="repost", leak="labos-2021", matched_records=4,
                   records_seen=4, identifiers={"nir": 4}, labs={}, categories=("nir",),
                   sha256=hashlib.sha256(str(n).encode()).hexdigest(), size=10,
                   errors=tuple(f"note {i}" for i in range(big)))


def test_full_database_is_a_storage_error_and_keeps_what_was_committed(tmp_path, caplog):
    from alerts import record_finding

    path = tmp_path / "home" / "dumpwatch.db"
    db = store.open_db(path)
    kept = record_finding(db, _finding(1), config={})
    _full(db)
    with pytest.raises(store.StorageError) as err:
        record_finding(db, _finding(2, big=3000), config={})  # needs new pages
    message = str(err.value)
    assert "database or disk is full" in message and str(path) in message and "free space" in message
    assert str(path.parent) in message  # the home
    assert isinstance(err.value.__cause__, Exception)
    assert not db.conn.in_transaction
    other = store.open_db(path)
    assert [f["id"] for f in store.findings(other)] == [kept]  # the first finding is intact, the second absent


def test_cli_says_disk_full_in_one_line_and_exits_1(tmp_path, monkeypatch, capsys):
    from dumpwatch.cli.main import main

    home = tmp_path / "home"
    real_open = store.open_db

    def full_open(path=None):
        db = real_open(path)
        _full(db)
        return db

    monkeypatch.setattr(store, "open_db", full_open)
    with pytest.raises(SystemExit) as code:
        main(["--home", str(home), "alerts", "silence", "add", "--match", "leak=labos-2021",
             "--author", "soc", "--comment", "x" * 20000])
    assert code.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "database or disk is full" in err and str(home) in err and "free space" in err
    assert "Traceback" not in err


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dumpwatch.cli", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=60)


def test_home_under_a_regular_file_is_one_clear_line(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be\n")
    home = blocker / "home"
    proc = _run("--home", str(home), "findings", "list")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: storage failure"), proc.stderr
    assert str(home) in proc.stderr and ("not a directory" in proc.stderr.lower() or "fix --home" in proc.stderr)


def test_database_that_cannot_be_opened_is_one_clear_line(tmp_path):
    home = tmp_path / "home"
    (home / "dumpwatch.db").mkdir(parents=True)  # a directory where the database file should be
    proc = _run("--home", str(home), "findings", "list")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "unable to open database" in proc.stderr and str(home) in proc.stderr, proc.stderr


def test_storage_failure_classification():
    import errno
    import sqlite3

    full = store.storage_failure(sqlite3.OperationalError("database or disk is full"), "/h/dumpwatch.db")
    assert full is not None and "/h" in str(full) and "free space" in str(full)
    ro = store.storage_failure(sqlite3.OperationalError("attempt to write a readonly database"), "/h/dumpwatch.db")
    assert ro is not None and "permissions" in str(ro)
    nospace = store.storage_failure(OSError(errno.ENOSPC, "No space left on device", "/h/index/x"))
    assert nospace is not None and "/h/index/x" in str(nospace) and "free space" in str(nospace)
    # busy is not a storage failure (it is retried, then DatabaseBusy); a bug is not either
    assert store.storage_failure(sqlite3.OperationalError("database is locked")) is None
    assert store.storage_failure(sqlite3.OperationalError("no such table: x")) is None
    assert store.storage_failure(ValueError("x")) is None
