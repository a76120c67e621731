"""The ``dumpwatch`` command: the front door that wires matchers, crawler and alerts together.

Every command has ``--help`` with an example. Usage errors exit with status 2; problems with one
input of a scan are reported in that input's ``errors`` and never stop the others. Storage
failures (disk full, read-only or unopenable database, a database locked past the write timeout)
are one ``Error:`` line naming the home directory and what to do, exit status 1, never a traceback;
what was committed before stays committed.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

import click

from dumpwatch.errors import USER_ERRORS, StorageError
from dumpwatch.escape import escape_logs, terminal
from dumpwatch.home import Home

_home: Home | None = None  # the home of the running command, for storage error messages


class Context:
    """What every command gets: the home directory and the parsed configuration."""

    def __init__(self, home: Home, config_path: str | None):
        self.home = home
        self._config_path = config_path
        self._config = None

    @property
    def config(self) -> dict:
        if self._config is None:
            self._config = self.home.load_config(self._config_path)
        return self._config

    def db(self):
        from dumpwatch.store import open_db

        self.home.ensure()
        return open_db(self.home.db_path)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", "home", envvar="DUMPWATCH_HOME", type=click.Path(file_okay=False),
              help="State directory (database, key, index, config). Default: DUMPWATCH_HOME or the "
                   "user data directory.")
@click.option("--config", "config_path", envvar="DUMPWATCH_CONFIG", type=click.Path(dir_okay=False),
              help="Configuration file (default: HOME/dumpwatch.toml).")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="dumpwatch")
@click.pass_context
def cli(ctx: click.Context, home: str | None, config_path: str | None, verbose: int) -> None:
    """dumpwatch: find reposts of a leaked health-data file, and alert the people who must know.

    \b
    Quick start:
      dumpwatch enroll leak.csv --leak labos-2021 --lab-column laboratoire
      dumpwatch scan suspicious.csv https://paste.example/raw/abc --json
    """
    level = logging.WARNING - 10 * verbose
    # control characters from pages are shown escaped in every log line (dumpwatch.escape)
    logging.basicConfig(level=max(level, logging.DEBUG), handlers=[escape_logs(logging.StreamHandler(sys.stderr))],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    global _home
    ctx.obj = Context(Home.resolve(home), config_path)
    _home = ctx.obj.home


# Commands live in their own modules (one per command group), registered here.
from dumpwatch.cli import alerts, cluster, crawl, daemon, demo, engine, findings, leaks, synth  # noqa: E402

for _module in (engine, leaks, synth, crawl, alerts, findings, daemon, demo, cluster):
    for _cmd in _module.COMMANDS:
        cli.add_command(_cmd)


def main(argv: list[str] | None = None) -> None:
    """The console script: run the command; a project error is one ``Error:`` line and an exit status."""
    try:
        cli.main(args=argv, prog_name="dumpwatch", standalone_mode=True)
    except StorageError as exc:
        click.echo(f"Error: {terminal(exc, limit=None)}", err=True)
        sys.exit(1)
    except USER_ERRORS as exc:
        click.echo(f"Error: {terminal(exc, limit=None)}", err=True)
        sys.exit(2)
    except (sqlite3.Error, OSError) as exc:
        from dumpwatch.store import storage_failure  # sqlite_utils: not imported by a scan

        home = _home.root if _home is not None else None
        failure = storage_failure(exc, _home.db_path if _home is not None and isinstance(exc, sqlite3.Error)
                                  else None, home=home)
        if failure is None:
            raise
        logging.getLogger("dumpwatch").debug("storage failure", exc_info=True)
        click.echo(f"Error: {terminal(failure, limit=None)}", err=True)
        sys.exit(1)
