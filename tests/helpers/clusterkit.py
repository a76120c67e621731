"""Helpers of the distributed mode's end-to-end tests: a phpBB forum with attachments on a local
site server, real `dumpwatch` processes (daemon, workers) and a dump of everything in a Redis.

The forum is built from the saved phpBB page structures (tests/crawler/sites/phpbb, through
:mod:`tests.helpers.sitesrv`): a board, topics with posts, and attachments in the post's
``attachbox`` as phpBB renders them (``./download/file.php?id=N``); a ``forum`` source with
``preset = "phpbb"`` crawls it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.crawlkit import ROOT
from tests.helpers.sitesrv import template


@dataclass
class Post:
    html: str  # the post's content (already HTML)
    attachment: tuple[str, bytes] | None = None  # (file name, bytes), served as an attachment


@dataclass
class Forum:
    board: str  # the board's URL: the source's start URL
    posts: dict[str, Post] = field(default_factory=dict)  # document URL (topic URL#pPID) -> post
    attachments: dict[str, bytes] = field(default_factory=dict)  # URL -> bytes


def phpbb_forum(server: Any, topics: list[tuple[str, list[Post]]], prefix: str = "/forum") -> Forum:
    """Serve a one-board phpBB forum on ``server`` (a SiteServer); document URLs as the spider names them."""
    forum = Forum(board=f"{server.base}{prefix}/viewforum.php?f=2")
    rows = []
    aid = 0
    for tid, (title, posts) in enumerate(topics, start=1):
        body = []
        for n, post in enumerate(posts, start=1):
            pid = tid * 10 + n
            attachments = ""
            if post.attachment is not None:
                aid += 1
                name, data = post.attachment
                path = f"{prefix}/download/file.php?id={aid}"
                server.add(path, data, headers={"Content-Type": "application/octet-stream",
                                                "Content-Disposition": f'attachment; filename="{name}"'})
                forum.attachments[server.base + path] = data
                attachments = template("phpbb/attachbox.html", aid=str(aid), filename=name).decode()
            body.append(template("phpbb/post.html", pid=str(pid), author="anon", content=post.html,
                                 attachments=attachments).decode())
            forum.posts[f"{server.base}{prefix}/viewtopic.php?t={tid}#p{pid}"] = post
        server.add(f"{prefix}/viewtopic.php?t={tid}", template(
            "phpbb/viewtopic.html", tid=str(tid), title=title, count=str(len(posts)), posts="".join(body),
            pagination=""))
        rows.append(template("phpbb/topic_row.html", tid=str(tid), title=title, uid="7", author="anon",
                             replies=str(len(posts) - 1)).decode())
    server.add(f"{prefix}/viewforum.php?f=2", template("phpbb/viewforum.html", count=str(len(topics)),
                                                       topics="".join(rows), pagination=""))
    return forum


# -- processes -------------------------------------------------------------------------------------

def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}


class Process:
    """A `dumpwatch` command in its own session, its output in ``log``; stopped by :meth:`stop`."""

    def __init__(self, name: str, args: list[str], log: Path):
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", *args], cwd=ROOT, env=clean_env(),
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        """Stop it (``sig``, then SIGKILL to its session after ``timeout``); its exit status, None if killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                return None
        return self.proc.returncode


def paste_archive_config(home: Any, site: Any, extra: str = "") -> None:
    """A home's dumpwatch.toml with one source, ``pastes``: the paste archive of ``site`` (sitesrv)."""
    from tests.helpers.crawlkit import TEST_CRAWLER, TEST_NETWORK

    (home.root / "dumpwatch.toml").write_text(TEST_NETWORK + TEST_CRAWLER + f"""
[[sources]]
name = "pastes"
kind = "paste-archive"
start_urls = ["{site.base}/archive"]
listing_regex = 'href="/(?P<key>[A-Z]+)"'
raw_url = "{{base}}/raw/{{key}}"
""" + extra)


def start_worker(home: Any, redis_url: str) -> subprocess.Popen:
    """`dumpwatch worker` on ``home``, its output added to HOME/worker.out."""
    with open(home.root / "worker.out", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "worker",
                                 "--redis", redis_url], cwd=ROOT, env=clean_env(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30) -> None:
    """Stop a worker (``sig``, then SIGKILL after ``timeout``)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- Redis ------------------------------------------------------------------------------------------

def redis_dump(r: Any) -> str:
    """Every key of the Redis and every value (streams, sorted sets, lists, hashes, sets, strings), as one text."""
    parts = []
    for key in r.scan_iter():
        kind = r.type(key)
        value = {"stream": lambda: r.xrange(key), "zset": lambda: r.zrange(key, 0, -1, withscores=True),
                 "list": lambda: r.lrange(key, 0, -1), "hash": lambda: r.hgetall(key),
                 "set": lambda: sorted(r.smembers(key)), "string": lambda: r.get(key)}[kind]()
        parts.append(json.dumps([key, value], default=str, ensure_ascii=False))
    return "\n".join(parts)
