"""The distributed mode (docs/scale.md): crawl workers on many machines, one control node, over Redis.

The single-machine mode (a daemon that starts each crawl as a local child process) stays the
default; this package is used only when ``[cluster] redis_url`` or ``--redis URL`` is given.

- :mod:`crawler.cluster.connect`: the ``[cluster]`` table and the Redis client (password or ACL
  user from the environment or a file, ``rediss://`` for TLS);
- :mod:`crawler.cluster.redis_json`: the JSON serializer of every request put in Redis (never pickle);
- :mod:`crawler.cluster.queue`: scrapy-redis's priority queue held to that serializer;
- :mod:`crawler.cluster.inflight`: the reliable queue: a popped request stays in its worker's
  in-flight hash until its result is stored, and a dead worker's requests are re-queued, once;
- :mod:`crawler.cluster.findings`: the findings stream, written by workers (``XADD``) and read by
  the control node (``XREADGROUP``, ``XACK``, ``XAUTOCLAIM``), which records each finding in SQLite;
- :mod:`crawler.cluster.worker`: a long-lived Scrapy crawl fed by Redis that sends findings only;
- :mod:`crawler.cluster.control`: the control node's side of a crawl: a due source's start requests
  pushed to Redis;
- :mod:`crawler.cluster.workers`: each worker crawl's heartbeat (with its requests in progress),
  and who is silent;
- :mod:`crawler.cluster.seen`: the seen-set of a source shared by its workers, with its expiry;
- :mod:`crawler.cluster.politeness`: a source's delay and concurrency per domain across its workers;
- :mod:`crawler.cluster.runs`: crawl runs opened by the push, counted by the workers, closed by the
  control node;
- :mod:`crawler.cluster.indexes`: the key id and index identities the control node publishes, and
  the check a worker makes of its own before it scans anything;
- :mod:`crawler.cluster.reload`: a running worker's periodic check: it reloads a synced copy of the
  index and pauses while its copy is stale;
- :mod:`crawler.cluster.metrics`: the Prometheus metrics of a worker's crawls and of the control node.
"""
