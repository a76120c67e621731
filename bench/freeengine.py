"""``bench_crawl.py --engine free``: the full crawl's pipeline with an engine that costs nothing.

Each document still goes to the scan worker (its bytes cross the pipe, its SHA-256 is taken, the
seen-set and the store are written), but the worker scans a one-line text instead of the body: what
the crawl costs outside the engine, the floor a faster engine tends to. A module of its own that
imports nothing at its top: a ``spawn`` worker imports the module of its initializer, and this one
must cost what the real worker's (``crawler.scanworker``) costs, not Scrapy's imports.
"""

from __future__ import annotations

from typing import Any

FREE_BODY = b"nothing to see here\n"


class FreeScanner:
    """A scanner that scans :data:`FREE_BODY` whatever the document (its verdict is ``none``)."""

    def __init__(self, scanner: Any):
        self.scanner = scanner

    def scan_bytes(self, body: bytes, name: str, sha256: str) -> Any:
        return self.scanner.scan_bytes(FREE_BODY, name, sha256=sha256)


def _worker_module() -> Any:
    """Where the scan worker lives: ``crawler.scanworker``, or ``crawler.pipelines`` in revisions
    before it (so that ``--engine free`` also measures an earlier revision, for a comparison)."""
    try:
        from crawler import scanworker
    except ImportError:
        from crawler import pipelines

        return pipelines
    return scanworker


def _free_worker_init(spec: Any) -> None:
    module = _worker_module()
    module._worker_init(spec)
    module._worker_scanner = FreeScanner(module._worker_scanner)


def free_engine_pipeline() -> type:
    """``crawler.pipelines.ScanPipeline`` with a :class:`FreeScanner` in its worker."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from crawler import pipelines

    class FreeScanWorker(_worker_module().ScanWorker):  # type: ignore[misc,name-defined]
        def __init__(self, spec: Any, processes: int):
            super().__init__(spec, processes)
            self.scanner = FreeScanner(self.scanner)

        def _executor(self) -> Any:
            if self.processes <= 0:
                return super()._executor()
            return ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_free_worker_init, initargs=(self.spec,))

    class FreeEnginePipeline(pipelines.ScanPipeline):
        worker_class = FreeScanWorker

        @classmethod
        def from_crawler(cls, crawler: Any) -> Any:
            if hasattr(pipelines.ScanPipeline, "worker_class"):
                return super().from_crawler(crawler)
            # an earlier revision: its from_crawler, with this worker
            from crawler.state import state_of

            state = state_of(crawler)
            threshold = crawler.settings.get("DUMPWATCH_REPOST_THRESHOLD")
            spec = pipelines.scanner_spec(state, int(threshold) if threshold else None)
            return cls(crawler, state, FreeScanWorker(spec, crawler.settings.getint("DUMPWATCH_SCAN_PROCESSES", 1)))

    return FreeEnginePipeline


def __getattr__(name: str) -> Any:  # ITEM_PIPELINES names a class: made on first use, in the crawl process
    if name == "FreeEnginePipeline":
        return free_engine_pipeline()
    raise AttributeError(name)
