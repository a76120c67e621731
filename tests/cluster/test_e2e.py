"""End to end, distributed (issue 12): the real control node (`dumpwatch daemon --redis URL`, its
scheduler, findings and delivery jobs) and TWO `dumpwatch worker` processes crawl three paste sites
(two real pinnwands through their JSON listing, a paste archive) and a phpBB forum, seeded with
reposts of the enrolled synthetic leak in several forms (CSV, translated JSON with spaced NIRs, a
partial key-value copy, rows inside chatter, a [code] block in a forum post, a zip attached to it)
and with noise (another breach's customers, chatter, code, logs, a recipe). Alerts go to a real
signature-checking webhook receiver.

Every repost becomes exactly one finding and exactly one delivered alert, also after further runs
of every source (each worker has its own seen-set, so a paste may be fetched again by the other
worker: still one finding); no finding for the noise; no identifier in Redis (every key and value
dumped), in the webhook bodies or in the workers' stores. Every wait is bounded.
"""

from __future__ import annotations

import time

import pytest

from dumpwatch import store
from dumpwatch.devkit.localsites import SiteServer, WebhookReceiver, start_pinnwand
from tests.helpers.alertkit import SECRET, assert_no_identifier
from tests.helpers.clusterkit import Post, Process, phpbb_forum, redis_dump
from tests.helpers.crawlkit import NOISE, TEST_CRAWLER, TEST_NETWORK, code_block, compressed, repost

# one deployment at a time under pytest-xdist (`make test`): see [tool.pytest.ini_options]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420), pytest.mark.xdist_group("deployment")]

WAIT = 240.0  # the longest wait for the cluster to get somewhere (a bound, not an assertion on time)
INTERVAL = 10  # seconds between two runs of each source (a run closes once quiet for two 2 s checks: shorter
# intervals close runs as partial when the machine is slow, and two of those raise a health finding)


def customers(strangers: list[dict[str, str]]) -> str:
    """Another breach: a shop's customers (real-looking identifiers, none of them in the leak)."""
    return "client;email;telephone;ville;commandes;total\n" + "".join(
        f"{s['prenom']} {s['nom']};{s['email']};{s['telephone']};{s['ville']};{i % 7 + 1};{(i * 13) % 400}.90\n"
        for i, s in enumerate(strangers))


@pytest.fixture
def world(tmp_path, people, strangers):
    """Two pinnwands, one site server (a paste archive and a forum), a webhook receiver; what is a repost."""
    pins = [start_pinnwand(tmp_path / f"pinnwand-{i}") for i in range(2)]
    site = SiteServer().start()
    hook = WebhookReceiver(SECRET.encode()).start()
    try:
        reposts, noise = set(), set()
        a, b = pins
        reposts.add(a.paste(repost(people[0:25], "csv", 1)))
        noise |= {a.paste(NOISE[0]), a.paste(customers(strangers[0:40]))}
        reposts |= {b.paste(repost(people[30:50], "json", 2, english=True, spaced=True)),
                    b.paste(repost(people[60:72], "kv", 3, columns=["nom", "prenom", "telephone", "nir"]))}
        noise |= {b.paste(NOISE[4]), b.paste(NOISE[2])}
        archive = {"REPOSTAA": repost(people[80:92], "chatter", 4), "NOISEAAA": NOISE[1], "NOISEBBB": NOISE[3]}
        for key, body in archive.items():
            site.add(f"/bin/raw/{key}", body, headers={"Content-Type": "text/plain; charset=utf-8"})
            (reposts if key.startswith("REPOST") else noise).add(f"{site.base}/bin/raw/{key}")
        links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in archive)
        site.add("/bin/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")
        zipped = compressed(repost(people[120:150], "csv", 6), "zip")
        forum = phpbb_forum(site, [
            ("Base labos Bretagne 2021", [Post(f"<p>{NOISE[4]}</p>"),
                                          Post("voici un extrait :<br />" + code_block(repost(people[100:120], "csv", 5)),
                                               attachment=("base_labos.zip", zipped))]),
            ("Recette", [Post(f"<p>{NOISE[3]}</p>"), Post(code_block(NOISE[0]))]),
        ])
        post_urls = list(forum.posts)
        reposts |= {post_urls[1], *forum.attachments}
        noise |= {post_urls[0], post_urls[2], post_urls[3]}
        yield {"pins": pins, "site": site, "hook": hook, "forum": forum, "reposts": reposts, "noise": noise}
    finally:
        hook.stop()
        site.stop()
        for pin in pins:
            pin.stop()


def _config(home, world, tmp_path) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    a, b = world["pins"]
    site = world["site"]
    # A run still going when the next is pushed closes partial. Each worker crawl's first documents
    # wait for its scan process and index: on a loaded machine the first runs outlast the interval,
    # and two in a row (the kit's failing_runs = 2) raised a "failing" source-health finding that
    # this test, about findings and alerts, does not look at. Three in a row still raise one.
    crawler = TEST_CRAWLER.replace("failing_runs = 2\n", "failing_runs = 3\n")
    assert crawler != TEST_CRAWLER
    (home.root / "dumpwatch.toml").write_text(TEST_NETWORK + crawler + f"""
recrawl_age = "1h"

[daemon]
jitter = 0
delivery_interval = 1

[alerts]
authority_receiver = "cnil"
group_wait = 0
group_interval = 0
repeat_interval = 0

[[receivers]]
name = "cnil"
type = "webhook"
url = "{world['hook'].url}"
secret_file = "{secret}"

[[sources]]
name = "pin-a"
kind = "paste-api"
start_urls = ["{a.base}/dw/recent.json"]
interval = {INTERVAL}

[[sources]]
name = "pin-b"
kind = "paste-api"
start_urls = ["{b.base}/dw/recent.json"]
interval = {INTERVAL}

[[sources]]
name = "bin"
kind = "paste-archive"
start_urls = ["{site.base}/bin/archive"]
listing_regex = 'href="/(?P<key>[A-Z]+)"'
raw_url = "{site.base}/bin/raw/{{key}}"
interval = {INTERVAL}

[[sources]]
name = "forum"
kind = "forum"
preset = "phpbb"
start_urls = ["{world['forum'].board}"]
interval = {INTERVAL}
""")


def _alerted(hook) -> list[str]:
    """The URL of each new alert the receiver was sent (an alert sent twice counts twice)."""
    urls = []
    for h in list(hook.hooks):
        data = h.json()
        new = set(data["new_alerts"])
        urls += [a["url"] for a in data["alerts"] if a["alert_key"] in new]
    return urls


def _wait_for(predicate, what: str, *procs: Process) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        for p in procs:
            if p.proc.poll() is not None:
                pytest.fail(f"{p.name} exited ({p.proc.returncode}) waiting for {what}:\n{p.output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT:.0f} s for {what}:\n" + "\n".join(f"--- {p.name}\n{p.output()[-2000:]}"
                                                                     for p in procs))
        time.sleep(0.3)


def test_a_control_node_and_two_workers_turn_each_repost_into_one_finding_and_one_alert(
        homes, world, redis_url, rds, tmp_path, people, strangers):
    from crawler.cluster import findings, workers
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    for home in homes.values():
        _config(home, world, tmp_path)
    site, hook, reposts = world["site"], world["hook"], world["reposts"]
    # The workers are up before the control node's first push: the control node's indexes are
    # published first (as `dumpwatch daemon --redis` does when it starts), the workers start their
    # crawls, then the daemon. Started all at once on a loaded machine, the workers' start-up
    # outlasted the first interval, and two runs closed unfinished raised source-health findings.
    Daemon(control, control.load_config(), redis_url=redis_url).control.redis()
    crawlers = [Process(f"worker {i}", ["--home", str(homes[n].root), "worker", "--redis", redis_url],
                        tmp_path / f"{n}.out") for i, n in enumerate(("worker", "worker2"), start=1)]
    procs = [*crawlers]
    try:
        # both workers run a long-lived crawl of each of the four sources
        _wait_for(lambda: len(rds.hkeys(workers.KEY)) == 8, "8 worker crawls' heartbeats", *procs)
        assert {k.split(":")[1] for k in rds.hkeys(workers.KEY)} == {str(c.proc.pid) for c in crawlers}
        daemon = Process("control node", ["--home", str(control.root), "daemon", "--redis", redis_url],
                         tmp_path / "daemon.out")
        procs.insert(0, daemon)
        _wait_for(lambda: set(_alerted(hook)) >= reposts, "an alert for every repost", *procs)
        # further runs of every source (the archive and the board are listed twice more), the stream drained
        listings = len(site.hits("/bin/archive")), len(site.hits("/forum/viewforum.php?f=2"))
        _wait_for(lambda: len(site.hits("/bin/archive")) >= listings[0] + 2
                  and len(site.hits("/forum/viewforum.php?f=2")) >= listings[1] + 2, "two more runs", *procs)
        for c in crawlers:
            assert c.stop() == 0, c.output()[-3000:]
        _wait_for(lambda: rds.xpending(findings.STREAM, findings.GROUP)["pending"] == 0
                  and rds.xinfo_groups(findings.STREAM)[0]["last-delivered-id"]
                  == rds.xinfo_stream(findings.STREAM)["last-generated-id"], "the stream read and acknowledged",
                  daemon)
        time.sleep(3)  # the delivery job's next passes: nothing may be sent twice
    finally:
        for p in procs:
            p.stop()
    assert daemon.proc.returncode == 0, daemon.output()[-3000:]

    # every repost is exactly one finding; the noise is none
    db = store.open_db(control.db_path)
    rows = db.execute("SELECT url, verdict, count(*) FROM findings GROUP BY url, verdict").fetchall()
    assert sorted(url for url, verdict, _ in rows if verdict == "repost") == sorted(reposts)
    assert all(n == 1 for _, _, n in rows), rows
    assert not {url for url, _, _ in rows} & world["noise"]
    assert {url for url, _, _ in rows} == reposts, rows
    # the workers fetched the forum's attachment and every page of the noise too (scanned, not found)
    assert set(world["forum"].attachments) <= {site.base + p for p in site.paths()}
    assert {u for u in world["noise"] if u.startswith(site.base + "/bin/")} <= {site.base + p for p in site.paths()}
    # ... and exactly one delivered alert, counted at the receiver, signed
    assert sorted(_alerted(hook)) == sorted(reposts)
    assert all(h.signature_ok for h in hook.hooks)
    keys = [h.key for h in hook.hooks]
    assert len(keys) == len(set(keys)), "a message was delivered twice"
    # the stream carried each finding at least once, a second copy only as a duplicate
    sent = [f["url"] for _, f in rds.xrange(findings.STREAM)]
    assert set(sent) == reposts
    # no identifier anywhere the cluster writes: Redis (every key and value), the alerts, the workers
    dump = redis_dump(rds)
    assert sorted(reposts)[0] in dump  # the dump does hold what Redis has (the findings stream's URLs)
    everyone = people[0:150] + strangers[0:40]
    assert_no_identifier(dump.encode(), everyone, "Redis")
    assert_no_identifier(b"\n".join(h.body for h in hook.hooks), everyone, "the webhook bodies")
    for name in ("worker", "worker2"):
        assert store.open_db(homes[name].db_path).execute("SELECT count(*) FROM findings").fetchone()[0] == 0
        said = (tmp_path / f"{name}.out").read_text(errors="replace")
        assert "Traceback" not in said, said[-3000:]
