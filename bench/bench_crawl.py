"""Crawler benchmark: 5,000 local pages crawled with the full pipeline vs a bare spider, same run.

A local server (127.0.0.1, stdlib, threaded) serves a JSON listing of N pastes, 95 % noise and 5 %
synthetic reposts, all distinct. Two crawls of the same pages, alternated ``--rounds`` times:

- *bare*: a spider that reads the listing and downloads every page, and does nothing else
  (``scrapy runspider`` on :class:`BareSpider` below);
- *full*: ``scrapy crawl paste-api -a source=bench``, the real spider with the seen-set, the
  extraction + matchers pipeline (one enrolled synthetic leak of 5,000 people), the store and the
  alerts outbox, on a fresh copy of the home each round.

Both with the same concurrency (16), no delay, no AutoThrottle, no robots.txt. Reported: pages/s of
each (Scrapy's own elapsed time of the crawl, start-up excluded) and the ratio full/bare; the best
round of each is kept. The noise pages are small pastes (about 1 KB) by default; with ``--sizes
realistic`` they are what paste sites and forums serve: 5 KB posts, one page in seven a 200 KB paste
(code, logs, a few CSV lines, chatter) and one in a thousand (at least two) a 20 MB file (a CSV of
product rows, or another breach's customer export). The full crawl's CPU is also given split (its
stats, ``crawler.pipelines.cpu_stats``): its reactor process, its scan workers, the engine's calls;
``--engine free`` runs it with an engine that costs nothing (``bench/freeengine.py``), the cost of
the crawl outside the engine; ``--cprofile`` and ``--py-spy`` profile it. Run from the repo root::

    .venv/bin/python bench/bench_crawl.py --pages 5000 --rounds 2
    .venv/bin/python bench/bench_crawl.py --pages 1000 --sizes realistic --rounds 3
    .venv/bin/python bench/bench_crawl.py --pages 1000 --sizes realistic --rounds 3 --engine free
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import scrapy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONCURRENCY = 16


class BareSpider(scrapy.Spider):
    """Downloads every page of the listing; yields nothing (the baseline)."""

    name = "bare"

    def __init__(self, listing: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.start_urls = [listing]

    def parse(self, response: Any, **kwargs: Any) -> Any:
        for item in json.loads(response.body):
            yield scrapy.Request(item["scrape_url"], callback=self.parse_page)

    def parse_page(self, response: Any) -> None:
        return None


POST_BYTES, PASTE_BYTES, FILE_BYTES = 5_000, 200_000, 20_000_000


def _filled(first: str, lines: list[str], size: int, offset: int) -> str:
    """``first``, then ``lines`` in turn (from ``offset``) until ``size`` characters."""
    parts, n, j = [first], len(first), offset
    while n < size:
        parts.append(lines[j % len(lines)])
        n += len(parts[-1])
        j += 1
    return "".join(parts)


def big_files() -> list[str]:
    """The bodies of the 20 MB files of ``--sizes realistic``, without their first row (made distinct
    per page): a CSV of product rows (no identifier) and another breach's customer export (names,
    French mobiles and shop emails of people not in the leak)."""
    from dumpwatch.devkit import synth

    rows = [f"P{k:07d},lampe de bureau {k % 97},Luminaire,{k % 500}.{k % 100:02d},{k % 300},{k % 40}.{k % 10},"
            f"acier noir pour salon et jardin lot de {k % 12}\n" for k in range(200_000)]
    products = _filled("", rows, FILE_BYTES, 0)
    strangers = synth.customers(10**9, seed=3)
    customers = _filled("", [",".join(next(strangers)) + "\n" for _ in range(300_000)], FILE_BYTES, 0)
    return [products, customers]


def make_pages(n: int, people: list[dict[str, str]], sizes: str = "small") -> dict[str, bytes]:
    """``n`` pages, 5 % reposts of 20 people; the rest noise: small pastes (``sizes="small"``), or
    (``"realistic"``) 5 KB posts, one page in seven a 200 KB paste, and one in a thousand (at least
    two) a 20 MB file."""
    from dumpwatch.devkit import synth

    noise_lines = [
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
        "2021-02-24 10:12:01 ERROR [worker-3] connection reset by peer (retry 2/5)\n",
        "sku;designation;prix;stock\nA-1001;Vis inox 4x40;0.12;5000\nB-2001;Perceuse 18V;89.90;14\n",
        "Le far breton : 250 g de farine, 200 g de sucre, 4 oeufs, 1 l de lait, pruneaux.\n",
        "quelqu'un a le lien de la suite ? merci d'avance, le premier est mort\n",
    ]
    pages: dict[str, bytes] = {}
    files: list[str] | None = None
    big = 0
    fmts = ("csv", "json", "kv", "chatter")
    for i in range(n):
        if i % 20 == 7:  # 5 % reposts, 20 people each, in turn in four shapes
            k = (i // 20) % (len(people) // 20)  # distinct people per repost while there are enough
            header, rows = synth.transform(people[k * 20:(k + 1) * 20], seed=i)
            body = synth.render(header, rows, fmts[(i // 20) % 4], seed=i)
        elif sizes == "small":
            body = f"paste {i}\n" + "".join(noise_lines[(i + j) % 5] for j in range(12))
        elif i % 1000 == 500 or (i == n - 1 and n < 2000):
            if files is None:
                files = big_files()
            kind = big % 2
            big += 1
            header = ("sku,designation,categorie,prix_ht,stock,poids_kg,description\n" if kind == 0
                      else ",".join(synth.CUSTOMER_COLUMNS) + "\n")
            first = (f"X{i:07d},lot {i},Maison,1.00,1,1.0,premier\n" if kind == 0
                     else f"X{i:08d},Martin,Paul,,,Paris,1.00\n")
            body = header + first + files[kind]
        elif i % 7 == 3:
            body = _filled(f"paste {i}\n", noise_lines, PASTE_BYTES, i)
        else:
            body = _filled(f"post {i}\n", noise_lines, POST_BYTES, i)
        pages[f"/raw/p{i:05d}"] = body.encode("utf-8")
    return pages


def serve(pages: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    listing_cache: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/api/recent.json":
                base = f"http://{self.headers['Host']}"
                body = listing_cache.get(base)
                if body is None:
                    body = json.dumps([{"key": p.rsplit("/", 1)[1], "date": "2021-02-24", "size": len(b),
                                        "scrape_url": base + p} for p, b in pages.items()]).encode()
                    listing_cache[base] = body
                ctype = "application/json"
            else:
                body = pages.get(self.path, b"")
                ctype = "text/plain; charset=utf-8"
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


COMMON = ["-s", "LOG_LEVEL=INFO", "-s", f"CONCURRENT_REQUESTS={CONCURRENCY}", "-s", "DOWNLOAD_DELAY=0",
          "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "ROBOTSTXT_OBEY=False",
          "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={CONCURRENCY}", "-s", "CLOSESPIDER_PAGECOUNT=0"]


# ``python -c PROFILED FILE crawl …``: ``scrapy crawl …`` under cProfile with the main thread's CPU
# clock (the reactor thread's own work; the threads that feed the scan worker are not in it).
PROFILED = (
    "import cProfile, runpy, sys, time\n"
    "out = sys.argv[1]\n"
    "sys.argv = ['scrapy', *sys.argv[2:]]\n"
    "profile = cProfile.Profile(time.thread_time)\n"
    "profile.enable()\n"
    "try:\n"
    "    runpy.run_module('scrapy', run_name='__main__', alter_sys=True)\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "else:\n"
    "    code = 0\n"
    "profile.disable()\n"
    "profile.dump_stats(out)\n"
    "sys.exit(code)\n")


SPLIT = ("crawl_process", "scan_workers", "engine")  # the full crawl's CPU split, from its stats


def run(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + ["-s", f"LOG_FILE={log}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed ({proc.returncode}): {proc.stderr[-2000:]}\n{text[-2000:]}")
    elapsed = float(re.search(r"'elapsed_time_seconds': ([0-9.]+)", text).group(1))
    pages = int(re.search(r"'downloader/response_count': (\d+)", text).group(1))
    out = {"wall": wall, "elapsed": elapsed, "pages": pages, "cpu": cpu}
    # the full crawl says its own split (crawler.pipelines.cpu_stats): the reactor process, the scan workers
    for key in SPLIT:
        found = re.search(rf"'dumpwatch/cpu/{key}_s': ([0-9.]+)", text)
        if found:
            out[key] = float(found.group(1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scan-processes", type=int, default=1, help="DUMPWATCH_SCAN_PROCESSES of the full crawl")
    ap.add_argument("--people", type=int, default=5000, help="enrolled synthetic people (20 per repost page)")
    ap.add_argument("--py-spy", metavar="FILE", help="profile the first full crawl with py-spy (raw format, only "
                    "threads holding the GIL, every process, 100 Hz) into FILE; its times are then not comparable")
    ap.add_argument("--cprofile", metavar="FILE", help="profile the reactor thread of the first full crawl "
                    "with cProfile (thread CPU time) into FILE (pstats), the bare crawl's into FILE.bare")
    ap.add_argument("--engine", choices=("real", "free"), default="real",
                    help="free: the full crawl's worker scans a one-line text instead of each body "
                    "(bench/freeengine.py: the cost of the crawl outside the engine); its findings are then 0")
    ap.add_argument("--full-setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a Scrapy setting for the full crawl only (repeatable), e.g. CONCURRENT_ITEMS=16")
    ap.add_argument("--sizes", choices=("small", "realistic"), default="small",
                    help="noise pages: small pastes (~1 KB), or 5 KB posts, 200 KB pastes and a few 20 MB files")
    args = ap.parse_args()

    from dumpwatch.devkit import synth
    from dumpwatch.store import finding_counts, open_db

    work = Path(tempfile.mkdtemp(prefix="bench-crawl-"))
    try:
        people = synth.generate(args.people, seed=7)
        template_home = work / "enrolled"
        leak = synth.write_csv(people, work / "leak.csv")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
        subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(template_home), "enroll", str(leak),
                        "--leak", "bench", "--lab-column", "laboratoire"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        leak.unlink()
        pages = make_pages(args.pages, people, args.sizes)
        reposts = sum(1 for i in range(args.pages) if i % 20 == 7)
        httpd, base = serve(pages)
        (template_home / "dumpwatch.toml").write_text(
            f'[[sources]]\nname = "bench"\nkind = "paste-api"\nstart_urls = ["{base}/api/recent.json"]\n'
            f'delay = 0\nautothrottle = false\nobey_robots = false\nconcurrency = {CONCURRENCY}\n'
            f'allow_private_networks = true\n'
            f'[crawler]\nmax_requests = {args.pages + 10}\n')
        env["SCRAPY_SETTINGS_MODULE"] = "crawler.settings"
        results: dict[str, list[dict[str, float]]] = {"bare": [], "full": []}
        findings = 0
        engine = ([] if args.engine == "real" else
                  ["-s", 'ITEM_PIPELINES={"bench.freeengine.FreeEnginePipeline": 300}'])
        for r in range(args.rounds):
            bare_launch = (["-c", PROFILED, str(Path(args.cprofile).resolve()) + ".bare"] if args.cprofile and r == 0
                           else ["-m", "scrapy"])
            bare = run([sys.executable, *bare_launch, "runspider", str(Path(__file__).resolve()),
                        "-a", f"listing={base}/api/recent.json", *COMMON], env, work / f"bare-{r}.log")
            results["bare"].append(bare)
            home = work / f"home-{r}"
            shutil.copytree(template_home, home)
            spy = ([str(Path(sys.executable).parent / "py-spy"), "record", "-r", "100", "--gil", "--subprocesses",
                    "-f", "raw", "-o", args.py_spy, "--"] if args.py_spy and r == 0 else [])
            launch = (["-c", PROFILED, str(Path(args.cprofile).resolve())] if args.cprofile and r == 0
                      else ["-m", "scrapy"])
            full = run([*spy, sys.executable, *launch, "crawl", "paste-api", "-a", "source=bench", *COMMON,
                        "-s", f"DUMPWATCH_SCAN_PROCESSES={args.scan_processes}", *engine,
                        *[a for setting in args.full_setting for a in ("-s", setting)]],
                       {**env, "DUMPWATCH_HOME": str(home)}, work / f"full-{r}.log")
            results["full"].append(full)
            findings = finding_counts(open_db(home / "dumpwatch.db")).get("repost", 0)
            print(f"round {r + 1}: bare {bare['pages']} pages in {bare['elapsed']:.2f} s, "
                  f"full {full['pages']} pages in {full['elapsed']:.2f} s, {findings} repost findings", file=sys.stderr)
        httpd.shutdown()
        best = {k: min(v, key=lambda x: x["elapsed"]) for k, v in results.items()}
        out = {
            "pages": args.pages,
            "sizes": args.sizes,
            "megabytes": round(sum(map(len, pages.values())) / 1e6, 1),
            "scan_processes": args.scan_processes,
            "engine": args.engine,
            "full_settings": args.full_setting,
            "reposts": reposts,
            "repost_findings": findings,
            "bare_pages_per_s": round(best["bare"]["pages"] / best["bare"]["elapsed"], 1),
            "full_pages_per_s": round(best["full"]["pages"] / best["full"]["elapsed"], 1),
            "bare_s": round(best["bare"]["elapsed"], 2),
            "full_s": round(best["full"]["elapsed"], 2),
            "ratio_full_over_bare": round(best["full"]["elapsed"] / best["bare"]["elapsed"], 2),
            "bare_wall_s": round(best["bare"]["wall"], 2),
            "full_wall_s": round(best["full"]["wall"], 2),
            "bare_crawler_cpu_s": round(best["bare"]["cpu"], 2),
            "full_crawler_cpu_s": round(best["full"]["cpu"], 2),
            # the full crawl's CPU, split: its reactor process (Scrapy, the pipeline, the seen-set,
            # the store, sending bodies) and its scan workers (start-up, index loading, the engine)
            "full_reactor_cpu_s": best["full"].get("crawl_process"),
            "full_workers_cpu_s": best["full"].get("scan_workers"),
            "full_engine_cpu_s": best["full"].get("engine"),  # the engine's calls only, in the workers
            "ratio_cpu_full_over_bare": round(best["full"]["cpu"] / best["bare"]["cpu"], 2),
            "ratio_cpu_reactor_over_bare": (round(best["full"]["crawl_process"] / best["bare"]["cpu"], 2)
                                            if "crawl_process" in best["full"] else None),
            "rounds": {k: [{m: round(x[m], 2) for m in ("elapsed", "wall", "cpu", *SPLIT) if m in x} for x in v]
                       for k, v in results.items()},
        }
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
