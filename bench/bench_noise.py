"""Noise benchmark (issue 9): documents that are not the leak, scanned as a monitor reads them.

Three synthetic inputs, each scanned by the whole ``dumpwatch scan --json`` command against a
50,000-row enrolled synthetic leak, and timed against the least work any scanner must do on the
same bytes, measured in the same run (best of ``--repeat`` on each side, wall and CPU time):

(a) another breach's customer export (:func:`dumpwatch.devkit.synth.customers`: common French
    names, French mobiles of people not in the leak, shop emails; ``--collide`` of the rows carry
    one of the leak's phones, the chance collisions of a large input) vs ``csv.reader`` merely
    parsing it;
(b) web-server access logs full of long numeric ids (order, session and request ids of 9 to 20
    digits) vs one pass of a single identifier regex (emails | 9–20 digit runs) over its lines;
(c) a large CSV of product rows without any identifier (``--plain-mb``, 1 GB for the issue's
    figure) vs ``csv.reader`` merely parsing it.

Peak RSS is the largest of the scan process and its workers (one more run, in a fresh wrapper). Each ``--code DIR`` runs
the engine found in DIR (``git archive COMMIT | tar -x -C DIR`` for an older version), so the
before and after figures come from one run on the same files; its sources are byte-compiled
first (``compileall``), as an installed package's are.

Usage:  .venv/bin/python bench/bench_noise.py [--customers-mb 150] [--logs-mb 100] [--plain-mb 1000]
            [--repeat 3] [--cases abc] [--code DIR]... [--workers N]
Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dumpwatch.devkit import synth  # noqa: E402

LEAK_ROWS = 50_000
CSV_BASELINE = ("import csv, sys\nwith open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
                "    for r in csv.reader(f): pass")
REGEX_BASELINE = ("import re, sys\nrx = re.compile(r'[\\w.+-]+@[\\w-]+\\.[\\w.-]+|\\d{9,20}')\n"
                  "with open(sys.argv[1], encoding='utf-8') as f:\n"
                  "    for line in f:\n        for m in rx.finditer(line): pass")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system, the scan's workers included) and stdout of one run."""
    c, t = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def peak_rss(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> int:
    """Peak RSS (KiB) of one run, measured in a fresh wrapper so that earlier children don't count."""
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
               "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"]
    out = subprocess.run(wrapper + cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def make_customers(path: Path, mb: int, leak_phones: list[str], collide: float) -> None:
    others = synth.generate(3000, seed=99)  # the population's names, not its people
    names = [(p["nom"], p["prenom"]) for p in others]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(synth.CUSTOMER_COLUMNS) + "\n")
        rows = synth.customers(10**9, seed=7, names=names, phones=leak_phones, collide=collide)
        while fh.tell() < mb * 1_000_000:
            fh.write("".join(",".join(next(rows)) + "\n" for _ in range(10_000)))
    tmp.replace(path)


def make_logs(path: Path, mb: int) -> None:
    rng = random.Random(11)
    paths = ("/api/orders/{}", "/api/v2/carts/{}/items", "/static/app.{}.js", "/products/{}", "/track?id={}")
    agents = ('"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"',
              '"curl/8.5.0"', '"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148"')
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        t0 = 1_764_000_000
        i = 0
        while fh.tell() < mb * 1_000_000:
            lines = []
            for _ in range(10_000):
                i += 1
                ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0 + i // 50))
                url = rng.choice(paths).format(rng.randrange(10**8, 10**rng.randrange(9, 16)))
                lines.append(f'{ip} - - [{ts}] "GET {url}?session={rng.randrange(10**17, 10**19)} HTTP/1.1" '
                             f'{rng.choice((200, 200, 200, 304, 404))} {rng.randrange(200, 90000)} "-" '
                             f'{rng.choice(agents)} req_id={rng.randrange(10**11, 10**20)} rt=0.{rng.randrange(1000):03d}\n')
            fh.write("".join(lines))
    tmp.replace(path)


def make_plain(path: Path, mb: int) -> None:
    rng = random.Random(5)
    words = ("acier", "bois", "chêne", "lampe", "table", "chaise", "bureau", "vis", "écrou", "câble", "rouge",
             "noir", "blanc", "grand", "petit", "lot", "de", "pour", "avec", "jardin", "cuisine", "salon")
    cats = ("Maison", "Jardin", "Bricolage", "Cuisine", "Électricité", "Luminaire")
    block = ["sku,designation,categorie,prix_ht,stock,poids_kg,description\n"]
    for i in range(100_000):
        block.append(f"P{i:07d},{' '.join(rng.choices(words, k=3))},{rng.choice(cats)},"
                     f"{rng.randrange(1, 2000)}.{rng.randrange(100):02d},{rng.randrange(0, 500)},"
                     f"{rng.randrange(1, 90)}.{rng.randrange(10)},{' '.join(rng.choices(words, k=8))}\n")
    body = "".join(block[1:])
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(block[0])
        while fh.tell() < mb * 1_000_000:
            fh.write(body)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers-mb", type=int, default=150)
    ap.add_argument("--logs-mb", type=int, default=100)
    ap.add_argument("--plain-mb", type=int, default=1000)
    ap.add_argument("--collide", type=float, default=0.001, help="share of customers given a leaked phone")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="abc")
    ap.add_argument("--workers", type=int, default=None, help="passed to dumpwatch scan (default: its own)")
    ap.add_argument("--code", type=Path, action="append", help="a dumpwatch checkout to run (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "noise")
    args = ap.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    leak = out / f"leak_{LEAK_ROWS}.csv"
    people = synth.generate(LEAK_ROWS, seed=2021)
    if not leak.exists():
        synth.write_csv(people, leak)
    inputs = {
        "a": (out / f"customers_{args.customers_mb}mb_{args.collide}.csv", "csv.reader",
              lambda p: make_customers(p, args.customers_mb, [x["telephone"] for x in people], args.collide)),
        "b": (out / f"logs_{args.logs_mb}mb.log", "one identifier regex", lambda p: make_logs(p, args.logs_mb)),
        "c": (out / f"plain_{args.plain_mb}mb.csv", "csv.reader", lambda p: make_plain(p, args.plain_mb)),
    }
    titles = {"a": "another breach's customers", "b": "web-server logs, long numeric ids",
              "c": "CSV without identifiers"}
    for case in args.cases:
        path, _, make = inputs[case]
        if not path.exists():
            t = time.perf_counter()
            make(path)
            print(f"generated {path.name} in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    py = sys.executable
    base = {}
    for case in args.cases:
        path, kind, _ = inputs[case]
        cmd = [py, "-c", REGEX_BASELINE if case == "b" else CSV_BASELINE, str(path)]
        runs = [run(cmd) for _ in range(args.repeat)]
        base[case] = (min(r[0] for r in runs), min(r[1] for r in runs))
        print(f"baseline {case}: {base[case][0]:.2f}s, CPU {base[case][1]:.2f}s", file=sys.stderr)

    lines = []
    for code in codes:
        home = out / f"home-{abs(hash(str(code))) % 10**6}"
        shutil.rmtree(home, ignore_errors=True)
        env = {**os.environ, "DUMPWATCH_HOME": str(home), "PYTHONPATH": str(code)}
        env.pop("DUMPWATCH_KEY", None)
        dw = [py, "-m", "dumpwatch.cli"]
        # Byte-compiled once, as an installed package is: a PYTHONDONTWRITEBYTECODE environment
        # would otherwise compile the project's sources again in every timed run (~0.1 s CPU).
        subprocess.run([py, "-m", "compileall", "-q", *(str(code / d) for d in ("matchers", "dumpwatch"))],
                       capture_output=True, check=True)
        run(dw + ["enroll", str(leak), "--leak", "labos", "--lab-column", "laboratoire"], env, code)
        rev = subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h"], capture_output=True,
                             text=True).stdout.strip() or code.name
        for case in args.cases:
            path, kind, _ = inputs[case]
            cmd = dw + ["scan", str(path), "--json"] + (["--workers", str(args.workers)] if args.workers else [])
            walls, cpus, result = [], [], None
            for _ in range(args.repeat):
                wall, cpu, stdout = run(cmd, env, code)
                walls.append(wall)
                cpus.append(cpu)
                result = json.loads(stdout.strip().splitlines()[-1])
                print(f"{rev} {case}: {wall:.2f}s, CPU {cpu:.2f}s", file=sys.stderr)
            rss = peak_rss(cmd, env, code)
            s, c = min(walls), min(cpus)
            bw, bc = base[case]
            lines.append(f"| {rev} | ({case}) {titles[case]}, {path.stat().st_size / 1e6:.0f} MB | {s:.2f} s "
                         f"(CPU {c:.2f} s) | {kind} {bw:.2f} s (CPU {bc:.2f} s) | **{s / bw:.2f}×** | "
                         f"{c / bc:.2f}× | {rss / 1024:.0f} MB | "
                         f"{result['verdict']}, {result['records_seen']:,} records, "
                         f"{result['matched_records']} confirmed, ids {result['identifiers']} |")
        shutil.rmtree(home, ignore_errors=True)

    print(f"""
Command: `{' '.join(['.venv/bin/python', 'bench/bench_noise.py'] + sys.argv[1:])}` on {os.cpu_count()} cores,
best of {args.repeat} on each side (wall time; CPU time, user + system with the scan's workers, is
less disturbed by other load). Enrolled leak: {LEAK_ROWS:,} synthetic rows.

| code | input | `dumpwatch scan --json` | baseline | wall ratio | CPU ratio | peak RSS | finding |
| --- | --- | --- | --- | --- | --- | --- | --- |
""" + "\n".join(lines))


if __name__ == "__main__":
    main()
