"""Proximity benchmark: what the fallback costs on noise, and what it reads that parsers do not.

Scans, with one enrolled synthetic leak, documents of noise (an application log full of long
numbers and phone-like digits, a plain CSV without identifiers, forum chatter) and a repost in a
shape no parser knows (XML-ish records on one line). Each case is timed with the code of two source
trees (``--before``: a checkout without the fallback; ``--after``: this one) in child processes run
alternately, best of N on each side; the figures to compare are the ratios after/before.

Usage:  .venv/bin/python bench/bench_proximity.py --before /tmp/base [--lines 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import io, json, random, sys, time
sys.path.insert(0, sys.argv[1])
from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.scan import Scanner

lines, repeat = int(sys.argv[2]), int(sys.argv[3])
only = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] else []
key = bytes(range(32))
people = synth.generate(2000, seed=2021)
index, _ = enroll_stream(io.BytesIO(synth.csv_text(*synth.transform(people)).encode()), "leak.csv",
                         leak="labos", key=key)
scanner = Scanner([index], key)
rng = random.Random(1)
DOCS = {
    "log": "\n".join(f"2021-02-24 12:{i % 60:02d}:{i % 59:02d} INFO req={rng.randint(10**14, 10**15 - 1)} "
                     f"trace={rng.randint(10**12, 10**13 - 1)} user=u{i} tel=0{rng.randint(600000000, 799999999)} "
                     f"path=/api/v1/items/{i} status=200" for i in range(lines)),
    "csv-no-ids": "sku;name;price;date\n" + "\n".join(
        f"SKU{i:07d};Widget {i % 977};{i * 1.5:.2f};2021-02-{i % 28 + 1:02d}" for i in range(lines)),
    "chatter": "\n".join(rng.choice(("merci pour le partage", "quelqu'un a la suite ?", "lien mort",
                                     "def foo(x): return x * 2", "[12:30] user42: up"))
                         for _ in range(lines)),
    "xml-oneline-repost": "<export>" + "".join(
        f"<patient><nom>{p['nom']}</nom><prenom>{p['prenom']}</prenom><tel>{p['telephone']}</tel></patient>"
        for p in people) + "</export>",
}
out = {}
for name, text in DOCS.items():
    if only and name not in only: continue
    data = text.encode()
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        f = scanner.scan_bytes(data, name)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    out[name] = {"s": best, "mib": len(data) / 2**20, "matched": f.matched_records,
                 "seen": f.records_seen, "errors": len(f.errors)}
print(json.dumps(out))
"""


def run(root: Path, lines: int, repeat: int, only: str = "") -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, str(root), str(lines), str(repeat), only],
                         capture_output=True, text=True, check=True, cwd=root)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="source tree without the fallback")
    ap.add_argument("--after", type=Path, default=ROOT)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of before/after")
    ap.add_argument("--only", default="", help="comma-separated documents (default: all)")
    args = ap.parse_args()
    before: dict = {}
    after: dict = {}
    for _ in range(args.rounds):
        for side, root in ((before, args.before), (after, args.after)):
            for name, r in run(root, args.lines, args.repeat, args.only).items():
                if name not in side or r["s"] < side[name]["s"]:
                    side[name] = r
    print("| document | MiB | before s | after s | ratio | matched before → after | records_seen before → after |")
    print("|---|---|---|---|---|---|---|")
    for name in after:
        b, a = before[name], after[name]
        print(f"| {name} | {a['mib']:.1f} | {b['s']:.2f} | {a['s']:.2f} | {a['s'] / b['s']:.2f}× | "
              f"{b['matched']} → {a['matched']} | {b['seen']} → {a['seen']} |")


if __name__ == "__main__":
    main()
