"""`dumpwatch demo`: the whole pipeline, offline, on synthetic data (the pipeline is :mod:`dumpwatch.devkit.demo`)."""

from __future__ import annotations

import click


@click.command()
@click.option("--rows", default=5000, show_default=True, help="Size of the synthetic leak.")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep the demo's files and home in this directory (default: a temporary one).")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for the crawls and alerts.")
def demo(rows: int, keep: str | None, timeout: float) -> None:
    """Run the whole pipeline offline on synthetic data, with real local servers (no real person).

    Enrolls a synthetic leak, starts a local pastebin, forum, SMTP server and webhook receiver on
    127.0.0.1, reposts part of the leak there among ordinary content, runs the real daemon until it
    crawled both sources and delivered the alerts, shows what was found and received, and stops
    everything it started.

    \b
    Example:
      dumpwatch demo
      dumpwatch demo --keep /tmp/dw-demo      # then: dumpwatch --home /tmp/dw-demo/home status
    """
    from dumpwatch.devkit.demo import run

    run(rows=rows, keep=keep, timeout=timeout)


COMMANDS = [demo]
