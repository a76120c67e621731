"""Engine benchmark: enroll a 491,840-row synthetic leak, scan a reformatted full repost.

Figures are ratios against baselines measured in the same run (the machines are noisy):
- ``dumpwatch scan`` on the repost (the whole command, start-up included) vs Python's csv.reader
  merely parsing the same file, best of 3 on each side;
- the same vs ``grep -F -f`` with the cleartext NIR list (which needs the clear data, and finds
  nothing in a copy whose NIRs were re-spaced);
- peak memory (max RSS of the child process) of enroll and scan, and of a scan of a ~1 GB input
  (``--big``) to show memory stays flat.

Usage:  .venv/bin/python bench/bench_engine.py [--rows 491840] [--big] [--out bench/out]
Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dumpwatch.devkit import synth  # noqa: E402


def run(cmd: list[str], env: dict | None = None, stdout=subprocess.DEVNULL) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall time and peak RSS (KiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr[-2000:]}")
    # ru_maxrss of children is the max over all children so far: run the big ones last.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before), proc


def best_of(n: int, cmd: list[str], env: dict | None = None) -> float:
    return min(run(cmd, env)[0] for _ in range(n))


def peak_rss(cmd: list[str], env: dict | None = None) -> int:
    """Peak RSS (KiB) of one run, measured by a fresh wrapper process so earlier children don't count."""
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
               "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"]
    out = subprocess.run(wrapper + cmd, env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=491_840)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--big", action="store_true", help="also scan a ~1 GB input for the memory check")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    dw = [py, "-m", "dumpwatch.cli"]
    leak = out / f"leak_{args.rows}.csv"
    repost = out / f"repost_{args.rows}.csv"
    nirs = out / f"nirs_{args.rows}.txt"
    if not repost.exists():
        t = time.perf_counter()
        people = synth.generate(args.rows, seed=2021)
        synth.write_csv(people, leak)
        header, rows = synth.transform(people, seed=7, shuffle_columns=True, english=True, spaced=True,
                                       intl=True, typos=0.05)
        repost.write_text(synth.csv_text(header, rows, ","), encoding="cp1252", errors="replace")
        nirs.write_text("".join(p["nir"] + "\n" for p in people))
        del people, rows
        print(f"generated in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    home = out / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "DUMPWATCH_HOME": str(home)}
    env.pop("DUMPWATCH_KEY", None)

    enroll_cmd = dw + ["enroll", str(leak), "--leak", "bench", "--lab-column", "laboratoire"]
    enroll_s, _, _ = run(enroll_cmd, env)
    enroll_rss = peak_rss(dw + ["enroll", str(leak), "--leak", "bench2", "--lab-column", "laboratoire"], env)
    shutil.rmtree(home / "index" / "bench2", ignore_errors=True)

    scan_cmd = dw + ["scan", str(repost), "--json"]
    _, _, proc = run(scan_cmd, env, stdout=subprocess.PIPE)
    result = proc.stdout.strip()
    csv_cmd = [py, "-c", "import csv, sys\nwith open(sys.argv[1], newline='', encoding='cp1252') as f:\n"
               "    for r in csv.reader(f): pass", str(repost)]
    grep_cmd = ["sh", "-c", f"grep -c -F -f {nirs} {repost} || true"]
    scan_s = best_of(3, scan_cmd, env)
    csv_s = best_of(3, csv_cmd)
    grep_s = best_of(3, grep_cmd)
    grep_hits = subprocess.run(grep_cmd, capture_output=True, text=True).stdout.strip()
    grep_plain_hits = subprocess.run(["sh", "-c", f"grep -c -F -f {nirs} {leak} || true"],
                                     capture_output=True, text=True).stdout.strip()
    scan_rss = peak_rss(scan_cmd, env)
    size_mb = repost.stat().st_size / 1e6

    big_line = ""
    if args.big:
        big = out / "big_1gb.csv"
        if not big.exists():
            text = repost.read_text(encoding="cp1252")
            body = text.split("\n", 1)[1]
            with big.open("w", encoding="cp1252") as fh:
                fh.write(text)
                while fh.tell() < 1_000_000_000:
                    fh.write(body)
        big_s, _, _ = run(scan_cmd[:-2] + [str(big), "--json"], env)
        big_rss = peak_rss(dw + ["scan", str(big), "--json"], env)
        big_line = (f"| scan of a {big.stat().st_size / 1e9:.2f} GB input (same rows repeated) | {big_s:.1f} s | "
                    f"peak RSS {big_rss / 1024:.0f} MB (vs {scan_rss / 1024:.0f} MB on the 80 MB file) |\n")

    print(f"""
## Engine (issue 2)

Command: `{' '.join(['.venv/bin/python', 'bench/bench_engine.py'] + sys.argv[1:])}` on {os.cpu_count()} cores.
Leak: {args.rows:,} synthetic rows ({leak.stat().st_size / 1e6:.0f} MB, `;`, UTF-8, French header).
Repost: all rows, columns shuffled, English header, `,`, cp1252, NIRs spaced, phones `+33 6 …`,
5 % of last names mistyped ({size_mb:.0f} MB).

| measure | figure | note |
| --- | --- | --- |
| `dumpwatch enroll` (whole command) | {enroll_s:.1f} s | peak RSS {enroll_rss / 1024:.0f} MB; goal < 60 s |
| `dumpwatch scan --json` on the repost (whole command, best of 3) | {scan_s:.2f} s | {size_mb / scan_s:.0f} MB/s, {args.rows / scan_s:,.0f} rows/s; peak RSS {scan_rss / 1024:.0f} MB |
| `csv.reader` merely parsing the repost (best of 3) | {csv_s:.2f} s | baseline |
| **ratio scan / csv.reader** | **{scan_s / csv_s:.2f}×** | goal ≤ 2× |
| `grep -c -F -f nirs.txt` on the repost (best of 3) | {grep_s:.2f} s | needs the cleartext NIRs; lines found: {grep_hits} in the repost (vs {grep_plain_hits} in the original file) |
| ratio scan / grep | {scan_s / grep_s:.2f}× | |
{big_line}
Scan result: `{result[:400]}`
""")


if __name__ == "__main__":
    main()
