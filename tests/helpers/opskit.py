"""The operations tests' kit (tests/cluster/test_metrics.py, test_reload.py): a paste archive site,
a `dumpwatch worker` process, and a Prometheus page on 127.0.0.1 scraped and parsed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

from tests.helpers.crawlkit import NOISE, ROOT, repost


def paste_archive(people):
    """A started paste archive: 3 reposts and 3 noise pastes, each at /raw/KEY (as tests/cluster/test_worker.py's)."""
    from dumpwatch.devkit.localsites import SiteServer

    server = SiteServer().start()
    server.bodies = {"REPOSTAA": repost(people[0:25], "csv", 1), "REPOSTBB": repost(people[30:50], "json", 2),
                     "REPOSTCC": repost(people[60:75], "kv", 3),
                     "NOISEAAA": NOISE[0], "NOISEBBB": NOISE[1], "NOISECCC": NOISE[2]}
    for key, body in server.bodies.items():
        server.add(f"/raw/{key}", body, headers={"Content-Type": "text/plain; charset=utf-8"})
    list_archive(server)
    return server


def list_archive(server) -> None:
    """The archive's listing page, with every paste of ``server.bodies``."""
    links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in server.bodies)
    server.add("/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample of http://127.0.0.1:PORT/metrics, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def answers(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def start_worker(home, redis_url: str, *args: str) -> subprocess.Popen:
    """`dumpwatch worker --redis URL ARGS…` in its own session, its output in HOME/worker.out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    with open(home.root / "worker.out", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "worker",
                                 "--redis", redis_url, *args], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
