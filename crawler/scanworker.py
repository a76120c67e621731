"""The scan worker: the engine run off the crawl's reactor, in worker processes (or one thread).

:class:`ScanWorker` hands each document to ``processes`` worker processes (``DUMPWATCH_SCAN_PROCESSES``,
default 1), so the engine matches on another core while Scrapy downloads; ``processes = 0`` runs it
in one thread of the crawl process. What a worker process runs is here, in a module that imports
nothing but the engine (and the error tree) so that a worker starts light: a ``spawn`` child
imports the module of the function it runs and of its arguments, not the crawler's Scrapy side.

Costs outside the engine, measured by ``bench/bench_crawl.py`` (docs/benchmarks.md, "Pipeline
outside the engine"): a worker's start-up (an interpreter, the engine's imports, the index mapped),
paid once per crawl and overlapped with the first downloads (:meth:`ScanWorker.start`), and each
body pickled once through the pool's pipe. Each scan's CPU time, taken in the worker around the
engine's call only, comes back with its finding (:attr:`ScanWorker.engine_cpu`): the crawl says
how much of its CPU the engine took (``dumpwatch/cpu/engine_s``).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dumpwatch.errors import DumpwatchError, ScannerUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScannerSpec:
    """How to build the engine (picklable: a scan worker process builds its own from it)."""

    index_dir: Path
    key: bytes = field(repr=False)
    repost_threshold: int
    limits: Any

    def build(self) -> Any:
        from matchers.scan import Scanner

        return Scanner.from_index_dir(self.index_dir, self.key, repost_threshold=self.repost_threshold,
                                      limits=self.limits)


def load_scanner(spec: ScannerSpec) -> Any:
    try:
        return spec.build()
    except DumpwatchError:
        raise
    except Exception as exc:  # an engine error (matchers.errors) or a bug: said as unavailable
        raise ScannerUnavailable(f"cannot load the fingerprint index in {spec.index_dir}: {exc}; "
                                 "enroll a leak first: dumpwatch enroll FILE --leak NAME") from exc


# -- in the worker process ---------------------------------------------------------------------------

_worker_scanner: Any = None


def _worker_init(spec: ScannerSpec) -> None:
    global _worker_scanner
    _worker_scanner = spec.build()


def _worker_scan(body: bytes, name: str, sha256: str) -> tuple[Any, float]:
    """The finding of ``body`` and the worker's CPU seconds for it (the engine's call only)."""
    started = time.process_time()
    finding = _worker_scanner.scan_bytes(body, name, sha256=sha256)
    return finding, time.process_time() - started


def _worker_ready() -> None:
    """Nothing: submitted once per worker process so that it starts now (see :meth:`ScanWorker.start`)."""


# -- in the crawl process ----------------------------------------------------------------------------

class ScanWorker:
    """Runs the engine off the reactor: in ``processes`` worker processes (default 1), so matching
    runs on another core while Scrapy downloads, or in one thread when ``processes = 0``.

    A worker that dies (a crash on one document) is replaced; that document is reported as an error.
    """

    def __init__(self, spec: ScannerSpec, processes: int):
        self.spec = spec
        self.processes = processes
        self.scanner = load_scanner(spec)  # errors surface here, with a clear message, before crawling
        self.executor: Executor = self._executor()
        self.engine_cpu = 0.0  # CPU seconds the engine took, summed over the scans that returned

    def _executor(self) -> Executor:
        if self.processes <= 0:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="dumpwatch-scan")
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(self.spec,))

    def start(self) -> None:
        """Start the worker processes now rather than at the first document (``concurrent.futures``
        starts one at a task when none is idle): their start-up overlaps the first downloads, and
        the first document is scanned as soon as it comes. A worker that fails to start breaks the
        pool; the first scan then says so (and a new pool is made)."""
        if isinstance(self.executor, ProcessPoolExecutor):
            for _ in range(self.processes):
                self.executor.submit(_worker_ready)

    def _scan_here(self, body: bytes, name: str, sha256: str) -> tuple[Any, float]:
        started = time.thread_time()
        finding = self.scanner.scan_bytes(body, name, sha256=sha256)
        return finding, time.thread_time() - started

    async def scan(self, body: bytes, name: str, sha256: str) -> Any:
        """The engine's finding for ``body``, whose SHA-256 the caller computed (not hashed again)."""
        import asyncio  # here: a worker process never needs it (0.08 s of its start-up)

        loop = asyncio.get_running_loop()
        if self.processes <= 0:
            finding, cpu = await loop.run_in_executor(self.executor, self._scan_here, body, name, sha256)
        else:
            try:
                finding, cpu = await loop.run_in_executor(self.executor, _worker_scan, body, name, sha256)
            except BrokenProcessPool:
                log.error("the scan worker died while scanning %s: starting a new one", name)
                self.executor.shutdown(wait=False, cancel_futures=True)
                self.executor = self._executor()
                self.start()
                raise
        self.engine_cpu += cpu
        return finding

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
