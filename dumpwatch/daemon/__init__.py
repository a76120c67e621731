"""The dumpwatch daemon: APScheduler 3.x jobs for crawls, alert delivery, housekeeping and source health.

Jobs (explicit ids, ``max_instances=1``, ``coalesce=True``, a ``misfire_grace_time``):

- ``crawl:NAME``: one per enabled source, every ``interval`` (the source's, else ``[daemon] interval``,
  else ``[crawler] interval``) or on a crontab line (``[daemon.cron] NAME = "0 */6 * * *"``), with
  jitter. Each crawl runs in a child process (:func:`crawler.run.crawl_source`) with a time limit, so a
  crawl that crashes or hangs never takes the daemon down; crawls run in their own thread pool
  (``max_concurrent_crawls``) so they never delay alert delivery;
- ``alerts-delivery``: :func:`alerts.jobs.add_jobs` (every ``delivery_interval``);
- ``source-health``: :func:`crawler.health.check_health` for every enabled source;
- ``housekeeping``: retention and database maintenance (:mod:`dumpwatch.daemon.housekeeping`).

The modules, in the order a start goes through them:

- :mod:`~dumpwatch.daemon.settings`: the ``[daemon]`` table (:class:`DaemonSettings`, crontab lines);
- :mod:`~dumpwatch.daemon.check`: the whole configuration check, before anything runs: every loader
  the crawls, scans and deliveries will run (sources, ``[limits]``, ``[scan]``, receivers and their
  secrets, ``[contacts]`` against the labs of the enrolled leaks, the key and the indexes,
  ``[daemon]``); an error stops the daemon at start (``dumpwatch daemon --check`` runs the same check
  and exits);
- :mod:`~dumpwatch.daemon.scheduler`: the :class:`Daemon` (build the scheduler, run until SIGTERM or
  SIGINT, stop within bounded waits); only APScheduler's public API;
- :mod:`~dumpwatch.daemon.jobs`: the crawl jobs (a handle to every child process the daemon starts),
  source health and housekeeping;
- :mod:`~dumpwatch.daemon.housekeeping`: retention and database maintenance;
- :mod:`~dumpwatch.daemon.state`: the lock (one daemon per home) and ``HOME/daemon.json``, read by
  ``dumpwatch status``.

A job that raises is logged and counted (``daemon.json``), never fatal. SIGTERM or SIGINT stops the
daemon: no new job starts, running crawls get ``shutdown_grace`` seconds to finish, then are asked to
stop (SIGINT: Scrapy closes the spider and records the run) and killed if they do not (a second
SIGTERM or SIGINT skips the grace time). Nothing is lost: findings and their alerts are written in
one transaction as they are found, page marks that were not flushed are fetched again, already
matched contents are not matched twice, and messages claimed by a sender that died are sent again
with the same idempotency key. At start, the first crawl of each source is due one interval after
its last recorded run, so a restart picks up the schedule where it stopped.
"""
