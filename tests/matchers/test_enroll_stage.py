"""The hidden directory an index is built in (matchers.indexbuild): locked while its enrollment
lives, removed on every exit path Python sees, removed by the next enrollment when it was killed;
and a worker whose enrollment is gone stops (matchers.enroll._Range)."""

from __future__ import annotations

import logging
import os

import pytest

from dumpwatch.devkit import synth
from matchers.enroll import EnrollError, _Range, enroll_file
from matchers.fingerprint import Fingerprinter
from matchers.indexbuild import IndexBuilder, remove_stale, stage_dir

KEY = bytes(range(32))


def test_only_unlocked_stages_are_stale(tmp_path, caplog):
    live = stage_dir(tmp_path)  # held by this process
    dead = tmp_path / ".enroll-dead"  # what a killed enrollment leaves: nobody holds it
    (dead / "part-0").mkdir(parents=True)
    (dead / "part-0" / "salt.bin").write_bytes(b"\0" * 8)
    other = tmp_path / "leak"  # an index, and a hidden directory of another kind: not stages
    other.mkdir()
    with caplog.at_level(logging.WARNING, logger="matchers.indexbuild"):
        assert remove_stale(tmp_path) == [dead]
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert f"removed {dead}" in caplog.text
    assert remove_stale(tmp_path) == []


def test_a_stale_stage_that_cannot_be_removed_is_said_not_reported_removed(tmp_path, caplog, monkeypatch):
    import shutil

    dead = tmp_path / ".enroll-dead"
    dead.mkdir()

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    with caplog.at_level(logging.WARNING, logger="matchers.indexbuild"):
        assert remove_stale(tmp_path) == []
    assert dead.is_dir()
    assert f"could not remove {dead}" in caplog.text and "Permission denied" in caplog.text
    assert f"removed {dead}" not in caplog.text.replace(f"could not remove {dead}", "")


def test_a_stage_held_by_another_open_descriptor_is_not_stale(tmp_path):
    import fcntl

    held = tmp_path / ".enroll-other"
    held.mkdir()
    fd = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another enrollment process holds its own
        assert remove_stale(tmp_path) == [] and held.is_dir()
    finally:
        os.close(fd)
    assert remove_stale(tmp_path) == [held]


def test_a_new_enrollment_removes_stale_stages_and_a_failed_one_its_own(tmp_path):
    dead = tmp_path / ".enroll-dead"
    dead.mkdir()
    builder = IndexBuilder(Fingerprinter(KEY), tmp_path)
    assert not dead.exists() and builder.stage.is_dir()
    builder.add(nir="1850578006084", emails=[], phones=[], name=None, dob=None, postcode=None, lab=None)
    builder.discard()
    assert list(tmp_path.iterdir()) == []


def test_saving_releases_the_lock(tmp_path):
    builder = IndexBuilder(Fingerprinter(KEY), tmp_path)
    builder.add(nir="1850578006084", emails=[], phones=[], name=None, dob=None, postcode=None, lab=None)
    index = builder.build({"name": "l", "version": 4})
    assert index.staged_lock is not None
    index.save(tmp_path / "l")
    assert index.staged_lock is None and [p.name for p in tmp_path.iterdir()] == ["l"]


def test_an_enrollment_that_finds_nothing_leaves_nothing(tmp_path):
    path = tmp_path / "nothing.csv"
    path.write_text(synth.csv_text(["nir", "nom"], [["n/a", "x"]] * 2000), encoding="utf-8")
    with pytest.raises(EnrollError):
        enroll_file(path, leak="l", key=KEY, workers=2, min_bytes=1, stage=tmp_path / "index")
    assert list((tmp_path / "index").iterdir()) == []


def test_a_worker_stops_once_its_enrollment_is_gone(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    alive = _Range(path, 0, 100, parent=os.getppid())  # its parent is there: it reads
    assert alive.read(10) == b"x" * 10
    alive.close()
    orphan = _Range(path, 0, 100, parent=os.getppid() + 1)  # its parent is another: the enrollment died
    with pytest.raises(EnrollError, match="gone"):
        orphan.read(10)
    orphan.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_counts_every_row_and_byte_once(tmp_path, people, workers):
    path = synth.write_csv(people, tmp_path / "leak.csv")
    seen = {"bytes": 0, "rows": 0}

    def progress(nbytes: int, rows: int) -> None:
        seen["bytes"] += nbytes
        seen["rows"] += rows

    index, report = enroll_file(path, leak="l", key=KEY, workers=workers, min_bytes=1, progress=progress,
                                stage=tmp_path / "index")
    index.discard()
    header = len(path.read_bytes().split(b"\n", 1)[0]) + 1  # the parent reads it; the workers the rest
    size = path.stat().st_size
    assert seen["rows"] == len(people) == report.records + report.skipped
    assert seen["bytes"] == (size - header if workers > 1 else size)
