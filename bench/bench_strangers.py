"""Strangers benchmark: a large customer export of another breach against an enrolled leak.

Issue 8, case 7: a 1.64-million-row export of other people (the 40 most common French first and
last names, half of the rows with names of the population the leak was drawn from, random
French mobiles, shop emails) collides by chance on a few hundred phones with a 50,000-row leak.
It must give 0 confirmed records and never the verdict ``repost``.

Each ``--code DIR`` runs the same ``dumpwatch enroll`` and ``dumpwatch scan --json`` with the
engine found in DIR (default: this checkout), so an older checkout shows what it said on the same
input (``git archive COMMIT | tar -x -C /tmp/old``). Time is reported with ``csv.reader`` merely
parsing the same file as the baseline (machines are noisy: read the ratio).

Usage:  .venv/bin/python bench/bench_strangers.py [--rows 1640000] [--leak 50000] [--code DIR]...
Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dumpwatch.devkit import synth  # noqa: E402


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_640_000, help="rows of strangers")
    ap.add_argument("--leak", type=int, default=50_000, help="rows of the enrolled synthetic leak")
    ap.add_argument("--collide", type=float, default=0.0,
                    help="share of rows given one of the leak's phones (more collisions than chance)")
    ap.add_argument("--columns", default=",".join(synth.CUSTOMER_COLUMNS),
                    help=f"columns kept (of {','.join(synth.CUSTOMER_COLUMNS)})")
    ap.add_argument("--code", type=Path, action="append", help="a dumpwatch checkout to run (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    leak = out / f"leak_{args.leak}.csv"
    columns = args.columns.split(",")
    keep = [synth.CUSTOMER_COLUMNS.index(c) for c in columns]
    export = out / f"customers_{args.rows}_{args.leak}_{args.collide}_{'-'.join(columns)}.csv"
    if not export.exists():
        t = time.perf_counter()
        people = synth.generate(args.leak, seed=2021)
        if not leak.exists():
            synth.write_csv(people, leak)
        phones = [p["telephone"] for p in people]
        others = synth.generate(3000, seed=99)  # the population's names, not its people
        names = [(p["nom"], p["prenom"]) for p in others]
        tmp = export.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(columns) + "\n")
            for row in synth.customers(args.rows, seed=7, names=names, phones=phones, collide=args.collide):
                fh.write(",".join(row[i] for i in keep) + "\n")
        tmp.replace(export)
        print(f"generated in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    size_mb = export.stat().st_size / 1e6
    csv_cmd = [sys.executable, "-c", "import csv, sys\nwith open(sys.argv[1], newline='') as f:\n"
               "    for r in csv.reader(f): pass", str(export)]
    csv_s = min(timed(csv_cmd)[0] for _ in range(2))

    lines = []
    for code in codes:
        home = out / f"home-strangers-{abs(hash(str(code))) % 10**6}"
        shutil.rmtree(home, ignore_errors=True)
        env = {**os.environ, "DUMPWATCH_HOME": str(home), "PYTHONPATH": str(code)}
        env.pop("DUMPWATCH_KEY", None)
        dw = [sys.executable, "-m", "dumpwatch.cli"]
        enroll_s, _ = timed(dw + ["enroll", str(leak), "--leak", "labos", "--lab-column", "laboratoire"], env, code)
        scan_s, stdout = timed(dw + ["scan", str(export), "--json"], env, code)
        result = json.loads(stdout.strip().splitlines()[-1])
        rev = subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h"], capture_output=True,
                             text=True).stdout.strip() or code.name
        lines.append(f"| {rev} | {result['verdict']} | {result['matched_records']} | "
                     f"{result['records_seen']:,} | {scan_s:.1f} s | {scan_s / csv_s:.2f}× | {enroll_s:.1f} s |")
        shutil.rmtree(home, ignore_errors=True)

    print(f"""
## Strangers (issue 8, case 7)

Command: `{' '.join(['.venv/bin/python', 'bench/bench_strangers.py'] + sys.argv[1:])}` on {os.cpu_count()} cores.
Input: {args.rows:,} customers of another breach ({size_mb:.0f} MB): the 40 commonest French surnames
and first names (half of the rows with names of the population the leak was drawn from), random
mobiles 06/07, shop emails; columns {', '.join(columns)}. Enrolled leak: {args.leak:,} synthetic rows.
Phone collisions: ~{args.rows * args.leak * 0.97 / 2e8:,.0f} by chance, plus ~{args.rows * args.collide:,.0f} rows given a
leaked phone (`--collide`). `csv.reader` parses the input in {csv_s:.1f} s.

| code | verdict | confirmed | rows seen | scan | scan / csv.reader | enroll |
| --- | --- | --- | --- | --- | --- | --- |
""" + "\n".join(lines))


if __name__ == "__main__":
    main()
