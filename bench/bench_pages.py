"""The engine's cost per crawled page: each kind of page of a realistic crawl, scanned in-process.

The pages are the ones ``bench/bench_crawl.py --sizes realistic`` serves (its generators are
imported, so they are the same bytes): 5 KB posts, 200 KB pastes of mixed text (code, log lines,
three-line ``sku;designation;prix;stock`` CSV snippets, recipes, chatter), the small reposts of 20
enrolled people (csv, json, kv and chatter shapes), and the two 20 MB files (a product CSV without
identifiers, another breach's customer export). One synthetic leak of ``--people`` is enrolled once.

Each kind of page is scanned by :meth:`matchers.scan.Scanner.scan_bytes`, in one process, and timed
in CPU time (``time.process_time``); a pass scans every chosen page of the kind once and the best of
``--passes`` passes counts. Beside it, the least work on the same bytes, timed the same way: decoding
them and splitting the lines (posts, pastes, reposts), or ``csv.reader`` over them (the 20 MB files).

``--code DIR`` (repeatable) runs the engine found in DIR (a dumpwatch checkout, e.g. ``git archive
main | tar -x -C /tmp/base``) in a subprocess of its own (``PYTHONPATH=DIR``); the codes take turns
(``--rounds`` rounds, the order reversed every other round) and each code's best round counts. Every
code's findings (the scan JSON of every page, and the enrolled positions it confirmed) must be
identical: the bench says so, and exits with status 1 if not. Without ``--code``: this tree.

Examples, from the repo root::

    .venv/bin/python bench/bench_pages.py                      # this tree, default sample
    .venv/bin/python bench/bench_pages.py --posts 200 --pastes 30 --passes 3
    git archive main | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    .venv/bin/python bench/bench_pages.py --code /tmp/base --code . --rounds 2
    .venv/bin/python bench/bench_pages.py --kinds paste --pastes 5 --json   # one kind, JSON out
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("post", "paste", "repost", "products", "customers")
TITLES = {"post": "post, 5 KB", "paste": "paste of mixed text, 200 KB", "repost": "repost of 20 people",
          "products": "product CSV, no identifier, 20 MB", "customers": "another breach's customers, 20 MB"}


# -- the child: one code's engine over the pages ------------------------------------------------
def least_work(kind: str, data: bytes) -> None:
    """What any reader of the page must do: decode and split lines, or parse the CSV."""
    text = data.decode("utf-8", errors="replace")
    if kind in ("products", "customers"):
        for _ in csv.reader(io.StringIO(text, newline="")):
            pass
    else:
        text.splitlines()


def child(home: Path, pages_dir: Path, passes: int) -> None:
    """Scan the pages of ``pages_dir/KIND/*`` with the engine on ``sys.path``; print JSON."""
    from dumpwatch.home import Home
    from matchers.scan import Scanner

    h = Home(home)
    scanner = Scanner.from_index_dir(h.index_dir, h.load_key())
    out: dict[str, dict] = {}
    for kind in KINDS:
        files = sorted((pages_dir / kind).glob("*")) if (pages_dir / kind).is_dir() else []
        if not files:
            continue
        pages = [(f.name, f.read_bytes()) for f in files]
        best_engine = best_least = float("inf")
        findings: dict[str, dict] = {}
        for _ in range(passes):
            t = time.process_time()
            for name, data in pages:
                least_work(kind, data)
            best_least = min(best_least, time.process_time() - t)
            t = time.process_time()
            results = [scanner.scan_bytes(data, name) for name, data in pages]
            best_engine = min(best_engine, time.process_time() - t)
            for f in results:
                js = f.to_json()
                js["records"] = {lab: list(pos) for lab, pos in sorted(f.records.items())}
                findings[f.input] = js
        out[kind] = {"pages": len(pages), "bytes": sum(len(d) for _, d in pages),
                     "engine_cpu_s": best_engine, "least_cpu_s": best_least, "findings": findings}
    json.dump(out, sys.stdout)


# -- the parent: pages, enrollment, the codes in turn ---------------------------------------------
def make_pages(pages_dir: Path, args: argparse.Namespace) -> dict[str, int]:
    """Write the chosen pages of a ``--sizes realistic`` crawl of ``--crawl-pages`` pages."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_crawl import make_pages as crawl_pages

    from dumpwatch.devkit import synth

    people = synth.generate(args.people, seed=7)  # bench_crawl's enrolled people
    want = {"post": args.posts, "paste": args.pastes, "repost": args.reposts, "products": 1, "customers": 1}
    want = {k: v for k, v in want.items() if k in args.kinds}
    import bench_crawl

    saved = bench_crawl.big_files
    if not set(want) & {"products", "customers"}:
        bench_crawl.big_files = lambda: ["", ""]  # not wanted: seconds to make
    try:
        pages = crawl_pages(args.crawl_pages, people, "realistic")
    finally:
        bench_crawl.big_files = saved
    counts = dict.fromkeys(want, 0)
    for path, body in pages.items():
        kind = _kind(path, body)
        if kind in want and counts[kind] < want[kind]:
            (pages_dir / kind).mkdir(parents=True, exist_ok=True)
            (pages_dir / kind / path.rsplit("/", 1)[-1]).write_bytes(body)
            counts[kind] += 1
    return counts


def _kind(path: str, body: bytes) -> str:
    """The kind of a page of bench_crawl's ``make_pages`` (by its number and first bytes)."""
    if int(path.rsplit("p", 1)[-1]) % 20 == 7:
        return "repost"
    for prefix, kind in ((b"post ", "post"), (b"paste ", "paste"), (b"sku,designation,categorie", "products")):
        if body.startswith(prefix):
            return kind
    return "customers"


def enroll(home: Path, people_n: int, work: Path) -> None:
    from dumpwatch.devkit import synth

    leak = synth.write_csv(synth.generate(people_n, seed=7), work / "leak.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "enroll", str(leak), "--leak",
                    "bench", "--lab-column", "laboratoire"], cwd=ROOT, env=env, check=True, capture_output=True)
    leak.unlink()


def rev_of(code: Path) -> str:
    """The checkout's commit (``+`` when its tracked files were changed since), or its folder's name."""
    rev = subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h"], capture_output=True,
                         text=True, check=False)
    if rev.returncode or not rev.stdout.strip():
        return code.name
    dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return rev.stdout.strip() + ("+" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", type=Path, action="append", help="a dumpwatch checkout to run (repeatable)")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--posts", type=int, default=100, help="5 KB posts scanned (default 100)")
    ap.add_argument("--pastes", type=int, default=20, help="200 KB pastes scanned (default 20)")
    ap.add_argument("--reposts", type=int, default=50, help="small reposts scanned (default 50)")
    ap.add_argument("--crawl-pages", type=int, default=1000, help="the crawl whose pages are chosen from")
    ap.add_argument("--people", type=int, default=5000, help="enrolled synthetic people")
    ap.add_argument("--passes", type=int, default=3, help="passes per round; the best counts (default 3)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of the codes in turn (default 1)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON, not a Markdown table")
    ap.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.passes)

    codes = [c.resolve() for c in (args.code or [ROOT])]
    work = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    try:
        counts = make_pages(work / "pages", args)
        enroll(work / "home", args.people, work)
        best: dict[Path, dict] = {}
        cpu_of: dict[Path, list[float]] = {c: [] for c in codes}
        for round_ in range(args.rounds):
            for code in (codes if round_ % 2 == 0 else codes[::-1]):
                env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
                env["PYTHONPATH"] = str(code)
                proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--passes", str(args.passes),
                                       "--child", str(work / "home"), str(work / "pages")],
                                      cwd=code, env=env, capture_output=True, text=True, check=False)
                if proc.returncode:
                    raise SystemExit(f"{code}: {proc.stderr[-3000:]}")
                res = json.loads(proc.stdout)
                cpu_of[code].append(sum(r["engine_cpu_s"] for r in res.values()))
                print(f"round {round_ + 1} {rev_of(code)}: engine CPU {cpu_of[code][-1]:.2f} s", file=sys.stderr)
                if code not in best:
                    best[code] = res
                else:
                    for kind, r in res.items():
                        b = best[code][kind]
                        b["engine_cpu_s"] = min(b["engine_cpu_s"], r["engine_cpu_s"])
                        b["least_cpu_s"] = min(b["least_cpu_s"], r["least_cpu_s"])
                        if r["findings"] != b["findings"]:
                            raise SystemExit(f"{code}: findings differ between rounds ({kind})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = best[codes[0]]
    same = {kind: all(best[c][kind]["findings"] == first[kind]["findings"] for c in codes) for kind in first}
    report(codes, best, counts, same, args)
    if not all(same.values()):
        raise SystemExit(1)


def report(codes: list[Path], best: dict[Path, dict], counts: dict[str, int], same: dict[str, bool],
           args: argparse.Namespace) -> None:
    revs = {c: rev_of(c) for c in codes}
    rows = []
    for kind in KINDS:
        if kind not in best[codes[0]]:
            continue
        for c in codes:
            r = best[c][kind]
            n = r["pages"]
            verdicts: dict[str, int] = {}
            for f in r["findings"].values():
                verdicts[f["verdict"]] = verdicts.get(f["verdict"], 0) + 1
            rows.append({"code": revs[c], "kind": kind, "pages": n, "kb_per_page": round(r["bytes"] / n / 1e3, 1),
                         "engine_ms_per_page": round(r["engine_cpu_s"] / n * 1e3, 3),
                         "least_ms_per_page": round(r["least_cpu_s"] / n * 1e3, 3),
                         "ratio_to_least": round(r["engine_cpu_s"] / max(r["least_cpu_s"], 1e-9), 1),
                         "ratio_to_first_code": round(r["engine_cpu_s"] / max(best[codes[0]][kind]["engine_cpu_s"],
                                                                              1e-9), 3),
                         "records_seen": sum(f["records_seen"] for f in r["findings"].values()),
                         "verdicts": verdicts, "findings_identical": same[kind]})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"`bench/bench_pages.py {' '.join(sys.argv[1:])}`: CPU per page, best of {args.passes} passes"
          f"{f' and {args.rounds} rounds' if args.rounds > 1 else ''}\n")
    print("| code | page | pages | engine CPU per page | least work | engine / least | / first code "
          "| records seen | verdicts |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['code']} | {TITLES[r['kind']]} | {r['pages']} | {r['engine_ms_per_page']:.2f} ms "
              f"| {r['least_ms_per_page']:.2f} ms | {r['ratio_to_least']:.1f}× | {r['ratio_to_first_code']:.2f} "
              f"| {r['records_seen']:,} | {', '.join(f'{k} {v}' for k, v in sorted(r['verdicts'].items()))} |")
    if len(codes) > 1:
        print("\nfindings identical across " + ", ".join(revs[c] for c in codes) + ": "
              + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()))


if __name__ == "__main__":
    main()
