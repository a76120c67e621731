"""File modes (issue 10, case 6): the home, the database and its -wal/-shm, the configuration the
demo writes, the crawl logs and the key are created 0700/0600 whatever the umask; an existing home
left looser is tightened with a warning; the key's warning agrees with how deploy/ installs it."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.devkit import synth
from dumpwatch.devkit.localsites import SiteServer
from dumpwatch.filemodes import private_file, tighten, write_private
from dumpwatch.home import Home
from dumpwatch.store import open_db

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """The umask of a careless shell (0 gives every bit the code asks for; 022 is the usual one)."""
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_CONFIG", "DUMPWATCH_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_enroll_in_a_new_home_creates_everything_private(tmp_path, people, loose_umask, clean_env):
    from dumpwatch.cli.main import cli

    leak = synth.write_csv(people[:50], tmp_path / "leak.csv")
    root = tmp_path / "new" / "home"
    result = CliRunner().invoke(cli, ["--home", str(root), "enroll", str(leak), "--leak", "labos-2021",
                                      "--lab-column", "laboratoire"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    db = open_db(root / "dumpwatch.db")  # a reader keeps the -wal and -shm files open
    db.execute("SELECT count(*) FROM leaks").fetchone()
    expected = {root: 0o700, root / "index": 0o700, root / "secret": 0o700, root / "secret" / "key": 0o600,
                root / "dumpwatch.db": 0o600, root / "dumpwatch.db-wal": 0o600, root / "dumpwatch.db-shm": 0o600}
    assert {p: mode(p) for p in expected} == expected
    db.close()


def test_an_existing_home_left_loose_is_tightened_with_a_warning(tmp_path, caplog, loose_umask):
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    db = open_db(root / "dumpwatch.db")
    db.close()
    (root / "dumpwatch.toml").write_text("# receivers with their webhook URLs\n")
    (root / "logs").mkdir()
    (root / "logs" / "crawl-forum.log").write_text("a crawl log\n")
    for path in (root, root / "logs"):
        path.chmod(0o755)
    for path in (root / "dumpwatch.db", root / "dumpwatch.toml", root / "logs" / "crawl-forum.log"):
        path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="dumpwatch.filemodes"):
        Home(root).ensure()
    for path in (root, root / "logs", root / "index"):
        assert mode(path) == 0o700, path
    for path in (root / "dumpwatch.db", root / "dumpwatch.toml", root / "logs" / "crawl-forum.log"):
        assert mode(path) == 0o600, path
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("home was", "dumpwatch.db was", "dumpwatch.toml was", "logs was", "crawl-forum.log was"):
        assert f"{name} readable by others" in warned.replace(str(root.parent) + "/", "").replace("/", " ")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dumpwatch.filemodes"):
        Home(root).ensure()
    assert not caplog.records  # once tightened, nothing more to say


def test_open_db_tightens_the_database_and_its_wal(tmp_path, caplog):
    path = tmp_path / "dumpwatch.db"
    db = open_db(path)
    db.execute("CREATE TABLE t (x)")  # a write leaves a -wal while the connection is open
    for p in (path, path.with_name("dumpwatch.db-wal")):
        p.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="dumpwatch.filemodes"):
        other = open_db(path)
    assert mode(path) == 0o600 and mode(path.with_name("dumpwatch.db-wal")) == 0o600
    assert len(caplog.records) == 2
    other.close()
    db.close()


def test_private_files_whatever_the_umask(tmp_path, loose_umask):
    assert mode(private_file(tmp_path / "a.log")) == 0o600
    assert mode(write_private(tmp_path / "dumpwatch.toml", "x = 1\n")) == 0o600
    assert (tmp_path / "dumpwatch.toml").read_text() == "x = 1\n"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "a.log")
    assert tighten(link) is False  # a symbolic link is left alone


def test_a_crawl_writes_its_logs_private(tmp_path, loose_umask, clean_env):
    from crawler.run import crawl_source
    from crawler.sources import load_crawl_config

    server = SiteServer().start()
    try:
        server.add("/feed.xml", "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>",
                   headers={"Content-Type": "application/rss+xml"})
        home = Home(tmp_path / "home").ensure()
        home.config_path.write_text("[crawler]\ndelay = 0\nautothrottle = false\n\n[[sources]]\nname = \"blog\"\n"
                                    f"kind = \"feed\"\nstart_urls = [\"{server.base}/feed.xml\"]\n")
        config = home.load_config()
        source = load_crawl_config(config).get("blog")
        run = crawl_source(source, home=home, timeout=90, settings={"DUMPWATCH_TEST_MODE": "True",
                                                                     "DUMPWATCH_SCAN_PROCESSES": 0}, config=config)
    finally:
        server.stop()
    log = Path(run.log_path)
    assert log.stat().st_size > 0  # Scrapy wrote into the file made private for it
    assert {p.name: mode(p) for p in (home.logs_dir, log, log.with_suffix(".stderr"))} == {
        "logs": 0o700, "crawl-blog.log": 0o600, "crawl-blog.stderr": 0o600}


# -- the key's warning and deploy/ agree ---------------------------------------------------------------

def _key_file(tmp_path: Path, file_mode: int) -> Path:
    path = tmp_path / "key"
    path.write_text("ab" * 32 + "\n")
    path.chmod(file_mode)
    return path


def _key_warnings(tmp_path, monkeypatch, caplog, path: Path) -> list[str]:
    monkeypatch.delenv("DUMPWATCH_KEY", raising=False)
    monkeypatch.setenv("DUMPWATCH_KEY_FILE", str(path))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dumpwatch.home"):
        Home(tmp_path / "home").load_key()
    return [r.getMessage() for r in caplog.records]


def test_the_key_as_deploy_installs_it_loads_without_a_warning(tmp_path, monkeypatch, caplog):
    unit = (DEPLOY / "dumpwatch.service").read_text()
    install = re.search(r"install -o (\w+) -g (\w+) -m (0\d{3}) \S+ /etc/dumpwatch/key", unit)
    assert install, "deploy/dumpwatch.service says how the key is installed"
    owner, group, file_mode = install.group(1), install.group(2), int(install.group(3), 8)
    assert re.search(rf"^Group={group}$", unit, re.M)  # the key's group is the service's own group
    assert file_mode & 0o007 == 0  # nobody else
    assert owner == "root" and not re.search(rf"^User={owner}$", unit, re.M)  # the service reads it, cannot change it
    home_dir = re.search(r"install -d -o \w+ -g \w+ -m (0\d{3}) /var/lib/dumpwatch", unit)
    assert home_dir and int(home_dir.group(1), 8) == 0o700
    # Installed that way, the service (whose group is the key's) loads it without a warning ...
    path = _key_file(tmp_path, file_mode)
    os.chown(path, -1, os.getegid())
    assert _key_warnings(tmp_path, monkeypatch, caplog, path) == []
    # ... and the warning is still given where it means something.
    path.chmod(0o604)
    assert "readable by other users" in _key_warnings(tmp_path, monkeypatch, caplog, path)[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root")
def test_a_key_readable_by_another_group_is_a_warning(tmp_path, monkeypatch, caplog):
    path = _key_file(tmp_path, 0o640)
    os.chown(path, -1, os.getegid() + 4242)
    (warning,) = _key_warnings(tmp_path, monkeypatch, caplog, path)
    assert "readable by other users (mode 640, group" in warning and "chmod 600" in warning
    path.chmod(0o600)
    assert _key_warnings(tmp_path, monkeypatch, caplog, path) == []
