"""`dumpwatch crawl`: one on-demand crawl of configured sources (the spiders `scrapy crawl` runs)."""

from __future__ import annotations

import json

import click

from dumpwatch.errors import DumpwatchError
from dumpwatch.escape import terminal


@click.command("crawl")
@click.argument("names", nargs=-1, metavar="SOURCE...")
@click.option("--all", "all_sources", is_flag=True, help="Crawl every enabled source of the configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary of the runs on stdout.")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds a crawl of one source may take (default: [crawler] run_timeout, 1800).")
@click.option("--list", "list_only", is_flag=True, help="List the configured sources and their health; crawl nothing.")
@click.pass_obj
def crawl(obj, names: tuple[str, ...], all_sources: bool, as_json: bool, timeout: float | None,
          list_only: bool) -> None:
    """Crawl sources declared in [[sources]] of dumpwatch.toml, scan every new document, record findings.

    Each source runs in its own process with the same spider as `scrapy crawl KIND -a source=NAME`.
    A source with errors does not stop the others, and the exit status stays 0: the errors are
    reported here, recorded in the source's health, and a source that keeps failing (or suddenly
    finds nothing) raises a health finding for the operators.

    \b
    Examples:
      dumpwatch crawl pastes
      dumpwatch crawl --all --json
      dumpwatch crawl --list
    """
    from crawler import health
    from crawler.run import crawl_sources
    from crawler.sources import load_crawl_config
    from dumpwatch.tables import path_of

    config = obj.config
    cc = load_crawl_config(config)
    if list_only:
        db = obj.db()
        rows = health.summary(db, [s.name for s in cc.sources])
        kinds = {s.name: (s.kind, s.enabled) for s in cc.sources}
        if as_json:
            click.echo(json.dumps({"sources": [dict(r, kind=kinds[r["source"]][0], enabled=kinds[r["source"]][1])
                                               for r in rows]}, sort_keys=True))
            return
        if not rows:
            click.echo("no sources configured: add [[sources]] tables to dumpwatch.toml (see docs/crawler.md)")
        for r in rows:
            kind, enabled = kinds[r["source"]]
            last = r["last_run"]
            state = ("never crawled" if not last else
                     "ok" if last["ok"] else f"failed ({terminal(last['close_reason'])})")
            problems = f"  PROBLEMS: {terminal(', '.join(r['problems']), limit=None)}" if r["problems"] else ""
            click.echo(f"{r['source']:<20} {kind:<14} {'on ' if enabled else 'off'} last: {state}; "
                       f"last success: {r['last_success'] or 'never'}{problems}")
        return
    if all_sources == bool(names):
        raise click.UsageError("name the sources to crawl, or give --all (not both)")
    if all_sources and not cc.enabled():
        raise DumpwatchError("no enabled source in the configuration: add [[sources]] tables to "
                             f"{path_of(config) or obj.home.config_path} (see docs/crawler.md)")
    for name in names:
        cc.get(name)  # an unknown name is a usage error before anything runs
    obj.home.ensure()
    results = crawl_sources(list(names) or None, home=obj.home, config=config, timeout=timeout)
    if as_json:
        click.echo(json.dumps({
            "ok": all(r.ok for r in results),
            "findings": sum(r.findings for r in results),
            "runs": [r.to_json() for r in results],
        }, sort_keys=True))
        return
    for r in results:
        status = "ok" if r.ok else f"FAILED ({terminal(r.close_reason)})"  # may quote the crawl's stderr
        click.echo(f"{r.source} ({r.kind}): {status}; {r.pages} pages, {r.listed} listed, {r.documents} new "
                   f"documents, {r.findings} new findings, {r.errors} errors, {r.bad} bad, {r.skipped} skipped")
        reasons = {**r.detail.get("error_reasons", {}), **r.detail.get("bad_reasons", {}),
                   **{f"refused by the network policy ({k})": v for k, v in r.detail.get("refused_reasons", {}).items()}}
        if reasons:
            said = ", ".join(f"{k} ×{v}" for k, v in sorted(reasons.items()))
            click.echo("  problems: " + terminal(said, limit=None))
        if r.health:
            click.echo(f"  HEALTH: {', '.join(r.health)} (a health finding was recorded for the operators)")
        if not r.ok and r.log_path:
            click.echo(f"  log: {r.log_path}")


COMMANDS = [crawl]
