"""Helpers of the crawler tests (fixtures are in conftest.py): paths, noise, reposts, config and
crawl runners. Synthetic data only (dumpwatch.devkit.synth)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

from dumpwatch.devkit import synth
from dumpwatch.devkit.localsites import code_block, free_port  # noqa: F401 (re-exported for the tests)

ROOT = Path(__file__).resolve().parents[2]
LEAK = "labos-2021"

# Noise: what paste sites and forums are full of; none of it is a repost.
NOISE = [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(30))\n",
    "sku;designation;prix;stock\nA-1001;Vis inox 4x40;0.12;5000\nA-1002;Cheville 6mm;0.05;12000\n"
    "B-2001;Perceuse 18V;89.90;14\nB-2002;Foret beton 8mm;3.20;230\n",
    "2021-02-24 10:12:01 ERROR [worker-3] connection reset by peer (retry 2/5)\n"
    "2021-02-24 10:12:03 INFO  [worker-3] reconnected to 10.0.0.12:5432\n",
    "Le far breton : 250 g de farine, 200 g de sucre, 4 oeufs, 1 l de lait, pruneaux.\n",
    "quelqu'un a le lien de la suite ? merci d'avance, le premier est mort\n",
]


def repost(people: list[dict[str, str]], fmt: str, seed: int, **changes: object) -> str:
    header, rows = synth.transform(people, seed=seed, **changes)  # type: ignore[arg-type]
    return synth.render(header, rows, fmt, seed=seed)


def compressed(text: str, how: str, member: str = "export/base.csv") -> bytes:
    data = text.encode("utf-8")
    if how == "gzip":
        return gzip.compress(data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("LISEZMOI.txt", "base complete\n")
        zf.writestr(member, data)
    return buf.getvalue()


TEST_CRAWLER = """
[crawler]
delay = 0
autothrottle = false
timeout = 1
retry_times = 1
retry_backoff = 0.05
retry_after_max = 3
failing_runs = 2
"""


# The test sites listen on 127.0.0.1: the network policy's opt-in (docs/security.md).
TEST_NETWORK = """
[network]
allow_private_networks = true
"""


def write_config(home, sources: str, crawler: str = TEST_CRAWLER, network: str = TEST_NETWORK) -> Path:
    path = home.root / "dumpwatch.toml"
    path.write_text(network + "\n" + crawler + "\n" + sources)
    return path


def run_crawl(home, name: str, scan_processes: int = 0, **kw):
    """One crawl of a configured source, in a child process, as `dumpwatch crawl` runs it.

    The engine runs in a thread of the crawl (``scan_processes=0``) unless a test asks for the
    default worker process: spawning one costs about a second per crawl.
    """
    from crawler.run import crawl_source
    from crawler.sources import load_crawl_config

    config = home.load_config()
    cc = load_crawl_config(config)
    return crawl_source(cc.get(name), home=home, timeout=kw.pop("timeout", 90),
                        settings={"DUMPWATCH_TEST_MODE": "True", "DUMPWATCH_SCAN_PROCESSES": scan_processes,
                                  **kw.pop("settings", {})},
                        failing_runs=cc.defaults.failing_runs, config=config, **kw)


def findings_of(home, source: str | None = None, verdict: str | None = "repost") -> list[dict]:
    from dumpwatch import store

    db = store.open_db(home.db_path)
    where, params = [], []
    if source:
        where.append("source = ?")
        params.append(source)
    if verdict:
        where.append("verdict = ?")
        params.append(verdict)
    return store.findings(db, where=" AND ".join(where) or None, params=params)
