"""Cluster benchmark (issue 12): pages/s and CPU with one and with two `dumpwatch worker` processes,
and the latency a paste takes to become a finding, control node vs the single-machine daemon.

``--domains N`` local sites (:class:`dumpwatch.devkit.localsites.SiteServer`) on N loopback
addresses, 127.0.0.1 … 127.0.0.N (distinct domains: the politeness slot shared by the workers is
per source and host), each one source with a paste-API listing; ``--pages`` pastes of realistic
sizes (noise of 1 to 8 KiB; 5 % synthetic reposts of 20 people of the enrolled leak, in four
shapes), all distinct, page i on site i mod N. The default, 4 domains, is the realistic case (a
deployment watches hundreds of sources on many domains); ``--domains 1`` puts every page on one
domain, whose shared slot (``concurrency`` 16 for all workers together) caps them.
A real ``redis-server`` (persistence off).

**Throughput.** Per round: a fresh Redis, fresh worker homes (copies of one enrolled home, so each
worker's seen-set is empty), K ``dumpwatch worker`` processes started and ready (their heartbeats
are in Redis and their process trees, scan processes included, use less than 0.1 s of CPU in 1 s),
then the control node's push of each source's start request (:class:`dumpwatch.daemon.
cluster.Control`, as the crawl job does it). Timed from the worker's fetch of the listing (an idle
worker notices a push at its engine's next idle check, up to 5 s later: reported apart as
``from_push_s``) to the moment the site has served every paste and the findings stream holds every
repost; CPU is user+sys of the worker processes and their children (the scan processes), from
/proc, from the push to that moment, also apart for the Scrapy process alone (``…_crawl``: the
rest is the scan processes). K = 1 and K = 2 alternate (1, 2, then 2, 1, …),
``--rounds`` times each; the best round of each is kept; reported: pages/s of each, the ratio
two/one and its ceiling (the machine's cores ÷ the cores one worker used: one worker's crawl and
scan processes already run in parallel), the CPU seconds and CPU per page, the cores used
(CPU ÷ wall), the load average at the start and end of each round, and the commands Redis ran
per page (``INFO commandstats``, reset at the push: each Lua call counts once as ``evalsha`` and
once per command it runs inside).
``--profile DIR`` records each worker with py-spy (collapsed stacks, one file per worker per round). Then the control node records the findings
(:meth:`Control.consume`): every repost once, checked.

**Latency.** The same source with a short listing and the same schedule interval (``--interval``)
in both modes: ``dumpwatch daemon`` (single machine: each run a child crawl process) and
``dumpwatch daemon --redis URL`` with one ``dumpwatch worker``. A new repost is added to the
listing; measured: from its appearance to its row in the control node's SQLite (``appear``), and
from the first listing fetch that included it to that row (``listed``: the pipeline alone, without the
wait for the next scheduled run). Three trials per mode; best and worst reported.

The machine (2 cores) may be shared: wall figures move with its load, CPU figures much less.
Run from the repo root::

    .venv/bin/python bench/bench_cluster.py                 # 2000 pages on 4 domains, 3 rounds, latency 3 trials
    .venv/bin/python bench/bench_cluster.py --domains 4 --domains 1 --skip latency   # both cases
    .venv/bin/python bench/bench_cluster.py --quick         # 300 pages, 1 round, 1 trial
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONCURRENCY = 16
SOURCE = "bench"
NOISE = ["def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
         "2021-02-24 10:12:01 ERROR [worker-3] connection reset by peer (retry 2/5)\n",
         "sku;designation;prix;stock\nA-1001;Vis inox 4x40;0.12;5000\nB-2001;Perceuse 18V;89.90;14\n",
         "Le far breton : 250 g de farine, 200 g de sucre, 4 oeufs, 1 l de lait, pruneaux.\n",
         "quelqu'un a le lien de la suite ? merci d'avance, le premier est mort\n"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}


def wait(predicate: Callable[[], Any], timeout: float, what: str, *procs: Any) -> None:
    """Poll ``predicate`` until true, at most ``timeout`` seconds; fail if a watched process died."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            if p.proc.poll() is not None:
                raise SystemExit(f"{p.name} exited ({p.proc.returncode}) waiting for {what}:\n{p.tail()}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}\n"
                             + "\n".join(p.tail() for p in procs))
        time.sleep(0.1)


def redis_client(url: str, text: bool = True) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=text)


# -- the enrolled home, the site, the configuration ------------------------------------------------

def enrolled_home(work: Path, people_n: int) -> Path:
    """A home with ``people_n`` synthetic people enrolled as leak ``bench`` (the cleartext file deleted)."""
    from dumpwatch.devkit import synth

    home = work / "enrolled"
    if not (home / "index").exists():
        leak = synth.write_csv(synth.generate(people_n, seed=7), work / "leak.csv")
        subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "enroll", str(leak), "--leak",
                        "bench", "--lab-column", "laboratoire"], cwd=ROOT, env=env(), check=True, capture_output=True)
        leak.unlink()
    return home


def make_pages(n: int, people: list[dict[str, str]], prefix: str = "p") -> tuple[dict[str, bytes], set[str]]:
    """``n`` distinct pastes (noise of 1-8 KiB, every 20th a repost of 20 people); the repost paths."""
    from dumpwatch.devkit import synth

    pages, reposts = {}, set()
    for i in range(n):
        path = f"/raw/{prefix}{i:05d}"
        if i % 20 == 7:
            k = (i // 20) % (len(people) // 20)
            header, rows = synth.transform(people[k * 20:(k + 1) * 20], seed=i)
            body = synth.render(header, rows, ("csv", "json", "kv", "chatter")[(i // 20) % 4], seed=i)
            reposts.add(path)
        else:
            lines = 16 + (i * 37) % 100  # about 1 to 8 KiB
            body = f"paste {i}\n" + "".join(NOISE[(i + j) % 5] for j in range(lines))
        pages[path] = body.encode("utf-8")
    return pages, reposts


class Site:
    """A SiteServer with a paste-API listing (``/api/recent.json``) of the pastes it holds."""

    def __init__(self, pages: dict[str, bytes], host: str = "127.0.0.1"):
        from dumpwatch.devkit.localsites import SiteServer

        self.server = SiteServer(host)
        self.base = self.server.base
        self.pages: dict[str, bytes] = {}
        for path, body in pages.items():
            self.add(path, body, relist=False)
        self.relist()

    def start(self) -> "Site":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def add(self, path: str, body: bytes, relist: bool = True) -> None:
        self.pages[path] = body
        self.server.add(path, body, headers={"Content-Type": "text/plain; charset=utf-8"})
        if relist:
            self.relist()

    def relist(self) -> None:
        items = [{"key": p.rsplit("/", 1)[1], "date": "2021-02-24", "size": len(b), "scrape_url": self.base + p}
                 for p, b in reversed(list(self.pages.items()))]
        self.server.add("/api/recent.json", json.dumps(items), headers={"Content-Type": "application/json"})

    def served(self, prefix: str = "/raw/") -> set[str]:
        return {p for p in self.server.paths() if p.startswith(prefix)}


def paste_source(name: str, base: str, interval: float | None = None) -> str:
    return (f'\n[[sources]]\nname = "{name}"\nkind = "paste-api"\nstart_urls = ["{base}/api/recent.json"]\n'
            f'delay = 0\nautothrottle = false\nobey_robots = false\nconcurrency = {CONCURRENCY}\n'
            f'allow_private_networks = true\n' + (f"interval = {interval}\n" if interval else ""))


def write_home_config(home: Path, sources: str, extra: str = "") -> None:
    (home / "dumpwatch.toml").write_text(
        "[network]\nallow_private_networks = true\n\n[crawler]\ndelay = 0\nautothrottle = false\n"
        f"concurrency = {CONCURRENCY}\ntimeout = 20\nretry_times = 1\nmax_requests = 100000\n"
        + extra + sources)


# -- processes --------------------------------------------------------------------------------------

def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    """user+sys of the processes (children still running count through their own entries)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total / tick


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Proc:
    name = "process"

    def __init__(self, cmd: list[str], log: Path):
        self.cmd, self.log = cmd, log
        self.proc: Any = None

    def start(self) -> "Proc":
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env(), stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def tail(self) -> str:
        return f"--- {self.name} ---\n" + (self.log.read_text(errors="replace")[-2500:] if self.log.exists() else "")

    def cpu(self) -> float:
        return cpu_seconds(tree(self.proc.pid))

    def memory(self) -> dict[str, float]:
        """MiB: the main process's VmRSS and VmHWM (peak), and the VmRSS of it with its children, split
        into anonymous memory and mapped files (the memory-mapped index, shared through the page cache)."""
        pids = tree(self.proc.pid)

        def total(field: str) -> float:
            return round(sum(status_kib(p, field) for p in pids) / 1024, 1)

        return {"rss_mib": round(status_kib(self.proc.pid, "VmRSS") / 1024, 1),
                "peak_rss_mib": round(status_kib(self.proc.pid, "VmHWM") / 1024, 1),
                "tree_rss_mib": total("VmRSS"), "tree_anon_mib": total("RssAnon"), "tree_file_mib": total("RssFile"),
                "processes": len(pids)}

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class WorkerProc(Proc):
    name = "worker"

    def wait_quiet(self, timeout: float = 180) -> None:
        """Until the worker's process tree uses less than 0.1 s of CPU in 1 s (started, index loaded)."""
        last = [self.cpu()]

        def quiet() -> bool:
            time.sleep(0.9)
            now = self.cpu()
            done = now - last[0] < 0.1
            last[0] = now
            return done

        wait(quiet, timeout, "the worker to settle", self)

    def __init__(self, home: Path, redis_url: str, log: Path):
        super().__init__([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "worker", "--redis",
                          redis_url], log)
        self.home = home

    def wait_ready(self, r: Any, crawls: int, timeout: float = 180) -> None:
        """Until this worker's crawls have all written a heartbeat."""
        wait(lambda: sum(1 for k in r.hkeys("dumpwatch:workers") if f":{self.proc.pid}:" in k) >= crawls,
             timeout, "the worker's heartbeats", self)


def control(home: Path, redis_url: str) -> Any:
    """The control node's Control (as the daemon builds it), already connected (indexes published)."""
    from crawler.cluster.connect import cluster_settings
    from crawler.sources import load_crawl_config
    from dumpwatch.daemon.cluster import Control
    from dumpwatch.home import Home

    h = Home.resolve(home)
    config = h.load_config()
    c = Control(h, config, load_crawl_config(config), cluster_settings(config, redis_url))
    c.redis()
    return c


def push(home: Path, redis_url: str, sources: list[str]) -> None:
    c = control(home, redis_url)
    for name in sources:
        c.push(name)


# -- throughput ---------------------------------------------------------------------------------------

def site_hosts(domains: int) -> list[str]:
    """One loopback address per domain (127.0.0.1, 127.0.0.2, …): the politeness slot keys by host."""
    if not 1 <= domains <= 250:
        raise SystemExit("--domains: 1 to 250")
    return [f"127.0.0.{k + 1}" for k in range(domains)]


def source_names(domains: int) -> list[str]:
    return [SOURCE] if domains == 1 else [f"{SOURCE}-{k}" for k in range(domains)]


def sources_config(sites: list[Site]) -> str:
    return "".join(paste_source(name, site.base) for name, site in zip(source_names(len(sites)), sites))


def profile(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` and its scan processes until stopped (SIGINT), a flame graph in ``out``."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "100", "--nonblocking",
                             "--format", "raw", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def redis_calls(r: Any) -> dict[str, int]:
    """Commands Redis ran since the last ``CONFIG RESETSTAT``, by command (scripts count as one call
    each, ``evalsha``; the commands they run inside count too, as redis.call)."""
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()
            if k not in ("cmdstat_info", "cmdstat_config|resetstat")}


def throughput_round(work: Path, template: Path, sites: list[Site], reposts: set[str], redis_url: str, k: int,
                     tag: str, profile_dir: Path | None = None) -> dict[str, Any]:
    r = redis_client(redis_url)
    r.flushall()
    for site in sites:
        site.server.clear_log()
    sources = source_names(len(sites))
    ctl_home = work / f"control-{tag}"
    shutil.copytree(template, ctl_home)
    write_home_config(ctl_home, sources_config(sites))
    ctl = control(ctl_home, redis_url)
    workers = []
    for i in range(k):
        home = work / f"worker-{tag}-{i}"
        shutil.copytree(template, home)
        write_home_config(home, sources_config(sites))
        workers.append(WorkerProc(home, redis_url, work / f"worker-{tag}-{i}.out").start())
    spies: list[Any] = []
    try:
        for w in workers:
            w.wait_ready(r, len(sources))
        if profile_dir is not None:
            spies = [profile(w.proc.pid, profile_dir / f"worker-{tag}-{i}.txt") for i, w in enumerate(workers)]
        for w in workers:  # its scan processes started and the index loaded: not counted as work per page
            w.wait_quiet()
        r.config_resetstat()
        load0 = os.getloadavg()[0]
        cpu0 = sum(w.cpu() for w in workers)
        main0 = sum(cpu_seconds([w.proc.pid]) for w in workers)
        t0 = time.monotonic()
        for name in sources:
            ctl.push(name)
        want = {(s.base, p) for s in sites for p in s.pages}

        def served() -> set[tuple[str, str]]:
            return {(s.base, p) for s in sites for p in s.served()}

        wait(lambda: served() >= want and r.xlen("dumpwatch:findings") >= len(reposts), 1800,
             f"{len(want)} pages and {len(reposts)} findings", *workers)
        t1 = time.monotonic()
        cpu = sum(w.cpu() for w in workers) - cpu0
        cpu_main = sum(cpu_seconds([w.proc.pid]) for w in workers) - main0
        load1 = os.getloadavg()[0]
        calls = redis_calls(r)
        # from the first listing's fetch: an idle worker notices a push at its engine's next idle check
        first = min(s.server.hits("/api/recent.json")[0] for s in sites)
        elapsed = t1 - first
        rss = [w.memory()["tree_rss_mib"] for w in workers]
    finally:
        for spy in spies:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
        for w in workers:
            w.stop()
    done = ctl.consume()
    pages = len(want)
    fetched = sum(len([p for p in s.server.paths() if p.startswith("/raw/")]) for s in sites)
    return {"workers": k, "domains": len(sites), "pages": pages, "fetches": fetched, "elapsed_s": round(elapsed, 2),
            "from_push_s": round(t1 - t0, 2), "push_to_listing_s": round(first - t0, 2),
            "pages_per_s": round(pages / elapsed, 1), "cpu_s": round(cpu, 1),
            "cpu_ms_per_page": round(1000 * cpu / pages, 2),
            "cpu_ms_per_page_crawl": round(1000 * cpu_main / pages, 2),  # the Scrapy process; the rest: scans
            "cores_used": round(cpu / (t1 - t0), 2),
            "load_start": round(load0, 2), "load_end": round(load1, 2),
            "redis_calls_per_page": round(sum(calls.values()) / pages, 1),
            "redis_calls": dict(sorted(calls.items(), key=lambda kv: -kv[1])), "recorded": done["recorded"],
            "stream_entries": done["read"], "worker_tree_rss_mib": rss}


def throughput(work: Path, template: Path, people: list[dict[str, str]], redis_url: str, pages_n: int,
               rounds: int, domains: int, profile_dir: Path | None = None) -> dict[str, Any]:
    pages, reposts = make_pages(pages_n, people)
    hosts = site_hosts(domains)
    shares: list[dict[str, bytes]] = [{} for _ in hosts]
    for i, (path, body) in enumerate(pages.items()):  # page i on domain i mod N
        shares[i % len(hosts)][path] = body
    sites = [Site(share, host).start() for share, host in zip(shares, hosts)]
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        for rnd in range(rounds):
            for k in ((1, 2) if rnd % 2 == 0 else (2, 1)):  # interleaved, and neither always first
                res = throughput_round(work, template, sites, reposts, redis_url, k, f"{domains}-{rnd}-{k}",
                                       profile_dir)
                if res["recorded"] != len(reposts):
                    raise SystemExit(f"{res['recorded']} findings recorded for {len(reposts)} reposts: {res}")
                runs[k].append(res)
                print(f"round {rnd + 1}, {domains} domain(s), {k} worker(s): {json.dumps(res)}", file=sys.stderr,
                      flush=True)
    finally:
        for site in sites:
            site.stop()
    best = {k: min(v, key=lambda x: x["elapsed_s"]) for k, v in runs.items()}
    keys = ("pages_per_s", "cpu_ms_per_page", "cpu_ms_per_page_crawl", "cores_used", "load_start", "load_end")
    return {"domains": domains, "pages": pages_n, "reposts": len(reposts), "rounds": rounds, "one": best[1],
            "two": best[2], "ratio_two_over_one": round(best[2]["pages_per_s"] / best[1]["pages_per_s"], 2),
            # one worker's crawl and scan processes already run on several cores: at the same CPU per
            # page, two workers can do at most this many times its pages/s on this machine
            "ratio_ceiling": round((os.cpu_count() or 1) / max(best[1]["cores_used"], 0.01), 2),
            "all_rounds": {str(k): [{key: x[key] for key in keys} for x in v] for k, v in runs.items()}}


# -- latency ------------------------------------------------------------------------------------------

def latency_mode(work: Path, template: Path, people: list[dict[str, str]], redis_url: str | None,
                 interval: float, trials: int) -> list[dict[str, float]]:
    """Trials of: a new repost appears; seconds until its finding is in the control node's SQLite."""
    from dumpwatch.devkit import synth

    mode = "cluster" if redis_url else "single"
    pages, _ = make_pages(40, people, prefix=f"{mode[0]}")
    site = Site(pages).start()
    home = work / f"latency-{mode}"
    shutil.copytree(template, home)
    daemon_cfg = "[daemon]\njitter = 0\nscan_processes = 1\ndelivery_interval = 1\n"
    write_home_config(home, paste_source(SOURCE, site.base, interval=interval), daemon_cfg)
    cmd = [sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "daemon"]
    daemon = Proc(cmd + (["--redis", redis_url] if redis_url else []), work / f"daemon-{mode}.out")
    daemon.name = f"daemon ({mode})"
    procs: list[Proc] = [daemon]
    out = []
    try:
        if redis_url:
            r = redis_client(redis_url)
            r.flushall()
        daemon.start()
        if redis_url:
            wait(lambda: r.exists("dumpwatch:indexes"), 120, "the control node's indexes", daemon)
            whome = work / "latency-worker"
            shutil.copytree(template, whome)
            write_home_config(whome, paste_source(SOURCE, site.base, interval=interval))
            w = WorkerProc(whome, redis_url, work / "latency-worker.out").start()
            procs.append(w)
            w.wait_ready(r, 1)
        from dumpwatch.store import findings, open_db

        def found(url: str) -> bool:
            db = open_db(home / "dumpwatch.db")
            try:
                return bool(findings(db, where="url = ?", params=[url]))
            finally:
                db.close()

        # a first run done: every page of the listing fetched once
        wait(lambda: site.served() >= set(site.pages), 300, "the first run", *procs)
        for t in range(trials):
            time.sleep(interval * (0.37 + 0.29 * t))  # not always at the same phase of the schedule
            path = f"/raw/new-{mode}-{t}"
            header, rows = synth.transform(people[400 + 20 * t:420 + 20 * t], seed=900 + t)
            t_appear = time.monotonic()
            site.add(path, synth.render(header, rows, "csv", seed=900 + t).encode())
            wait(lambda: found(site.base + path), 300, f"the finding of {path}", *procs)
            t_found = time.monotonic()
            listed = [h for h in site.server.hits("/api/recent.json") if h >= t_appear]
            out.append({"appear_s": round(t_found - t_appear, 2),
                        "listed_s": round(t_found - listed[0], 2) if listed else None})
            print(f"latency {mode} trial {t + 1}: {json.dumps(out[-1])}", file=sys.stderr, flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        site.stop()
    return out


def latency(work: Path, template: Path, people: list[dict[str, str]], redis_url: str, interval: float,
            trials: int) -> dict[str, Any]:
    res = {}
    for mode, url in (("single", None), ("cluster", redis_url)):
        trials_out = latency_mode(work, template, people, url, interval, trials)
        res[mode] = {"trials": trials_out,
                     "appear_best_s": min(x["appear_s"] for x in trials_out),
                     "appear_worst_s": max(x["appear_s"] for x in trials_out),
                     "listed_best_s": min(x["listed_s"] for x in trials_out if x["listed_s"] is not None),
                     "listed_worst_s": max(x["listed_s"] for x in trials_out if x["listed_s"] is not None)}
    res["interval_s"] = interval
    res["added_best_s"] = round(res["cluster"]["listed_best_s"] - res["single"]["listed_best_s"], 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=2000, help="pastes in all (throughput), spread over the domains")
    ap.add_argument("--domains", type=int, action="append", default=None, metavar="N",
                    help="throughput: the pastes on N sites of distinct domains (127.0.0.1 … 127.0.0.N, one "
                         "source each; politeness holds per domain for all workers). Default 4, the realistic "
                         "case; --domains 1 is every page on one domain (capped by its politeness slot); "
                         "repeat it to measure several cases (--domains 4 --domains 1)")
    ap.add_argument("--profile", metavar="DIR", type=Path,
                    help="py-spy record (raw, collapsed stacks) each worker and its scan processes per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--people", type=int, default=5000, help="enrolled synthetic people (20 per repost)")
    ap.add_argument("--interval", type=float, default=10.0, help="the source's schedule interval (latency)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="300 pages, 1 round, 1 latency trial")
    ap.add_argument("--skip", choices=["throughput", "latency"], action="append", default=[])
    args = ap.parse_args()
    if args.quick:
        args.pages, args.rounds, args.trials = 300, 1, 1
    args.domains = args.domains or [4]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    from dumpwatch.devkit import synth
    from tests.helpers.redissrv import RedisServer

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    server = RedisServer(work / "redis").start()
    try:
        template = enrolled_home(work, args.people)
        people = synth.generate(args.people, seed=7)
        out: dict[str, Any] = {"machine_cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
        if "throughput" not in args.skip:
            out["throughput"] = [throughput(work, template, people, server.url, args.pages, args.rounds, n,
                                            args.profile) for n in args.domains]
        if "latency" not in args.skip:
            out["latency"] = latency(work, template, people, server.url, args.interval, args.trials)
        out["load_after"] = os.getloadavg()[0]
        print(json.dumps(out, indent=1))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
