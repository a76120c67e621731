"""The ``dumpwatch`` command line, one module per command group.

- :mod:`dumpwatch.cli.main`: the ``dumpwatch`` group (``--home``, ``--config``, ``-v``), the
  context every command gets, and :func:`~dumpwatch.cli.main.main`, which turns the project's
  errors into one ``Error:`` line and an exit status;
- :mod:`dumpwatch.cli.engine`: ``enroll``, ``scan``: the engine on files and URLs (``scan --record``
  records tips: :mod:`dumpwatch.cli.tips`);
- :mod:`dumpwatch.cli.leaks`: ``leaks``, ``leaks remove``: the enrolled leaks;
- :mod:`dumpwatch.cli.synth`: ``synth``: synthetic leaks and reposts (:mod:`dumpwatch.devkit.synth`);
- :mod:`dumpwatch.cli.crawl`: ``crawl``: one on-demand crawl of configured sources;
- :mod:`dumpwatch.cli.alerts`: ``alerts …``: the outbox, receivers, incidents and silences;
- :mod:`dumpwatch.cli.findings`: ``findings list``, ``show``, ``export`` (MISP, STIX) and ``patients``
  (Art. 34); :mod:`dumpwatch.cli.listing`: ``--format table|json|csv`` of the lists;
- :mod:`dumpwatch.cli.daemon`: ``daemon`` and ``status``;
- :mod:`dumpwatch.cli.demo`: ``demo`` (the pipeline is :mod:`dumpwatch.devkit.demo`);
- :mod:`dumpwatch.cli.cluster`: ``worker``, ``workers`` (the distributed mode, docs/scale.md).

Each module lists its commands in ``COMMANDS``; :mod:`dumpwatch.cli.main` registers them.

``python -m dumpwatch.cli`` runs the same command as the ``dumpwatch`` console script.
"""
