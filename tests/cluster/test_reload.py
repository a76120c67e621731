"""A running worker whose leak is enrolled again on the control node stops taking requests and says
so; once the new index is copied to its home it reloads its scanner and goes on, scanning with the
new index (crawler/cluster/reload.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from dumpwatch import store
from tests.cluster.test_worker import _config, _stop, _wait_for
from tests.helpers.crawlkit import LEAK, ROOT, repost
from tests.helpers.opskit import answers, free_port, list_archive, paste_archive, scrape, start_worker, value


@pytest.fixture
def paste_site(people):
    server = paste_archive(people)
    try:
        yield server
    finally:
        server.stop()


def _enroll_again(home, records, tmp_path) -> None:
    """`dumpwatch enroll` of a new file under the same leak name, on the control node's home."""
    from dumpwatch.devkit import synth

    leak = synth.write_csv(records, tmp_path / "leak-v2.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "enroll", str(leak),
                           "--leak", LEAK, "--lab-column", "laboratoire", "--replace"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _copy_index(control, worker) -> None:
    """What `rsync -a --delete --delay-updates` does: the new copy appears at once, not file by file."""
    new = worker.index_dir / f".{LEAK}.new"
    shutil.copytree(control.index_dir / LEAK, new)
    old = worker.index_dir / f".{LEAK}.old"
    os.replace(worker.index_dir / LEAK, old)
    os.replace(new, worker.index_dir / LEAK)
    shutil.rmtree(old)


def _heartbeat(rds) -> dict:
    beats = [json.loads(v) for v in rds.hgetall("dumpwatch:workers").values()]
    return beats[0] if beats else {}


@pytest.mark.xdist_group("deployment")  # a worker with its scan process and metrics: one deployment at a time
def test_a_worker_pauses_on_a_leak_enrolled_again_and_reloads_the_new_copy(homes, paste_site, redis_url, rds,
                                                                            people, strangers, tmp_path):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli
    from dumpwatch.daemon.scheduler import Daemon

    control, worker = homes["control"], homes["worker"]
    _config(control, paste_site)
    _config(worker, paste_site, '\n[cluster]\nindex_check = "1s"\n')
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    d.control.consume()  # publishes the control node's indexes; creates the consumer group
    port = free_port()
    proc = start_worker(worker, redis_url, "--metrics", f"127.0.0.1:{port}")
    try:
        _wait_for(lambda: answers(port) and "heartbeat" in _heartbeat(rds), proc, worker)
        assert _heartbeat(rds)["stale_index"] is None
        # a first run with the first index: the scan process has it loaded (memory-mapped)
        d.crawls.crawl("pastes")
        _wait_for(lambda: rds.xlen("dumpwatch:findings") >= 3, proc, worker)
        assert d.control.consume()["recorded"] == 3
        archive_fetches = paste_site.paths().count("/archive")
        # the leak is enrolled again on the control node, now with people the first copy does not have
        _enroll_again(control, people + strangers[:60], tmp_path)
        d.control.consume()  # each findings pass publishes the indexes again
        _wait_for(lambda: _heartbeat(rds).get("stale_index"), proc, worker)
        assert f"leak {LEAK!r} is stale here" in _heartbeat(rds)["stale_index"]
        said = (worker.root / "worker.out").read_text()
        assert "NOT SCANNING" in said and "is stale here" in said
        run = CliRunner().invoke(cli, ["--home", str(control.root), "workers", "--redis", redis_url])
        assert run.exit_code == 1 and "NOT SCANNING (stale index)" in run.output
        # a new repost of the new people appears and the source is pushed: the stale worker leaves it
        paste_site.add("/raw/REPOSTNEW", repost(strangers[:25], "csv", 7),
                       headers={"Content-Type": "text/plain; charset=utf-8"})
        paste_site.bodies["REPOSTNEW"] = "new"
        list_archive(paste_site)
        d.crawls.crawl("pastes")
        checks = value(scrape(port), "dumpwatch_worker_index_checks_total", source="pastes")
        # seven more checks (1 s apart) after the push: longer than the engine's own 5 s heartbeat,
        # which would have popped the request by then from an engine that was not paused
        _wait_for(lambda: value(scrape(port), "dumpwatch_worker_index_checks_total", source="pastes")
                  >= checks + 7, proc, worker)
        assert rds.zcard("dumpwatch:requests:pastes") == 1
        assert paste_site.paths().count("/archive") == archive_fetches
        assert value(scrape(port), "dumpwatch_worker_index_stale", source="pastes") == 1
        # the operator copies the new index to the worker: it reloads, takes the request, finds the repost
        _copy_index(control, worker)
        new_url = f"{paste_site.base}/raw/REPOSTNEW"
        _wait_for(lambda: any(f["url"] == new_url for _, f in rds.xrange("dumpwatch:findings")), proc, worker)
        samples = scrape(port)
        assert value(samples, "dumpwatch_worker_index_reloads_total", source="pastes") == 1
        assert value(samples, "dumpwatch_worker_index_stale", source="pastes") == 0
        _wait_for(lambda: _heartbeat(rds).get("stale_index") is None, proc, worker)
        done = d.control.consume()
        assert done["recorded"] == 1 and done["errors"] == 0 and done["bad"] == 0
    finally:
        _stop(proc)
    said = (worker.root / "worker.out").read_text()
    assert "scanner reloaded" in said and "taking requests" in said and "Traceback" not in said
    found = store.findings(store.open_db(control.db_path), where="verdict = ?", params=["repost"])
    assert sorted(f["url"].rsplit("/", 1)[1] for f in found) == ["REPOSTAA", "REPOSTBB", "REPOSTCC", "REPOSTNEW"]
    assert all(f["leak"] == LEAK for f in found)


class _Engine:
    paused = False

    def pause(self):
        self.paused = True

    def unpause(self):
        self.paused = False


def test_a_document_is_not_scanned_once_a_new_identity_is_published(homes, rds, monkeypatch):
    """Before each document (not only every index_check): a published change pauses the crawl at once;
    the same change synced here reloads the scanner and resumes it."""
    from types import SimpleNamespace

    from crawler.cluster import indexes, reload

    control, worker = homes["control"], homes["worker"]
    indexes.publish(rds, control)
    crawler = SimpleNamespace(stats=None, engine=_Engine())
    watch = reload.IndexWatch(crawler, period=3600)  # no periodic check in this test
    watch.redis, watch.home, watch.source = rds, worker, "pastes"
    reloads = []
    monkeypatch.setattr(reload, "reload_scanner", reloads.append)
    watch.attach("the pipeline", indexes.identity(worker))
    assert watch.ready() and not crawler.engine.paused
    meta = control.index_dir / LEAK / "meta.json"
    data = json.loads(meta.read_text())
    data["records"] = int(data["records"]) + 1  # enrolled again on the control node
    meta.write_text(json.dumps(data))
    indexes.publish(rds, control)
    assert not watch.ready() and crawler.engine.paused
    assert f"leak {LEAK!r} is stale here" in watch.stale and reloads == []
    assert not watch.ready()  # and it stays so
    shutil.copy(meta, worker.index_dir / LEAK / "meta.json")  # synced
    watch.check()
    assert reloads == ["the pipeline"] and watch.stale is None and not crawler.engine.paused
    assert watch.ready()
