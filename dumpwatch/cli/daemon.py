"""`dumpwatch daemon` (the scheduled jobs) and `dumpwatch status` (what it does, from another shell)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import click

from dumpwatch.escape import terminal


@click.command("daemon")
@click.option("--check", is_flag=True, help="Check the configuration and the jobs it gives, then exit.")
@click.option("--redis", "redis_url", metavar="URL",
              help="Run as the control node of workers over Redis (docs/scale.md); default: [cluster] redis_url.")
@click.pass_obj
def daemon(obj: Any, check: bool, redis_url: str | None) -> None:
    """Run the crawl, alert delivery, housekeeping and source-health jobs until SIGTERM or Ctrl-C.

    Jobs come from dumpwatch.toml: one crawl job per enabled [[sources]] entry (its interval, or a
    crontab line in [daemon.cron]), the alerts delivery job, housekeeping and source health; the
    [daemon] table sets intervals, jitter, the crawl time limit and retention (README, "Running as a
    daemon"). Each crawl runs in a child process with a time limit. `dumpwatch status` shows the jobs
    from another shell.

    Before anything runs, the configuration is checked whole, with the loaders the crawls, scans and
    deliveries will run: sources, [limits], [scan], receivers and their secrets, [contacts] against
    the labs of the enrolled leaks, the key and the indexes, [daemon]. Any error (each naming the
    file and the key) stops it with status 2; warnings are said and do not stop it. --check runs
    the same check and exits.

    With [cluster] redis_url or --redis URL it is the control node of the distributed mode: a due
    crawl pushes the source's start requests to Redis for `dumpwatch worker`s, and a job records
    the findings they send (docs/scale.md).

    \b
    Examples:
      dumpwatch daemon
      dumpwatch --home /var/lib/dumpwatch daemon --check
    """
    from dumpwatch.daemon.scheduler import Daemon

    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a daemon says what it does (journald keeps it)
    if root.level > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per job run
    d = Daemon(obj.home, obj.config, redis_url=redis_url)  # the whole check: an error exits with status 2 before anything runs
    if check:
        sched = d.build()
        for warning in d.warnings:
            click.echo(f"warning: {terminal(warning)}", err=True)
        said = f", {len(d.warnings)} warning{'s' if len(d.warnings) > 1 else ''} (above)" if d.warnings else ""
        click.echo(f"configuration ok: {len(d.crawl_config.enabled())} crawl jobs{said}")
        if d.control is not None:
            click.echo(f"control node of the workers on {d.control.cluster.redis_url} (docs/scale.md)")
        for job in sched.get_jobs():
            click.echo(f"  {job.id:<28} {job.trigger}")
        return
    d.run()


def _age(iso: str | None) -> float | None:
    if not iso:
        return None
    return (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.pass_obj
def status(obj: Any, as_json: bool) -> None:
    """Show the daemon's state: its jobs and their next run, the last result of each source, the outbox.

    Reads the database and HOME/daemon.json (written by the daemon), so it works while the daemon
    runs, and after it stopped. With [cluster] in the configuration it also shows the workers
    (host, pid, version, source, heartbeat, last document, requests in progress) from Redis, and
    flags as SILENT a worker whose heartbeat stopped.

    \b
    Examples:
      dumpwatch status
      dumpwatch status --json | jq .outbox
    """
    from alerts import delivery, grouping
    from crawler import health
    from crawler.sources import load_crawl_config
    from dumpwatch import store
    from dumpwatch.daemon.state import is_running, read_state

    cc = load_crawl_config(obj.config)
    db = obj.db()
    state = read_state(obj.home) or {}
    running = is_running(obj.home)
    sources = health.summary(db, [s.name for s in cc.sources])
    kinds = {s.name: (s.kind, s.enabled) for s in cc.sources}
    outbox = {
        "messages": delivery.message_counts(db),
        "alerts": grouping.alert_counts(db),
        "open_incidents": grouping.open_incidents(db),
        "findings": store.finding_counts(db),
    }
    heartbeat_age = _age(state.get("heartbeat"))
    daemon_info = {
        "running": running, "pid": state.get("pid") if running else None, "started": state.get("started"),
        "heartbeat": state.get("heartbeat"),
        "stale": bool(running and heartbeat_age is not None and heartbeat_age > 3 * state.get("heartbeat_seconds", 10)),
        "jobs": state.get("jobs", []) if running else [], "stats": state.get("stats", {}),
        "running_crawls": state.get("running_crawls", {}) if running else {},
    }
    cluster = _workers(obj.config)
    if as_json:
        click.echo(json.dumps({"daemon": daemon_info, "sources": [
            dict(r, kind=kinds[r["source"]][0], enabled=kinds[r["source"]][1]) for r in sources],
            "outbox": outbox, **cluster}, sort_keys=True, default=str))
        return
    if running:
        stale = "  (NO HEARTBEAT for %.0f s: hung?)" % heartbeat_age if daemon_info["stale"] else ""
        click.echo(f"daemon: running, pid {state.get('pid')}, since {state.get('started')}; heartbeat "
                   f"{state.get('heartbeat')}{stale}")
    else:
        last = f" (last seen {state.get('heartbeat')}, {state.get('status')})" if state else ""
        click.echo(f"daemon: not running{last}")
    if daemon_info["jobs"]:
        click.echo("jobs:")
        stats = state.get("stats", {})
        for job in daemon_info["jobs"]:
            st = stats.get(job["id"], {})
            errors = f", {st.get('errors')} errors" if st.get("errors") else ""
            click.echo(f"  {job['id']:<28} next {job['next_run'] or 'paused'}  ({st.get('runs', 0)} runs{errors})")
        for name, since in daemon_info["running_crawls"].items():
            click.echo(f"  crawling {name} since {since}")
    if cluster:
        _show_workers(cluster, state.get("stats", {}).get("workers") or {})
    click.echo("sources:")
    if not sources:
        click.echo("  none configured: add [[sources]] tables to dumpwatch.toml (docs/crawler.md)")
    for r in sources:
        kind, enabled = kinds[r["source"]]
        last = r["last_run"]
        if not last:
            what = "never crawled"
        else:
            what = (f"{'ok' if last['ok'] else 'FAILED (' + last['close_reason'] + ')'} at {last['finished']}: "
                    f"{last['pages']} pages, {last['documents']} new documents, {last['findings']} new findings")
        problems = f"  PROBLEMS: {', '.join(r['problems'])}" if r["problems"] else ""
        click.echo(terminal(f"  {r['source']:<20} {kind:<14} {'on ' if enabled else 'off'} {what}{problems}",
                            limit=None))
    msgs = outbox["messages"]
    click.echo(f"outbox: {sum(msgs.values())} messages ("
               + ", ".join(f"{k} {msgs.get(k, 0)}" for k in ("pending", "sending", "delivered", "dead"))
               + f"); {outbox['alerts'].get('pending', 0)} alerts waiting for their group; "
                 f"{outbox['open_incidents']} open incidents")
    click.echo("findings: " + (", ".join(f"{k} {v}" for k, v in sorted(outbox["findings"].items())) or "none"))


def _workers(config: Any) -> dict[str, Any]:
    """With [cluster]: ``{"workers": [...], "open_runs": {...}, "workers_error": None}`` read from Redis; else ``{}``."""
    from crawler.cluster import runs, workers
    from crawler.cluster.connect import client, cluster_settings

    cluster = cluster_settings(config)
    if cluster is None:
        return {}
    try:
        r = client(cluster)
        try:
            opened = {name: {"run": info.get("run"), "since": _iso(info.get("opened"))}
                      for name, info in sorted(runs.open_runs(r).items())}
            return {"workers": workers.read(r), "open_runs": opened, "workers_error": None}
        finally:
            r.close()
    except Exception as exc:  # Redis away, a wrong password: said, the rest of the status still shown
        return {"workers": [], "open_runs": {}, "workers_error": f"cannot read the workers from Redis "
                                                                 f"({type(exc).__name__}: {str(exc)[:200]})"}


def _iso(epoch: Any) -> str | None:
    try:
        return datetime.fromtimestamp(float(epoch), timezone.utc).replace(microsecond=0).isoformat()
    except (TypeError, ValueError):
        return None


def _show_workers(cluster: dict[str, Any], said: dict[str, Any]) -> None:
    found = cluster["workers"]
    silent = sum(1 for w in found if w["silent"])
    click.echo(f"workers: {len(found)} crawl(s){f', {silent} SILENT' if silent else ''}" if found
               else "workers: none has written a heartbeat")
    if cluster["workers_error"]:
        click.echo(terminal(f"  {cluster['workers_error']}", limit=None))
    for w in found:
        flag = "  SILENT for %.0f s" % w["age"] if w["silent"] else ""
        click.echo(terminal(f"  {w.get('host', '?')} pid {w.get('pid', '?')} {w.get('version', '?')} "
                            f"source {w.get('source', '?')}: heartbeat {w.get('heartbeat')}, "
                            f"{w.get('in_progress', 0)} in progress, last document {w.get('last_document') or 'none'}"
                            f"{flag}", limit=None))
    for name, run in cluster["open_runs"].items():
        click.echo(terminal(f"  run of {name} open since {run['since']} (closed when its workers are done)",
                            limit=None))
    if said.get("silent_seen"):
        click.echo(f"  the daemon has warned of {said['silent_seen']} silent worker crawl(s) since it started")


COMMANDS = [daemon, status]
