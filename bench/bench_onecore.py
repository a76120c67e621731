"""One-core and format benchmark (issue 9): the full repost scanned by one process, in every form.

The crawler scans one document at a time in its single worker process, and reposts come
compressed or as JSON as often as plain CSV. This benchmark times the whole
``dumpwatch scan --workers 1 --json`` command on the 491,840-row reformatted repost of
``bench_engine.py`` (the same leak, the same transformations: columns shuffled, English header,
``,``, cp1252, NIRs spaced, phones ``+33 6 …``, 5 % of last names mistyped), against the least
work any reader must do on the same bytes, in the same run, best of ``--repeat`` on each side
(wall and CPU time, user + system), and the peak RSS of one more run:

(i)    ``csv``: the repost, plain CSV, vs ``csv.reader`` merely parsing it;
(ii)   ``single``: the same rows, ``--single`` of them with a single strong identifier (NIR blank,
       and the phone or the email blank, as in the 2021 file where contacts were partial) vs
       ``csv.reader``;
(iii)  ``gzip``: the gzip of (i) vs ``gzip.open`` + ``csv.reader``;
(iv)   ``jsonl``: its JSON-lines form (one object per row, the header's keys) vs ``json.loads`` per
       line; ``array``: one JSON array of those objects vs ``ijson.items(f, "item")`` (C backend).

Each ``--code DIR`` runs the engine found in DIR (``git archive COMMIT | tar -x -C DIR`` for an
older version) on the same enrolled home (enrolled once, by this tree, and kept in ``--out``); the
scan JSON of every code is compared (it must be identical) and the answer printed. Each code's
sources are byte-compiled first, as an installed package's are.

Usage:  .venv/bin/python bench/bench_onecore.py [--rows 491840] [--repeat 3] [--cases csv,single,gzip,jsonl,array]
            [--single 0.5] [--code DIR]... [--out bench/out/onecore]
Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_noise import peak_rss, run  # noqa: E402

from dumpwatch.devkit import synth  # noqa: E402

CASES = ("csv", "single", "gzip", "jsonl", "array")
CSV_BASELINE = ("import csv, sys\nwith open(sys.argv[1], newline='', encoding='cp1252') as f:\n"
                "    for r in csv.reader(f): pass")
GZIP_BASELINE = ("import csv, gzip, sys\nwith gzip.open(sys.argv[1], 'rt', newline='', encoding='cp1252') as f:\n"
                 "    for r in csv.reader(f): pass")
JSONL_BASELINE = ("import json, sys\nwith open(sys.argv[1], encoding='utf-8') as f:\n"
                  "    for line in f: json.loads(line)")
ARRAY_BASELINE = ("import ijson, sys\nwith open(sys.argv[1], 'rb') as f:\n"
                  "    for item in ijson.items(f, 'item'): pass")
TITLES = {"csv": "repost, plain CSV", "single": "repost, rows with a single strong identifier",
          "gzip": "repost, gzip", "jsonl": "repost, JSON lines", "array": "repost, one JSON array"}
BASELINES = {"csv": ("csv.reader", CSV_BASELINE), "single": ("csv.reader", CSV_BASELINE),
             "gzip": ("gzip.open + csv.reader", GZIP_BASELINE),
             "jsonl": ("json.loads per line", JSONL_BASELINE), "array": ("ijson.items", ARRAY_BASELINE)}


def transformed(people: list[dict[str, str]]) -> tuple[list[str], list[list[str]]]:
    """The repost of bench_engine.py (same seed, same transformations)."""
    return synth.transform(people, seed=7, shuffle_columns=True, english=True, spaced=True, intl=True,
                           typos=0.05)


def single_strong(header: list[str], rows: list[list[str]], share: float) -> list[list[str]]:
    """``share`` of the rows keep one strong identifier: NIR blank, and the phone or the email."""
    rng = random.Random(2021)
    nir, phone, email = (header.index(synth.ENGLISH[c]) for c in ("nir", "telephone", "email"))
    out = []
    for row in rows:
        if rng.random() < share:
            row = list(row)
            row[nir] = ""
            row[phone if rng.random() < 0.5 else email] = ""
        out.append(row)
    return out


def make_inputs(out: Path, n: int, share: float, cases: list[str]) -> tuple[Path, dict[str, Path]]:
    leak = out / f"leak_{n}.csv"
    paths = {"csv": out / f"repost_{n}.csv", "single": out / f"single_{n}_{share}.csv",
             "gzip": out / f"repost_{n}.csv.gz", "jsonl": out / f"repost_{n}.jsonl",
             "array": out / f"repost_{n}.json"}
    need = [c for c in cases if not paths[c].exists()] + ([] if leak.exists() else ["leak"])
    if not need:
        return leak, paths
    t = time.perf_counter()
    people = synth.generate(n, seed=2021)
    if not leak.exists():
        synth.write_csv(people, leak)
    header, rows = transformed(people)
    del people
    if "single" in need:
        paths["single"].write_text(synth.csv_text(header, single_strong(header, rows, share), ","),
                                   encoding="cp1252", errors="replace")
    if not paths["csv"].exists():
        paths["csv"].write_text(synth.csv_text(header, rows, ","), encoding="cp1252", errors="replace")
    if "gzip" in need:
        with paths["csv"].open("rb") as src, gzip.open(paths["gzip"], "wb", compresslevel=6) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    if "jsonl" in need or "array" in need:
        # The rows as the CSV holds them (cp1252 round trip: the same characters in every form).
        with paths["csv"].open(newline="", encoding="cp1252") as fh:
            reader = csv.reader(fh)
            keys = next(reader)
            objects = [json.dumps(dict(zip(keys, r)), ensure_ascii=False) for r in reader]
        if "jsonl" in need:
            paths["jsonl"].write_text("".join(o + "\n" for o in objects), encoding="utf-8")
        if "array" in need:
            paths["array"].write_text("[\n" + ",\n".join(objects) + "\n]\n", encoding="utf-8")
    print(f"generated {', '.join(need)} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return leak, paths


def comparable(stdout: str) -> dict:
    """The scan JSON without what differs from run to run."""
    result = json.loads(stdout.strip().splitlines()[-1])
    for key in ("elapsed", "seconds", "scanned_at", "duration"):
        result.pop(key, None)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=491_840)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--single", type=float, default=0.5, help="share of rows with a single strong identifier")
    ap.add_argument("--code", type=Path, action="append", help="a dumpwatch checkout to run (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "onecore")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if unknown := set(cases) - set(CASES):
        raise SystemExit(f"unknown cases: {', '.join(sorted(unknown))} (choose among {', '.join(CASES)})")
    codes = [c.resolve() for c in (args.code or [ROOT])]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    leak, paths = make_inputs(out, args.rows, args.single, cases)

    py = sys.executable
    home = out / f"home_{args.rows}"
    env0 = {**os.environ, "DUMPWATCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env0.pop("DUMPWATCH_KEY", None)
    if not (home / "index").is_dir():
        t = time.perf_counter()
        run([py, "-m", "dumpwatch.cli", "enroll", str(leak), "--leak", "bench", "--lab-column", "laboratoire"],
            env0, ROOT)
        print(f"enrolled in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    for code in codes:
        # Byte-compiled once, as an installed package is (bench_noise.py does the same): a
        # PYTHONDONTWRITEBYTECODE environment would otherwise compile the sources in every timed run.
        subprocess.run([py, "-m", "compileall", "-q", *(str(code / d) for d in ("matchers", "dumpwatch"))],
                       capture_output=True, check=True)
    revs = {code: subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h"], capture_output=True,
                                 text=True).stdout.strip() or code.name for code in codes}
    lines, same_lines = [], []
    for case in cases:
        path = paths[case]
        kind, script = BASELINES[case]
        base_cmd = [py, "-c", script, str(path)]
        base_w, base_c = [], []
        walls = {code: [] for code in codes}
        cpus = {code: [] for code in codes}
        results: dict[Path, dict] = {}
        for round_ in range(args.repeat):
            order = codes if round_ % 2 == 0 else codes[::-1]
            w, c, _ = run(base_cmd)
            base_w.append(w)
            base_c.append(c)
            for code in order:
                env = {**env0, "PYTHONPATH": str(code)}
                cmd = [py, "-m", "dumpwatch.cli", "scan", str(path), "--workers", "1", "--json"]
                w, c, stdout = run(cmd, env, code)
                walls[code].append(w)
                cpus[code].append(c)
                results[code] = comparable(stdout)
                print(f"{case} {revs[code]}: {w:.2f}s CPU {c:.2f}s (baseline {base_w[-1]:.2f}s)", file=sys.stderr)
        bw, bc = min(base_w), min(base_c)
        for code in codes:
            env = {**env0, "PYTHONPATH": str(code)}
            rss = peak_rss([py, "-m", "dumpwatch.cli", "scan", str(path), "--workers", "1", "--json"], env, code)
            s, c = min(walls[code]), min(cpus[code])
            r = results[code]
            lines.append(f"| {revs[code]} | ({case}) {TITLES[case]}, {path.stat().st_size / 1e6:.0f} MB | "
                         f"{s:.2f} s (CPU {c:.2f} s) | {kind} {bw:.2f} s (CPU {bc:.2f} s) | **{s / bw:.2f}×** | "
                         f"{c / bc:.2f}× | {rss / 1024:.0f} MB | {r['verdict']}, {r['records_seen']:,} records, "
                         f"{r['matched_records']:,} confirmed, complete {str(r.get('complete')).lower()} |")
            print(lines[-1], file=sys.stderr, flush=True)  # a long run cut short keeps what it measured
        first = results[codes[0]]
        same = all(results[c] == first for c in codes)
        same_lines.append(f"- ({case}): scan JSON identical across {', '.join(revs[c] for c in codes)}: "
                          f"{'yes' if same else 'NO'}")
    print(f"""
Command: `{' '.join(['.venv/bin/python', 'bench/bench_onecore.py'] + sys.argv[1:])}` on {os.cpu_count()} cores,
`dumpwatch scan --workers 1 --json` (whole command), best of {args.repeat} on each side, alternated
(CPU: user + system). Enrolled leak: {args.rows:,} synthetic rows.

| code | input | `dumpwatch scan --workers 1 --json` | baseline | wall ratio | CPU ratio | peak RSS | finding |
| --- | --- | --- | --- | --- | --- | --- | --- |
""" + "\n".join(lines) + ("\n\n" + "\n".join(same_lines) if len(codes) > 1 else ""))


if __name__ == "__main__":
    main()
