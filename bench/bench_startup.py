"""Start-up benchmark (issue 9, `startup`): what every scan pays before and after its rows.

Two figures per ``--code DIR`` (``git archive COMMIT | tar -x -C DIR`` for an older version), the
codes alternated run by run on the same enrolled home (``bench_onecore.py``'s, kept in ``--out``):

(i)  ``tiny``: the CPU time (user + system) of a whole ``dumpwatch scan --workers 1 --json`` of a
     one-row CSV (the repost's header and first row), ``--runs`` times each: the interpreter, the
     imports, loading the index, the verdict;
(ii) ``finding``: the CPU time of ``Scanner._finding`` (the verdict and the confirmed records per
     lab) in a scan of the whole repost in one process, and of that scan, ``--repeat`` times each.

The scan JSON of the codes is compared (it must be identical). Each code's sources are
byte-compiled first, as an installed package's are.

Usage:  .venv/bin/python bench/bench_startup.py --code /tmp/base --code . [--runs 10] [--repeat 3]
            [--rows 491840] [--out bench/out/onecore]
(run ``bench/bench_onecore.py --cases csv`` once before: it makes the repost and the home.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FINDING = r'''
import json, sys, time
from pathlib import Path
from dumpwatch.home import Home
from matchers.scan import Scanner
home = Home.resolve(Path(sys.argv[1]))
scanner = Scanner.from_index_dir(home.index_dir, home.load_key(), workers=1)
inner, spent = Scanner._finding, []
def timed(self, *args, **kwargs):
    t = time.process_time()
    finding = inner(self, *args, **kwargs)
    spent.append(time.process_time() - t)
    return finding
Scanner._finding = timed
t = time.process_time()
finding = scanner.scan_path(sys.argv[2])
print(json.dumps([spent[0], time.process_time() - t, finding.matched_records]))
'''


def comparable(stdout: str) -> dict:
    result = json.loads(stdout.strip().splitlines()[-1])
    for key in ("elapsed", "seconds", "scanned_at", "duration"):
        result.pop(key, None)
    return result


def child_cpu(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", type=Path, action="append", help="a dumpwatch checkout to run (repeatable)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows", type=int, default=491_840)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "onecore")
    args = ap.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    home, repost = args.out / f"home_{args.rows}", args.out / f"repost_{args.rows}.csv"
    if not (home / "index").is_dir() or not repost.exists():
        raise SystemExit(f"no enrolled home or repost in {args.out}: run bench/bench_onecore.py --cases csv first")
    tiny = args.out / "tiny.csv"
    with repost.open("rb") as fh:
        tiny.write_bytes(fh.readline() + fh.readline())
    py = sys.executable
    for code in codes:
        subprocess.run([py, "-m", "compileall", "-q", *(str(code / d) for d in ("matchers", "dumpwatch"))],
                       capture_output=True, check=True)
    env0 = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    envs = {code: {**env0, "DUMPWATCH_HOME": str(home), "PYTHONPATH": str(code)} for code in codes}

    tiny_cpu: dict[Path, list[float]] = {code: [] for code in codes}
    results: dict[Path, dict] = {}
    for i in range(args.runs):
        for code in codes if i % 2 == 0 else codes[::-1]:
            cpu, out = child_cpu([py, "-m", "dumpwatch.cli", "scan", str(tiny), "--workers", "1", "--json"],
                                 envs[code], code)
            tiny_cpu[code].append(cpu)
            results[code] = comparable(out)
    finding_cpu: dict[Path, list[tuple[float, float]]] = {code: [] for code in codes}
    matched: dict[Path, int] = {}
    for i in range(args.repeat):
        for code in codes if i % 2 == 0 else codes[::-1]:
            _, out = child_cpu([py, "-c", FINDING, str(home), str(repost)], envs[code], code)
            spent, total, matched[code] = json.loads(out)
            finding_cpu[code].append((spent, total))
            print(f"{code}: _finding {spent * 1000:.1f} ms CPU, scan {total:.2f} s CPU", file=sys.stderr)
    base = codes[0]
    for code in codes:
        t = sorted(tiny_cpu[code])
        f = min(s for s, _ in finding_cpu[code])
        s = min(total for _, total in finding_cpu[code])
        print(f"| {code.name} | tiny scan {t[0] * 1000:.0f} ms CPU (median {t[len(t) // 2] * 1000:.0f} ms, "
              f"{len(t)} runs; {t[0] / min(tiny_cpu[base]):.2f}×) | _finding {f * 1000:.1f} ms CPU "
              f"({f / min(x for x, _ in finding_cpu[base]):.2f}×) | repost scan in one process {s:.2f} s CPU "
              f"({s / min(x for _, x in finding_cpu[base]):.3f}×), {matched[code]:,} confirmed |")
    same = all(results[c] == results[base] for c in codes)
    print(f"- tiny scan JSON identical across {', '.join(c.name for c in codes)}: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
