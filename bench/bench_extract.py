"""Extraction benchmark: matchers.extract vs bare parsers on the same ~80 MB synthetic leak.

Figures are ratios against baselines measured in the same run, best of N on each side, the
runs interleaved:

- delimited (``;`` CSV, 491,840 rows): iterating every row of ``extract`` vs ``csv.reader`` over
  the file opened with ``newline=""`` (the floor a scan is compared with);
- the same file quoted (every cell in ``"``): the path with the stray-quote guard;
- gzip of it: ``extract`` vs ``gzip.open`` + ``csv.reader``;
- JSON array of the same records: ``extract`` (flat dict[str, str] records) vs ``ijson.items``.

Usage:  .venv/bin/python bench/bench_extract.py [--rows 491840] [--repeat 5] [--out bench/out]
Prints a Markdown table for docs/extraction.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dumpwatch import synth  # noqa: E402
from matchers.extract import extract  # noqa: E402


def best_pair(a: Callable[[], int], b: Callable[[], int], repeat: int
              ) -> tuple[float, int, float, int]:
    """Best time of ``a`` and of ``b``, runs interleaved so machine noise hits both alike."""
    times_a, times_b, result_a, result_b = [], [], 0, 0
    for _ in range(repeat):
        t = time.perf_counter()
        result_a = a()
        times_a.append(time.perf_counter() - t)
        t = time.perf_counter()
        result_b = b()
        times_b.append(time.perf_counter() - t)
    return min(times_a), result_a, min(times_b), result_b


def rows_of_extract(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for table in extract(fh, str(path)):
            for _ in table.rows:
                n += 1
    return n


def write_inputs(out: Path, n_rows: int) -> dict[str, Path]:
    people = synth.generate(20_000, seed=1)
    header, rows = synth.transform(people)
    paths = {"csv": out / "leak.csv", "quoted": out / "leak-quoted.csv", "json": out / "leak.json"}
    repeats, rest = divmod(n_rows, len(rows))
    for key, quoting in (("csv", csv.QUOTE_MINIMAL), ("quoted", csv.QUOTE_ALL)):
        with paths[key].open("w", encoding="utf-8", newline="") as fh:
            fh.write(synth.csv_text(header, [], ";", quoting))
            body = synth.csv_text(None, rows, ";", quoting)
            for _ in range(repeats):
                fh.write(body)
            fh.write(synth.csv_text(None, rows[:rest], ";", quoting))
    with paths["json"].open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        records = ",\n".join(json.dumps(dict(zip(header, r)), ensure_ascii=False) for r in rows)
        for i in range(repeats):
            fh.write(records + (",\n" if i < repeats - 1 or rest else "\n"))
        if rest:
            fh.write(",\n".join(json.dumps(dict(zip(header, r)), ensure_ascii=False) for r in rows[:rest]))
        fh.write("\n]\n")
    paths["gzip"] = out / "leak.csv.gz"
    with paths["csv"].open("rb") as src, gzip.open(paths["gzip"], "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=491_840)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    paths = write_inputs(args.out, args.rows)
    csv.field_size_limit(16 * 1024 * 1024)

    def bare_csv(path: Path) -> Callable[[], int]:
        def run() -> int:
            with path.open(newline="", encoding="utf-8") as fh:
                return sum(1 for _ in csv.reader(fh, delimiter=";")) - 1
        return run

    def bare_gzip() -> int:
        with gzip.open(paths["gzip"], "rt", newline="", encoding="utf-8") as fh:
            return sum(1 for _ in csv.reader(fh, delimiter=";")) - 1

    def bare_json() -> int:
        import ijson

        with paths["json"].open("rb") as fh:
            return sum(1 for _ in ijson.items(fh, "item"))

    cases = [
        ("delimited `;`", paths["csv"], bare_csv(paths["csv"]), "csv.reader"),
        ("delimited, every cell quoted", paths["quoted"], bare_csv(paths["quoted"]), "csv.reader"),
        ("gzip of the `;` file", paths["gzip"], bare_gzip, "gzip.open + csv.reader"),
        ("JSON array", paths["json"], bare_json, "ijson.items (no flattening)"),
    ]
    print(f"| input ({args.rows:,} records) | size | baseline | baseline s | extract s | ratio |")
    print("|---|---|---|---|---|---|")
    for label, path, baseline, what in cases:
        base_s, base_n, ext_s, ext_n = best_pair(baseline, lambda p=path: rows_of_extract(p),
                                                 args.repeat)
        if base_n != ext_n or ext_n != args.rows:
            raise SystemExit(f"{label}: row counts differ (baseline {base_n}, extract {ext_n})")
        size = path.stat().st_size / 1024 / 1024
        print(f"| {label} | {size:.0f} MiB | {what} | {base_s:.2f} | {ext_s:.2f} | "
              f"{ext_s / base_s:.2f}× |")


if __name__ == "__main__":
    main()
