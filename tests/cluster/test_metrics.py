"""Prometheus metrics of the control node and of a worker (crawler/cluster/metrics.py): scraped over
HTTP on 127.0.0.1, parsed with prometheus_client's parser, moving with a crawl; no identifier on the
page; a non-loopback address refused without the opt-in."""

from __future__ import annotations

import pytest

from crawler.cluster.metrics import parse_address
from dumpwatch.errors import ConfigError
from tests.cluster.test_worker import _config, _stop, _wait_for
from tests.helpers.opskit import answers, free_port, paste_archive, scrape, start_worker, value


@pytest.fixture
def paste_site(people):
    server = paste_archive(people)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("text", ["127.0.0.1:9464", "[::1]:9464", "localhost:9464"])
def test_a_loopback_address_is_taken(text):
    host, port = parse_address(text)
    assert port == 9464 and host in ("127.0.0.1", "::1")


@pytest.mark.parametrize("text", ["10.0.0.5:9464", "0.0.0.0:9464", ":9464"])
def test_another_address_needs_the_opt_in(text):
    with pytest.raises(ConfigError, match="no authentication"):
        parse_address(text)
    assert parse_address(text, public=True)[1] == 9464


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "metrics.example:9464"])
def test_a_bad_address_is_refused(text):
    with pytest.raises(ConfigError, match="cluster.metrics"):
        parse_address(text)


def test_the_cluster_table_checks_the_address(tmp_path):
    from crawler.cluster.connect import cluster_settings

    base = {"redis_url": "redis://127.0.0.1:6379/0"}
    assert cluster_settings({"cluster": base}).metrics is None  # off unless set
    assert cluster_settings({"cluster": {**base, "metrics": "127.0.0.1:9464"}}).metrics == ("127.0.0.1", 9464)
    with pytest.raises(ConfigError, match="metrics_public"):
        cluster_settings({"cluster": {**base, "metrics": "192.0.2.1:9464"}})
    public = cluster_settings({"cluster": {**base, "metrics": "192.0.2.1:9464", "metrics_public": True}})
    assert public.metrics == ("192.0.2.1", 9464)


def test_the_worker_option_refuses_a_public_address(homes):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli

    run = CliRunner().invoke(cli, ["--home", str(homes["worker"].root), "worker", "--redis",
                                   "redis://127.0.0.1:1/0", "--metrics", "0.0.0.0:9464"])
    assert isinstance(run.exception, ConfigError)  # exit status 2 from dumpwatch.cli.main:main
    assert "--metrics" in str(run.exception) and "no authentication" in str(run.exception)


def test_control_node_and_worker_metrics_move_with_a_crawl(homes, paste_site, redis_url, rds, people):
    """Two sources in one worker process (one page for both), one control node; values before and
    after a crawl of one of them, and after the findings pass."""
    from dumpwatch.daemon.scheduler import Daemon

    control, worker = homes["control"], homes["worker"]
    control_port, worker_port = free_port(), free_port()
    _config(control, paste_site, f'\n[cluster]\nmetrics = "127.0.0.1:{control_port}"\n')
    second = f"""
[[sources]]
name = "pastes2"
kind = "paste-archive"
start_urls = ["{paste_site.base}/archive"]
listing_regex = 'href="/(?P<key>[A-Z]+)"'
raw_url = "{{base}}/raw/{{key}}"
"""
    _config(worker, paste_site, second)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    d.control.start()
    try:
        d.control.consume()  # publishes the indexes, creates the consumer group
        before = scrape(control_port)
        assert value(before, "dumpwatch_control_requests_pushed_total", source="pastes") == 0
        assert value(before, "dumpwatch_control_queue_depth", source="pastes") == 0
        assert value(before, "dumpwatch_control_redis_up") == 1
        assert value(before, "dumpwatch_control_findings_total", outcome="recorded") == 0
        assert value(before, "dumpwatch_control_delivery_messages", status="pending") == 0
        d.crawls.crawl("pastes")  # no worker yet: the listing waits in the queue
        pushed = scrape(control_port)
        assert value(pushed, "dumpwatch_control_requests_pushed_total", source="pastes") == 1
        assert value(pushed, "dumpwatch_control_queue_depth", source="pastes") == 1
        assert value(pushed, "dumpwatch_control_last_push_timestamp_seconds", source="pastes") > 0
        proc = start_worker(worker, redis_url, "--metrics", f"127.0.0.1:{worker_port}")
        try:
            _wait_for(lambda: answers(worker_port) and value(scrape(worker_port), "dumpwatch_worker_findings_sent_total",
                                                             source="pastes") == 3, proc, worker)
            _wait_for(lambda: value(scrape(worker_port), "dumpwatch_worker_documents_scanned_total",
                                    source="pastes") == 6, proc, worker)
            samples = scrape(worker_port)
            for name, want in (("dumpwatch_worker_documents_fetched_total", 6),
                               ("dumpwatch_worker_requests_popped_total", 7), ("dumpwatch_worker_index_stale", 0),
                               ("dumpwatch_worker_documents_lost_total", 0)):
                assert value(samples, name, source="pastes") == want, name
            assert value(samples, "dumpwatch_worker_last_document_timestamp_seconds", source="pastes") > 0
            assert value(samples, "dumpwatch_worker_documents_scanned_total", source="pastes2") == 0  # same page
            assert value(samples, "process_cpu_seconds_total") is not None  # the default registry
            _wait_for(lambda: value(scrape(worker_port), "dumpwatch_worker_heartbeat_timestamp_seconds",
                                    source="pastes"), proc, worker)
            crawled = scrape(control_port)
            assert value(crawled, "dumpwatch_control_queue_depth", source="pastes") == 0
            assert value(crawled, "dumpwatch_control_findings_stream", what="lag") == 3  # sent, not yet read
            assert value(crawled, "dumpwatch_control_findings_stream", what="length") == 3
            assert value(crawled, "dumpwatch_control_workers", source="pastes", state="alive") == 1
            assert value(crawled, "dumpwatch_control_workers", source="pastes2", state="alive") == 1
            assert d.control.consume()["recorded"] == 3
            recorded = scrape(control_port)
            assert value(recorded, "dumpwatch_control_findings_total", outcome="recorded") == 3
            assert value(recorded, "dumpwatch_control_findings_stream", what="lag") == 0
            assert value(recorded, "dumpwatch_control_findings_stream", what="pending") == 0
            assert value(recorded, "dumpwatch_control_last_findings_pass_timestamp_seconds") > 0
            pages = repr(sorted(samples)) + repr(sorted(recorded))
        finally:
            _stop(proc)
    finally:
        d.control.stop()
    assert not answers(control_port)
    assert paste_site.base not in pages and "REPOST" not in pages  # no URL on the page
    for person in people[0:75]:
        for field in ("nir", "email", "telephone"):
            assert person[field] not in pages


def test_a_scrape_without_redis_says_so(homes, tmp_path):
    """Redis away at scrape time: redis_up 0 and a scrape error counted; the store's gauges are still there."""
    from crawler.cluster.connect import cluster_settings
    from crawler.cluster.metrics import ControlMetrics
    from tests.helpers.opskit import free_port as port_of

    dead = f"redis://127.0.0.1:{port_of()}/0"
    cluster = cluster_settings({"cluster": {"redis_url": dead, "metrics": f"127.0.0.1:{port_of()}"}})
    m = ControlMetrics(cluster, homes["control"], ["pastes"])
    m.start()
    try:
        samples = scrape(cluster.metrics[1])
    finally:
        m.stop()
    assert value(samples, "dumpwatch_control_redis_up") == 0
    assert value(samples, "dumpwatch_control_errors_total", kind="scrape redis") == 1
    assert value(samples, "dumpwatch_control_delivery_messages", status="pending") == 0


def test_an_address_in_use_stops_the_worker_and_the_control_node_saying_so(homes, redis_url, rds):
    import socket

    from crawler.cluster import indexes
    from crawler.cluster.connect import cluster_settings
    from crawler.cluster.metrics import ControlMetrics

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = cluster_settings({"cluster": {"redis_url": redis_url, "metrics": f"127.0.0.1:{port}"}})
        with pytest.raises(ConfigError, match="cannot serve the metrics"):
            ControlMetrics(cluster, homes["control"], ["pastes"]).start()
        indexes.publish(rds, homes["control"])
        proc = start_worker(homes["worker"], redis_url, "--metrics", f"127.0.0.1:{port}")
        try:
            assert proc.wait(timeout=120) == 2
        finally:
            _stop(proc)
    said = (homes["worker"].root / "worker.out").read_text()
    assert "cannot serve the metrics" in said and "Traceback" not in said


def test_the_running_daemon_serves_the_control_nodes_page_and_stops_it(homes, paste_site, redis_url):
    import threading

    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    port = free_port()
    _config(control, paste_site, f'\n[cluster]\nmetrics = "127.0.0.1:{port}"\n')
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    runner = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
    runner.start()
    try:
        deadline = 300  # polls of 0.2 s, bounded: the daemon starts its page before its scheduler
        while not answers(port) and deadline and runner.is_alive():
            deadline -= 1
            threading.Event().wait(0.2)
        assert value(scrape(port), "dumpwatch_control_redis_up") == 1
    finally:
        d.stop_event.set()
        runner.join(60)
    assert not runner.is_alive() and not answers(port)
