"""Two versions of dumpwatch, one machine, one run: does a change keep the engine's figures?

A refactor must leave the benchmarks as they were; on a shared machine the seconds of two separate
runs differ more than the code does. This benchmark times both versions alternately, in the same
run, on the same enrolled home and the same repost, and reports each against ``csv.reader`` merely
parsing the file (timed in between too):

    ratio(version) = best-of-N wall time of `dumpwatch scan --json REPOST` / best-of-N csv.reader

and the CPU time (user + system) of each version's command, its worker processes included, which a
loaded machine disturbs far less than the wall time (the head/base CPU ratio is the figure to trust
when other work shares the cores).

The baseline version is a git revision, checked out into a temporary worktree and run with the same
interpreter (the same installed libraries). Both versions must read the same index format: the
home is enrolled once, by the current tree. The JSON outputs of the two are compared too (they must
be identical but for timings).

Usage:  .venv/bin/python bench/bench_compare.py BASE_REV [--rows 491840] [--rounds 5] [--out bench/out]
Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dumpwatch.devkit import synth  # noqa: E402


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system, the command's worker processes included) and output."""
    t, cpu = time.perf_counter(), cpu_of_children()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t, cpu_of_children() - cpu
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} in {cwd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def parse_only(path: Path) -> float:
    t = time.perf_counter()
    with open(path, newline="", encoding="cp1252") as fh:
        for _ in csv.reader(fh):
            pass
    return time.perf_counter() - t


def comparable(out: str) -> list[dict]:
    """The scan JSON without what differs from run to run."""
    findings = json.loads(out)
    findings = findings if isinstance(findings, list) else [findings]
    for f in findings:
        for key in ("elapsed", "seconds", "scanned_at", "duration"):
            f.pop(key, None)
    return findings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="git revision of the baseline version (e.g. the commit before a refactor)")
    ap.add_argument("--rows", type=int, default=491_840)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; each side's best counts")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    leak, repost = args.out / f"compare-leak-{args.rows}.csv", args.out / f"compare-repost-{args.rows}.csv"
    if not leak.exists() or not repost.exists():
        people = synth.generate(args.rows, seed=2021)  # the same leak and repost as bench_engine.py
        synth.write_csv(people, leak)
        header, rows = synth.transform(people, seed=7, shuffle_columns=True, english=True, spaced=True,
                                       intl=True, typos=0.05)
        repost.write_text(synth.csv_text(header, rows, ","), encoding="cp1252", errors="replace")
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    base_tree = work / "base"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base_tree), args.base],
                       check=True)
        home = work / "home"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DUMPWATCH_HOME": str(home)}
        env.pop("DUMPWATCH_KEY", None)
        subprocess.run([sys.executable, "-m", "dumpwatch.cli", "enroll", str(leak), "--leak", "bench",
                        "--lab-column", "laboratoire"],
                       env=env, cwd=ROOT, check=True, capture_output=True)
        sides = {"base": base_tree, "head": ROOT}
        best = {name: float("inf") for name in (*sides, "csv.reader")}
        times: dict[str, list[float]] = {name: [] for name in sides}
        best_cpu = {name: float("inf") for name in sides}
        outputs: dict[str, list[dict]] = {}
        for round_ in range(args.rounds):
            order = list(sides.items()) if round_ % 2 == 0 else list(sides.items())[::-1]  # no side always first
            for name, tree in order:
                env = {**os.environ, "PYTHONPATH": str(tree), "DUMPWATCH_HOME": str(home)}
                wall, cpu, out = timed([sys.executable, "-m", "dumpwatch.cli", "scan", "--json", str(repost)], env, tree)
                best[name] = min(best[name], wall)
                times[name].append(wall)
                best_cpu[name] = min(best_cpu[name], cpu)
                outputs[name] = comparable(out)
            best["csv.reader"] = min(best["csv.reader"], parse_only(repost))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    base_rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
                              capture_output=True, text=True).stdout.strip()
    head_rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    same = outputs["base"] == outputs["head"]
    print(f"`bench/bench_compare.py {args.base} --rows {args.rows} --rounds {args.rounds}`: "
          f"{args.rows:,} rows, best of {args.rounds} alternating rounds\n")
    print("| version | `dumpwatch scan --json` wall | ratio to csv.reader | CPU (user+sys, workers included) |")
    print("| --- | --- | --- | --- |")
    for name, rev in (("base", base_rev), ("head", head_rev)):
        print(f"| {name} ({rev}) | {best[name]:.2f} s | {best[name] / best['csv.reader']:.2f}× | {best_cpu[name]:.2f} s |")
    print(f"| csv.reader (baseline) | {best['csv.reader']:.2f} s | 1.00× | |")
    print(f"\nhead / base: wall {best['head'] / best['base']:.2f}×, CPU {best_cpu['head'] / best_cpu['base']:.2f}×"
          f"; scan JSON identical: {'yes' if same else 'NO'}")
    for name in sides:
        print(f"{name} runs: {', '.join(f'{t:.2f}' for t in times[name])} s")
    if not same:
        raise SystemExit("the two versions disagree on the scan result")


if __name__ == "__main__":
    main()
