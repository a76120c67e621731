"""Extraction benchmark: matchers.extract vs bare parsers on the same ~80 MB synthetic leak.

Figures are ratios against baselines measured in the same run, best of N on each side, the
runs interleaved:

- delimited (``;`` CSV, 491,840 rows): iterating every row of ``extract`` vs ``csv.reader`` over
  the file opened with ``newline=""`` (the floor a scan is compared with);
- the same file quoted (every cell in ``"``): the path with the stray-quote guard;
- gzip of it: ``extract`` vs ``gzip.open`` + ``csv.reader``;
- JSON array of the same records: ``extract`` (flat dict[str, str] records) vs ``ijson.items``.

``--html`` runs the HTML cases instead: a ~5 MB page holding one data table (synth's ``html``
shape) and a ~50 KB forum thread page (chrome, scripts, 20 posts, one with a key-value dump),
each through ``extract`` (every table's rows consumed) vs a bare ``lxml.html`` parse of the same
bytes (the floor any HTML reading pays).

Usage:  .venv/bin/python bench/bench_extract.py [--rows 491840] [--repeat 5] [--out bench/out]
        .venv/bin/python bench/bench_extract.py --html [--repeat 5]
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

from dumpwatch.devkit import synth  # noqa: E402
from matchers.extract import extract, extract_bytes  # noqa: E402


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


FORUM_POST = """<div id="p{pid}" class="post has-profile bg{bg}"><div class="inner">
<dl class="postprofile"><dt><a href="./memberlist.php?mode=viewprofile&amp;u={uid}" class="username">user{uid}</a></dt>
<dd class="profile-rank">Membre</dd><dd class="profile-posts"><strong>Messages :</strong> {uid}1</dd></dl>
<div class="postbody"><div id="post_content{pid}"><h3><a href="./viewtopic.php?p={pid}#p{pid}">Re: base labo</a></h3>
<p class="author"><span><a href="./viewtopic.php?p={pid}">Message</a> par <strong>user{uid}</strong> &raquo; </span>mer. 24 févr. 2021 10:{pid:02d}</p>
<div class="content">{content}</div>
<div class="signature">-- <em>sig {uid}</em> <a href="https://example.invalid/{uid}">lien</a></div>
</div></div><div class="back2top"><a href="#top" class="top">Haut</a></div></div></div><hr class="divider" />
"""


def forum_page(people: list[dict[str, str]]) -> str:
    """A ~50 KB phpBB-like thread page: chrome, inline script and style, 20 posts of chatter,
    one post holding a key-value dump of 12 synthetic patients."""
    header, rows = synth.transform(people[:12], columns=["nom", "prenom", "nir", "telephone"])
    dump = "<br>\n".join("<br>\n".join(f"{k}: {v}" for k, v in zip(header, r)) + "<br>"
                         for r in rows)
    chatter = ("Quelqu'un a la suite ? Le lien est mort depuis hier, merci de <b>réuploader</b> "
               "sur un autre hébergeur. <a href='https://example.invalid/x'>voir ici</a>. ") * 3
    posts = "".join(FORUM_POST.format(pid=i, bg=1 + i % 2, uid=10 + i,
                                      content=dump if i == 7 else f"<p>{chatter}</p>")
                    for i in range(20))
    script = ("<script>var phpbb = {};"
              + "".join(f"function f{i}(a){{return a + {i};}}" for i in range(300)) + "</script>")
    style = "<style>" + "".join(f".c{i}{{color:#333;margin:0 auto}}" for i in range(400)) + "</style>"
    nav = "".join(f"<li><a href='./viewforum.php?f={i}'>Forum {i}</a></li>" for i in range(40))
    return (f"<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'><title>base labo</title>"
            f"{style}{script}</head><body><div id='wrap'><header><div class='navbar'><ul>{nav}</ul>"
            f"</div></header><div id='page-body' role='main'><h2>base labo 2021</h2>{posts}</div>"
            f"<footer>Powered by phpBB</footer></div></body></html>")


def table_page(target_bytes: int) -> str:
    """synth's ``html`` shape (a page holding one data table) of about ``target_bytes``."""
    people = synth.generate(4_000, seed=2)
    header, rows = synth.transform(people)
    one = len(synth.render(header, rows, "html").encode("utf-8"))
    copies = max(1, round(target_bytes / one))
    return synth.render(header, list(rows) * copies, "html")


def bench_html(repeat: int) -> None:
    import lxml.html

    def rows_of(page: bytes, name: str, times: int) -> Callable[[], int]:
        def run() -> int:
            n = 0
            for _ in range(times):
                for table in extract_bytes(page, name):
                    for _ in table.rows:
                        n += 1
            return n
        return run

    def bare(page: bytes, times: int) -> Callable[[], int]:
        def run() -> int:
            n = 0
            for _ in range(times):
                n += len(lxml.html.document_fromstring(page))
            return n
        return run

    forum = forum_page(synth.generate(12, seed=3)).encode("utf-8")
    big = table_page(5 * 1024 * 1024).encode("utf-8")
    print("| HTML input | size | lxml.html parse s | extract s | ratio | extract MiB/s |")
    print("|---|---|---|---|---|---|")
    for label, page, times in (("one data table (synth `html`)", big, 1),
                               ("forum thread page, ×100", forum, 100)):
        base_s, _, ext_s, n = best_pair(bare(page, times), rows_of(page, "page.html", times),
                                        repeat)
        if n == 0:
            raise SystemExit(f"{label}: extract found no rows")
        size = len(page) / 1024
        unit = f"{size / 1024:.1f} MiB" if size > 1024 else f"{size:.0f} KiB"
        print(f"| {label} | {unit} | {base_s:.3f} | {ext_s:.3f} | {ext_s / base_s:.1f}× | "
              f"{len(page) * times / ext_s / 1024 / 1024:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=491_840)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--html", action="store_true", help="run the HTML cases only")
    args = parser.parse_args()
    if args.html:
        bench_html(args.repeat)
        return
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
