"""`dumpwatch enroll` stopped half-way leaves nothing behind (issue 9), and shows it is moving.

An enrollment builds its index in a hidden ``HOME/index/.enroll-*`` directory (a 33-million-row
leak: gigabytes). A real enrollment process is stopped while it reads its file: the file is a named
pipe the test feeds, so the process is certainly half-way (its build directory made, waiting for
rows) when the signal comes, with no timing guess. SIGTERM: the command removes the directory on
its way out. SIGKILL: nothing can run, the directory stays; the next enrollment removes it and
says so. An enrollment still running is never touched (its directory is locked).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.cli import engine as cli_engine
from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth

WAIT = 60.0  # seconds at most for a process to start and make its build directory (a loaded machine)


def stages(home) -> list[Path]:
    return sorted(home.index_dir.glob(".enroll-*")) if home.index_dir.exists() else []


@pytest.fixture
def half_way(home, people, tmp_path):
    """A real `dumpwatch enroll` process reading a named pipe that holds the leak's header and
    first rows, never closed: yields (process, its build directory)."""
    fifo = tmp_path / "leak.csv"
    os.mkfifo(fifo)
    env = {**os.environ, "DUMPWATCH_HOME": str(home.root)}
    proc = subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "enroll", str(fifo),
                             "--leak", "l", "--workers", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    writer = None
    try:
        writer = open(fifo, "w", encoding="utf-8")  # returns once the process opened it to read
        writer.write(synth.csv_text(*synth.transform(people[:50])))
        writer.flush()
        deadline = time.monotonic() + WAIT
        while not stages(home) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        found = stages(home)
        assert len(found) == 1 and proc.poll() is None, (found, proc.poll())
        yield proc, found[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=WAIT)
        if writer:
            try:
                writer.close()
            except BrokenPipeError:
                pass


def enroll(home, leak: Path):
    return subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "enroll", str(leak),
                           "--leak", "l", "--replace"], env={**os.environ, "DUMPWATCH_HOME": str(home.root)},
                          capture_output=True, text=True, timeout=300)


def test_a_killed_enrollment_is_cleaned_up_by_the_next(home, people, tmp_path, half_way):
    proc, stage = half_way
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL
    assert stage.is_dir()  # nothing could run: left behind
    leak = synth.write_csv(people[:80], tmp_path / "again.csv")
    done = enroll(home, leak)
    assert done.returncode == 0, done.stderr
    assert stages(home) == []  # removed, and said so where the operator looks
    assert f"removed {stage}" in done.stderr and "did not finish" in done.stderr
    assert [p.name for p in home.index_dir.iterdir()] == ["l"]


def test_a_terminated_enrollment_removes_its_directory(home, half_way):
    proc, stage = half_way
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 128 + signal.SIGTERM
    assert not stage.exists() and stages(home) == []


def test_a_running_enrollment_is_left_alone(home, people, tmp_path, half_way):
    proc, stage = half_way
    leak = synth.write_csv(people[:80], tmp_path / "other.csv")
    done = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "enroll", str(leak),
                           "--leak", "other"], env={**os.environ, "DUMPWATCH_HOME": str(home.root)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert stage.is_dir() and proc.poll() is None and "removed" not in done.stderr


def test_enroll_says_how_far_it_is_when_stderr_is_no_terminal(home, people, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_engine._EnrollProgress, "EVERY", 0.0)
    leak = synth.write_csv(people[:200], tmp_path / "leak.csv")
    result = CliRunner().invoke(cli, ["--home", str(home.root), "enroll", str(leak), "--leak", "l"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("enroll leak.csv: ")]
    assert lines and "200 rows enrolled" in lines[-1] and "rows/s" in lines[-1] and "100% of" in lines[-1]
