"""Sizing measurements of the distributed mode (docs/scale.md, "Sizing"): what one figure of the
estimate (500 sources, 10 workers, a 33 M-record leak) is extrapolated from.

Three parts, each printed as one JSON object on stdout (``--part`` runs one):

- ``index``: for each ``--rows`` (default 100k, 300k, 1M synthetic patients), ``dumpwatch synth
  leak`` then ``dumpwatch enroll`` under ``/usr/bin/time -v`` (wall, peak RSS of the enrollment),
  the index directory's size on disk (``du``), then the peak RSS of ``dumpwatch scan`` of a
  200-row repost with that index (``/usr/bin/time -v``) and of a ``dumpwatch worker`` that has
  scanned a repost with it (``VmHWM`` of /proc). The cleartext synthetic leak is deleted after
  enrollment.
- ``worker``: the resident memory (``VmRSS``, the worker and its children) of a ``dumpwatch worker``
  with 1, 10 and 50 sources configured (one long-lived Scrapy crawl per source): idle, once its
  heartbeats are all written, then active, once each crawl has fetched and scanned a page (each
  crawl starts its own scan process, ``DUMPWATCH_SCAN_PROCESSES``, at its first document; measured
  once the worker has its N scan processes, plus 5 s).
- ``redis``: Redis memory per stored item: ``INFO memory`` ``used_memory`` before and after
  writing many items of each kind the cluster keeps (queued requests by scrapy-redis's queue, findings
  stream entries by :func:`crawler.cluster.findings.publish`, worker heartbeats, and a seen-set
  entry: a sorted set of 40-hex fingerprints scored by expiry, the shape a shared seen-set would
  have: ``crawler/cluster/seen.py`` is not on main), divided by their number; and ``MEMORY USAGE``
  of one key of each.

Run from the repo root (redis-server from the Debian package must be installed)::

    .venv/bin/python bench/bench_sizing.py                       # all parts
    .venv/bin/python bench/bench_sizing.py --part index --rows 100000 300000 1000000
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import (  # noqa: E402  (bench/ is not a package)
    WorkerProc,
    env,
    paste_source,
    write_home_config,
)


def timed(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, user+sys seconds and peak RSS (MiB)."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-3000:]}")
    err = proc.stderr

    def num(label: str) -> float:
        return float(re.search(rf"{re.escape(label)}: ([0-9.:]+)", err).group(1).split(":")[-1])

    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", err).group(1).split(":")
    seconds = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
    return {"wall_s": round(seconds, 1), "cpu_s": round(num("User time (seconds)") + num("System time (seconds)"), 1),
            "peak_rss_mib": round(num("Maximum resident set size (kbytes)") / 1024, 1)}


def du_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def part_index(work: Path, sizes: list[int], redis_url: str | None) -> list[dict]:
    dw = [sys.executable, "-m", "dumpwatch.cli"]
    out = []
    for rows in sizes:
        home = work / f"home-{rows}"
        leak = work / f"leak-{rows}.csv"
        subprocess.run([*dw, "synth", "leak", str(leak), "--rows", str(rows)], cwd=ROOT, env=env(), check=True,
                       capture_output=True, timeout=3600)
        leak_mib = round(leak.stat().st_size / 2**20, 1)
        enroll = timed([*dw, "--home", str(home), "enroll", str(leak), "--leak", "sizing", "--lab-column",
                        "laboratoire"])
        leak.unlink()  # the cleartext (synthetic) file is not kept
        copy = work / f"repost-{rows}.csv"
        subprocess.run([*dw, "synth", "repost", str(copy), "--rows", "200", "--skip", str(rows // 2)], cwd=ROOT,
                       env=env(), check=True, capture_output=True, timeout=600)
        scan = timed([*dw, "--home", str(home), "scan", str(copy), "--json"])
        row = {"rows": rows, "leak_csv_mib": leak_mib, "index_mib": du_mib(home / "index"),
               "index_bytes_per_row": round(du_mib(home / "index") * 2**20 / rows, 1),
               "enroll": enroll, "scan_200_rows": scan}
        if redis_url:
            row["worker_after_scan"] = worker_scanning(home, copy, redis_url, work / f"site-{rows}")
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        shutil.rmtree(home, ignore_errors=True)
    return out


def worker_scanning(home: Path, copy: Path, redis_url: str, workdir: Path) -> dict[str, float]:
    """A worker of one source that fetches and scans ``copy`` with ``home``'s index: its VmRSS and VmHWM."""
    from bench_cluster import Site, control, redis_client, wait

    site = Site({"/raw/copy": copy.read_bytes()}).start()
    try:
        write_home_config(home, paste_source("sizing", site.base))
        r = redis_client(redis_url)
        r.flushall()
        ctl = control(home, redis_url)  # publishes the indexes the worker checks its own against
        workdir.mkdir(parents=True, exist_ok=True)
        w = WorkerProc(home, redis_url, workdir / "worker.out").start()
        try:
            w.wait_ready(r, 1)
            ctl.push("sizing")
            wait(lambda: r.xlen("dumpwatch:findings") >= 1, 300, "the worker's finding", w)
            return w.memory()
        finally:
            w.stop()
    finally:
        site.stop()


def part_worker(work: Path, counts: list[int], redis_url: str) -> list[dict]:
    """RSS of an idle worker with N sources (each a long-lived crawl), once all heartbeats are written."""
    from bench_cluster import Site, control, enrolled_home, redis_client, wait

    template = enrolled_home(work, 3000)
    # one site per source, each page its own bytes: a worker scans a content once whatever the source
    sites = [Site({"/raw/x": f"page of source {i}\n".encode()}).start() for i in range(max(counts))]
    out = []
    try:
        for n in counts:
            home = work / f"w-{n}"
            shutil.copytree(template, home)
            write_home_config(home, "".join(paste_source(f"s{i:03d}", sites[i].base) for i in range(n)))
            r = redis_client(redis_url)
            r.flushall()
            ctl = control(home, redis_url)  # publishes the indexes the worker checks its own against
            w = WorkerProc(home, redis_url, work / f"w-{n}.out").start()
            try:
                w.wait_ready(r, n, timeout=600)
                time.sleep(3)
                row = {"sources": n, "idle": w.memory()}
                for i in range(n):  # each crawl fetches and scans one page: its scan process is started
                    ctl.push(f"s{i:03d}")
                wait(lambda: sum(1 for v in r.hvals("dumpwatch:workers") if json.loads(v).get("documents")) >= n,
                     900, f"a document scanned by each of {n} crawls", w)
                wait(lambda: w.memory()["processes"] >= n + 2, 900, f"{n} scan processes", w)
                time.sleep(5)  # the last ones started: their imports and the index mapped
                row["active"] = w.memory()
            finally:
                w.stop()
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        for site in sites:
            site.stop()
    return out


def part_redis(redis_url: str, n: int = 10000) -> dict:
    """used_memory per item of each kind, and MEMORY USAGE of one key of each."""
    import hashlib

    from bench_cluster import redis_client
    from crawler.cluster import findings
    from crawler.cluster.control import spider_for
    from crawler.cluster.queue import JsonPriorityQueue
    from crawler.sources import load_crawl_config
    from tests.helpers.alertkit import make_finding

    from dumpwatch.devkit import synth

    r = redis_client(redis_url)
    rb = redis_client(redis_url, text=False)
    out: dict = {"items": n}

    def per_item(fill) -> dict:
        r.flushall()
        time.sleep(0.2)
        before = int(r.info("memory")["used_memory"])
        key = fill()
        after = int(r.info("memory")["used_memory"])
        return {"bytes_per_item": round((after - before) / n, 1), "memory_usage_key": r.memory_usage(key, samples=0),
                "key": key}

    cc = load_crawl_config({"sources": [{"name": "pastes", "kind": "paste-api", "allow_private_networks": True,
                                         "start_urls": ["https://paste.example/api_scraping.php"]}]})
    spider = spider_for(cc.get("pastes"), cc)

    def requests() -> str:
        from scrapy import Request

        q = JsonPriorityQueue(rb, spider, "dumpwatch:requests:pastes")
        for i in range(n):
            url = f"https://paste.example/api_scrape_item.php?i={hashlib.sha1(str(i).encode()).hexdigest()[:8]}"
            q.push(Request(url, callback=spider.parse_item if hasattr(spider, "parse_item") else spider.parse,
                           meta={"dw_seen_key": url, "dw_hops": 0}))
        return q.key

    out["queued_request"] = per_item(requests)
    people = synth.generate(40, seed=5)

    def stream() -> str:
        for i in range(n):
            f = make_finding(people[: 10 + i % 30], url=f"https://paste.example/raw/{i:08d}")
            findings.publish(r, f, source="pastes", url=f.input, first_seen="2026-11-30T18:00:00+00:00",
                             detail={"kind": "paste", "size": f.size, "sha256": f.sha256})
        return findings.STREAM

    out["findings_entry"] = per_item(stream)

    def heartbeats() -> str:
        for i in range(n):
            r.hset("dumpwatch:workers", f"worker-{i % 10:02d}.internal:{100000 + i}:source-{i:04d}", json.dumps(
                {"host": f"worker-{i % 10:02d}.internal", "pid": 100000 + i, "version": "0.1.0",
                 "source": f"source-{i:04d}", "started": "2026-11-30T18:00:00+00:00",
                 "heartbeat": "2026-11-30T18:10:00+00:00", "documents": 123456, "findings_sent": 12,
                 "last_document": "2026-11-30T18:09:58+00:00"}, sort_keys=True))
        return "dumpwatch:workers"

    out["heartbeat"] = per_item(heartbeats)

    def seen() -> str:
        pipe = r.pipeline()
        for i in range(n):
            pipe.zadd("dumpwatch:seen:pastes", {hashlib.sha1(f"u{i}".encode()).hexdigest(): 1764500000 + i})
        pipe.execute()
        return "dumpwatch:seen:pastes"

    out["seen_entry_estimate"] = per_item(seen)
    r.flushall()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["index", "worker", "redis", "all"], default="all")
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--sources", type=int, nargs="+", default=[1, 10, 50])
    args = ap.parse_args()
    from tests.helpers.redissrv import RedisServer

    work = Path(tempfile.mkdtemp(prefix="bench-sizing-"))
    server = RedisServer(work / "redis").start()
    result: dict = {}
    try:
        if args.part in ("redis", "all"):
            result["redis"] = part_redis(server.url)
        if args.part in ("worker", "all"):
            result["worker"] = part_worker(work, args.sources, server.url)
        if args.part in ("index", "all"):
            result["index"] = part_index(work, args.rows, server.url)
        print(json.dumps(result, indent=1))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
