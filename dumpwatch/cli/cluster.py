"""`dumpwatch worker`: a crawl worker of the distributed mode (docs/scale.md)."""

from __future__ import annotations

import logging
from typing import Any

import click


@click.command("worker")
@click.option("--redis", "redis_url", metavar="URL",
              help="The Redis of the cluster: redis://HOST[:PORT][/DB] or rediss://… (TLS); default: "
                   "[cluster] redis_url. The password comes from [cluster] password_env or password_file.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Crawl only this source (repeatable); default: every enabled source.")
@click.option("--metrics", "metrics", metavar="HOST:PORT",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464); default: "
                   "[cluster] metrics, else none. Loopback only unless [cluster] metrics_public = true.")
@click.pass_obj
def worker(obj: Any, redis_url: str | None, sources: tuple[str, ...], metrics: str | None) -> None:
    """Run crawl workers fed by Redis until SIGTERM or Ctrl-C; send findings, never documents.

    One long-lived Scrapy crawl per source of this machine's dumpwatch.toml, whose requests come
    from the source's Redis queue (the control node, `dumpwatch daemon` with [cluster], pushes each
    due source's start requests there). Each document is scanned here, with this home's enrolled
    indexes and key, and each finding is added to the findings stream that the control node records.
    The source's seen-set, its politeness slots per domain and its run counters are shared with
    the other workers in Redis (docs/scale.md, "Crawl state in Redis"). The index and key are
    checked against the control node's every [cluster] index_check (30 s): a new copy synced here
    is loaded; a stale one pauses the worker until fixed (docs/scale.md, "Operations").

    \b
    Examples:
      dumpwatch worker --redis redis://10.0.0.5:6379/0
      DUMPWATCH_REDIS_PASSWORD=… dumpwatch --home /var/lib/dumpwatch worker --source pastes
      dumpwatch worker --metrics 127.0.0.1:9464
    """
    import dataclasses

    from crawler.cluster.connect import cluster_settings
    from crawler.cluster.metrics import parse_address
    from crawler.cluster.worker import run_worker
    from dumpwatch.errors import ConfigError

    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    cluster = cluster_settings(obj.config, redis_url)
    if cluster is None:
        raise ConfigError("no Redis given: use --redis URL or [cluster] redis_url", key="cluster.redis_url")
    if metrics:
        cluster = dataclasses.replace(cluster, metrics=parse_address(metrics, public=cluster.metrics_public,
                                                                     option="--metrics"))
    run_worker(obj.home, obj.config, cluster, sources or None)


@click.command("workers")
@click.option("--redis", "redis_url", metavar="URL", help="The Redis of the cluster; default: [cluster] redis_url.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.pass_obj
def workers(obj: Any, redis_url: str | None, as_json: bool) -> None:
    """Show the crawl workers of the cluster: each crawl's heartbeat, last document and version.

    A worker crawl whose heartbeat is older than three periods (30 s) is flagged SILENT (killed,
    hung or cut off from Redis), one whose index does not match the control node's NOT SCANNING
    (it waits for a fresh copy); the command then exits with status 1.

    \b
    Examples:
      dumpwatch workers
      dumpwatch workers --json | jq '.workers[] | select(.silent)'
    """
    import json
    import sys

    from crawler.cluster import workers as heartbeats
    from crawler.cluster.connect import client, cluster_settings
    from dumpwatch.errors import ConfigError
    from dumpwatch.escape import terminal

    cluster = cluster_settings(obj.config, redis_url)
    if cluster is None:
        raise ConfigError("no Redis given: use --redis URL or [cluster] redis_url", key="cluster.redis_url")
    found = heartbeats.read(client(cluster))
    if as_json:
        click.echo(json.dumps({"workers": found}, sort_keys=True, default=str))
    else:
        if not found:
            click.echo("no worker has written a heartbeat")
        for w in found:
            flag = "  SILENT for %.0f s" % w["age"] if w["silent"] else ""
            if w.get("stale_index"):
                flag += f"  NOT SCANNING (stale index): {w['stale_index']}"
            click.echo(terminal(f"{w['name']:<36} {w.get('version', '?'):<8} heartbeat {w.get('heartbeat')}, "
                                f"{w.get('documents', 0)} documents, {w.get('findings_sent', 0)} findings sent, "
                                f"last document {w.get('last_document') or 'none'}{flag}", limit=None))
    if any(w["silent"] or w.get("stale_index") for w in found):
        sys.exit(1)


COMMANDS = [worker, workers]
