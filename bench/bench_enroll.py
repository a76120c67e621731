"""Enrollment at the scale of today's leaks (issue 9): enroll N synthetic rows, then scan a repost.

1. Writes a synthetic leak of ``--rows`` rows in the leak's schema (:data:`dumpwatch.devkit.synth.COLUMNS`)
   with a vectorised generator (:func:`write_leak`; Faker-based ``synth.generate`` makes about
   20,000 rows a second, hours for 33 million): valid NIRs (key = 97 - body mod 97, Corsica
   included), French mobiles (unique), emails (unique), names combined from syllables (tens of
   thousands of surnames, as a real population has), birth dates agreeing with the NIR, labs.
   Synthetic only. About one row in ten lacks a phone, one in ten an email (partial contacts).
2. Times ``dumpwatch enroll`` (the real command, ``--workers`` processes) with the peak RSS of its
   process tree (sampled from /proc every 0.1 s: the sum over the tree, and its anonymous part,
   since the index files are memory-mapped) and the index's size on disk.
3. Writes a 1,000,000-row repost while writing the leak (``--repost-rows``): 90 % of it sampled
   from the leak's rows and reformatted (English header, another column order, spaced NIRs,
   international phones, ISO dates, upper-case names), 10 % made-up people (noise); then times
   ``dumpwatch scan --json`` on it against ``csv.reader`` merely parsing it, best of
   ``--repeat`` each side, in the same run, with the scan's peak RSS (tree, anonymous part).

4. With ``--scale-to N``: joins the enrolled index with random filler records up to N (uniform
   fingerprints in the real records' proportions) through the real ``matchers.indexbuild.assemble``
   (:mod:`bench.enrollscale`: the real records spread among the filler, unless ``--front``),
   reports the join's time and peak RSS, and scans the repost against that N-record index (the
   enrolled rows still match): the memory and lookup cost of a 33 M-record index without
   fingerprinting 33 M rows. ``--scan-home HOME``: no enrollment and no join, the scans only,
   against the index already in ``HOME`` (a kept ``--dir``'s ``home``: what a first run built).
5. With ``--code DIR`` (repeatable): the scans are made by each of these checkouts in turn
   (``git archive REV | tar -x -C DIR``), alternated, on the same index; each one's CPU, peak RSS
   and whether its scan JSON is the first's go to stderr (the scan's memory before and after a
   change, at each index size). ``--scan-workers N`` sets ``dumpwatch scan --workers``.
6. With ``--against REV``: only the enrollment, by git revision ``REV`` (exported to a temporary
   directory) and by this tree, alternately, ``--repeat`` rounds: the best wall and CPU time of
   each side, CPU per row and the head/base ratios (the figure to trust on a shared machine).

Usage:  .venv/bin/python bench/bench_enroll.py [--rows 1000000] [--repost-rows 1000000]
            [--workers N] [--repeat 3] [--dir DIR] [--keep] [--reuse] [--generate-only]
            [--scale-to 33000000 [--front]] [--scan-home HOME] [--code DIR]... [--scan-workers N]
            [--against REV]
Prints a Markdown table row for docs/benchmarks.md ("Enrollment at scale (issue 9)") and a JSON line.
Large files go to ``--dir`` (default a temporary directory, removed unless ``--keep``);
``--generate-only`` writes the files and stops (with ``--keep``: a later ``--reuse`` run uses them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.enrollscale import assemble_scaled  # noqa: E402
from dumpwatch.devkit import synth  # noqa: E402

CSV_BASELINE = ("import csv, sys\nwith open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
                "    for r in csv.reader(f): pass")
SYLLABLES = ("ber", "tin", "mar", "lo", "du", "pon", "gau", "thi", "le", "ro", "quer", "nan", "bri",
             "guen", "ker", "ven", "cha", "mon", "dal", "fer", "ri", "sa", "vi", "go", "las", "mo",
             "ra", "nel", "cor", "bou", "gar", "pel", "san", "tou", "mer", "lin", "ha", "jo", "pi", "ca")
FIRST_M = ("Jean", "Pierre", "Michel", "André", "Philippe", "Alain", "Jacques", "Bernard", "Louis",
           "Nicolas", "Christophe", "Daniel", "Patrick", "Thomas", "Julien", "Yann", "Erwan", "Loïc",
           "Gaël", "Mathis", "Hugo", "Lucas", "Léo", "Gabriel", "Arthur", "Paul", "Maël", "Noé",
           "François", "Hervé", "Ronan", "Tanguy", "Kévin", "Sébastien", "Olivier", "Romain")
FIRST_F = ("Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Anne", "Monique",
           "Sophie", "Julie", "Camille", "Léa", "Manon", "Emma", "Chloé", "Inès", "Louise", "Jade",
           "Anaïs", "Gwenaëlle", "Maïwenn", "Nolwenn", "Morgane", "Élodie", "Aurélie", "Céline",
           "Sandrine", "Véronique", "Brigitte", "Hélène", "Solène", "Annaïg", "Clémence", "Zoé")
STREETS = ("rue de la Gare", "rue du Port", "avenue Jean Jaurès", "place de l'Église", "rue de Brest",
           "boulevard de la Liberté", "impasse des Mouettes", "chemin de Kerlann", "rue Victor Hugo",
           "allée des Chênes", "route de Vannes", "quai des Indes")
CITIES = ("Lorient", "Vannes", "Pontivy", "Quimper", "Brest", "Lannion", "Saint-Brieuc", "Ploërmel",
          "Auray", "Hennebont", "Dinan", "Rennes", "Nantes", "Paris")
LABS = synth.LABS + tuple(f"LBM Bretagne Sud site {i}" for i in range(1, 19))
DEPTS = np.array(list(synth.DEPARTMENTS))
DEPT_P = np.array(list(synth.DEPARTMENTS.values()), dtype=float) / sum(synth.DEPARTMENTS.values())
DEPT_NUM = np.array([int(d.replace("2A", "19").replace("2B", "18")) for d in DEPTS], dtype=np.int64)
DOCTORS = tuple(f"Dr {a.capitalize()}{b}" for a in SYLLABLES[:20] for b in SYLLABLES[20:30])
PHONE_MUL = 48_271  # coprime with 2e8: phones are a permutation of the row numbers (unique)
REPOST_COLUMNS = ("last_name", "first_name", "birth_date", "phone", "mail", "ssn", "lab", "zip")


FIRSTS = FIRST_M + FIRST_F
FIRSTS_ASCII = [synth._ascii(f) for f in FIRSTS]


def _surnames() -> tuple[list[str], list[str]]:
    """Surnames of two or three syllables (17,600), and their ASCII forms for emails."""
    two = [a + b for a in SYLLABLES for b in SYLLABLES]
    three = [a + b + c for a in SYLLABLES for b in SYLLABLES[:20] for c in SYLLABLES[:20]]
    names = [s.capitalize() for s in two + three]
    return names, [synth._ascii(s) for s in names]


def _chunk(rng: np.random.Generator, start: int, n: int, surnames: tuple[list[str], list[str]]) -> dict[str, list]:
    """``n`` people, row numbers ``start``…: every field as a list of strings (leak formats)."""
    idx = np.arange(start, start + n, dtype=np.int64)
    sex = rng.integers(1, 3, n)
    year, month, day = rng.integers(1930, 2016, n), rng.integers(1, 13, n), rng.integers(1, 29, n)
    dept = rng.choice(len(DEPTS), n, p=DEPT_P)
    commune, order = rng.integers(1, 991, n), rng.integers(1, 1000, n)
    body = (((sex * 100 + year % 100) * 100 + month) * 100 + DEPT_NUM[dept]) * 10**6 + commune * 1000 + order
    key = 97 - body % 97
    digits = [f"{b:013d}" for b in body.tolist()]
    dcode = DEPTS[dept].tolist()
    nir = [f"{d[:5]}{c}{d[7:]}{k:02d}" for d, c, k in zip(digits, dcode, key.tolist())]
    nsn = 600_000_000 + (idx * PHONE_MUL + 12_345) % 200_000_000
    phone = [f"0{p}" for p in nsn.tolist()]
    spaced = rng.random(n) < 0.5
    phone = [" ".join(p[i:i + 2] for i in range(0, 10, 2)) if s else p for p, s in zip(phone, spaced.tolist())]
    no_phone, no_mail = rng.random(n) < 0.1, rng.random(n) < 0.1
    phone = ["" if x else p for p, x in zip(phone, no_phone.tolist())]
    fi = (rng.integers(0, 10**6, n) % np.where(sex == 1, len(FIRST_M), len(FIRST_F))
          + np.where(sex == 1, 0, len(FIRST_M))).tolist()
    first = [FIRSTS[i] for i in fi]
    li = rng.integers(0, len(surnames[0]), n).tolist()
    upper = rng.random(n) < 0.5
    last_col = [surnames[0][i].upper() if u else surnames[0][i] for i, u in zip(li, upper.tolist())]
    domains = rng.integers(0, len(synth.MAIL_DOMAINS), n).tolist()
    mail = ["" if x else f"{FIRSTS_ASCII[f]}.{surnames[1][s]}{i}@{synth.MAIL_DOMAINS[d]}" for f, s, i, d, x in
            zip(fi, li, idx.tolist(), domains, no_mail.tolist())]
    dob = [f"{d:02d}/{m:02d}/{y}" for d, m, y in zip(day.tolist(), month.tolist(), year.tolist())]
    pc_dept = [c if c.isdigit() and c not in ("99", "75") else "56" for c in dcode]
    postcode = [f"{c}{r:03d}" for c, r in zip(pc_dept, rng.integers(0, 1000, n).tolist())]

    def pick(pool, p_empty=0.0):
        vals = [pool[i] for i in rng.integers(0, len(pool), n).tolist()]
        if p_empty:
            vals = ["" if e else v for v, e in zip(vals, (rng.random(n) < p_empty).tolist())]
        return vals

    return {
        "laboratoire": pick(LABS), "nom": last_col, "prenom": first, "sexe": ["M" if s == 1 else "F" for s in sex.tolist()],
        "date_naissance": dob,
        "adresse": [f"{a} {s}" for a, s in zip(rng.integers(1, 121, n).tolist(), pick(STREETS))],
        "code_postal": postcode, "ville": pick(CITIES), "telephone": phone, "email": mail, "nir": nir,
        "groupe_sanguin": pick(synth.BLOOD, 0.6), "medecin_traitant": pick(DOCTORS, 0.4),
        "mutuelle": pick(synth.INSURERS, 0.5), "commentaire": pick(synth.COMMENTS),
        "traitement": pick(synth.TREATMENTS), "pathologie": pick(synth.PATHOLOGIES),
        "date_prelevement": [f"{d:02d}/{m:02d}/{y}" for d, m, y in zip(
            rng.integers(1, 29, n).tolist(), rng.integers(1, 13, n).tolist(), rng.integers(2015, 2021, n).tolist())],
    }


def _repost_rows(c: dict[str, list], rows: np.ndarray) -> list[str]:
    """Rows of a chunk as a reposter reformats them (comma-separated, :data:`REPOST_COLUMNS`)."""
    out = []
    for i in rows.tolist():
        d = c["date_naissance"][i]
        nir, phone = c["nir"][i], c["telephone"][i].replace(" ", "")
        if i % 2:
            nir = synth.spaced_nir(nir)
        if phone and i % 3 == 0:
            phone = f"+33 {phone[1]} {phone[2:4]} {phone[4:6]} {phone[6:8]} {phone[8:]}"
        out.append(f"{c['nom'][i].upper()},{c['prenom'][i]},{d[6:]}-{d[3:5]}-{d[:2]},{phone},"
                   f"{c['email'][i]},{nir},{c['laboratoire'][i]},{c['code_postal'][i]}\n")
    return out


def write_leak(path: Path, rows: int, repost: Path | None = None, repost_rows: int = 0, seed: int = 1,
               chunk: int = 200_000) -> None:
    """The synthetic leak (``;``-separated, header :data:`synth.COLUMNS`) and, beside it, a repost:
    ``repost_rows`` rows, 90 % sampled from the leak and reformatted, 10 % made-up people."""
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng(seed + 1)
    surnames = _surnames()
    take = min(1.0, 0.9 * repost_rows / rows) if repost else 0.0
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out, \
            (repost.open("w", encoding="utf-8", newline="") if repost else open(os.devnull, "w")) as rep:
        out.write(";".join(synth.COLUMNS) + "\n")
        rep.write(",".join(REPOST_COLUMNS) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            c = _chunk(rng, start, n, surnames)
            cols = [c[k] for k in synth.COLUMNS]
            out.writelines(";".join(r) + "\n" for r in zip(*cols))
            if repost:
                picked = np.flatnonzero(rng.random(n) < take)
                rep.writelines(_repost_rows(c, picked))
                written += len(picked)
                # made-up people: row numbers far above the leak's, so their phones and emails differ
                k = max(0, min(repost_rows - written, round(len(picked) / 9)))
                if start + n >= rows:
                    k = max(0, repost_rows - written)
                if k:
                    other = _chunk(noise_rng, 150_000_000 + start, k, surnames)
                    rep.writelines(_repost_rows(other, np.arange(k)))
                    written += k


class TreeSampler:
    """Peak RSS of a process and its descendants (sum over the tree), and of its anonymous part."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_anon = pid, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _children() -> dict[int, list[int]]:
        kids: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                kids.setdefault(ppid, []).append(int(d))
        return kids

    def _sample(self) -> None:
        kids, todo, rss, anon = self._children(), [self.pid], 0, 0
        while todo:
            p = todo.pop()
            todo.extend(kids.get(p, []))
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1])
            except OSError:
                continue
        self.peak, self.peak_anon = max(self.peak, rss), max(self.peak_anon, anon)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self._sample()

    def close(self) -> tuple[int, int]:
        self.stop.set()
        self.thread.join()
        return self.peak, self.peak_anon  # KiB


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Wall and CPU time (the command's workers included), peak RSS of its tree, stdout."""
    c, t = _cpu(), time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    out, err = proc.communicate()
    wall, cpu = time.perf_counter() - t, _cpu() - c
    rss, anon = sampler.close()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall": wall, "cpu": cpu, "rss_mb": rss / 1024, "anon_mb": anon / 1024, "out": out}


def best(runs: list[dict]) -> dict:
    b = min(runs, key=lambda r: r["wall"])
    return {**b, "cpu": min(r["cpu"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs),
            "anon_mb": max(r["anon_mb"] for r in runs)}


def _comparable(out: str) -> dict:
    """The scan JSON without its input's path."""
    finding = json.loads(out.splitlines()[0])
    finding.pop("input", None)
    return finding


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def compare(rev: str, leak: Path, work: Path, rows: int, workers: int, rounds: int, env: dict) -> None:
    """``dumpwatch enroll`` of one file by git revision ``rev`` (exported to a temporary directory, run
    with this interpreter) and by this tree, alternately, ``rounds`` times: best wall and CPU of each."""
    base = Path(tempfile.mkdtemp(prefix="bench-enroll-base-"))
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        runs: dict[Path, list[dict]] = {base: [], ROOT: []}
        for r in range(rounds):
            for tree in runs:
                home = work / f"home-{'base' if tree == base else 'head'}"
                shutil.rmtree(home, ignore_errors=True)
                runs[tree].append(run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "enroll", str(leak),
                                       "--leak", "big", "--lab-column", "laboratoire", "--workers", str(workers)],
                                      {**env, "PYTHONPATH": str(tree)}, cwd=tree))
                shutil.rmtree(home, ignore_errors=True)
                print(f"round {r + 1} {'base' if tree == base else 'head'}: {json.dumps(runs[tree][-1])}", file=sys.stderr)
        b, h = best(runs[base]), best(runs[ROOT])
        us = {k: 1e6 * x["cpu"] / rows for k, x in (("base", b), ("head", h))}
        print(json.dumps({"rows": rows, "workers": workers, "rounds": rounds, "base": rev, "base_wall_s": b["wall"],
                          "base_cpu_s": b["cpu"], "head_wall_s": h["wall"], "head_cpu_s": h["cpu"],
                          "base_us_per_row": us["base"], "head_us_per_row": us["head"],
                          "base_rss_mb": b["rss_mb"], "head_rss_mb": h["rss_mb"]}))
        print(f"| {rows:,} | {rev}: {b['wall']:.1f} s wall, {b['cpu']:.1f} s CPU ({us['base']:.1f} µs/row) | head: "
              f"{h['wall']:.1f} s wall, {h['cpu']:.1f} s CPU ({us['head']:.1f} µs/row) | CPU {h['cpu'] / b['cpu']:.2f}×, "
              f"wall {h['wall'] / b['wall']:.2f}× | {b['rss_mb']:.0f} MB / {h['rss_mb']:.0f} MB |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repost-rows", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the generated files and the index")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="use the files a --keep run left in --dir for the same --rows and --repost-rows")
    ap.add_argument("--scale-to", type=int, default=0,
                    help="then join the enrolled index with random filler records up to this many "
                         "(the real assemble step at that size) and scan the repost against it")
    ap.add_argument("--code", type=Path, action="append",
                    help="scan with the engine of this checkout (repeatable; `git archive REV | tar -x -C DIR`): "
                         "each revision's scans alternate on the same index, one table row each")
    ap.add_argument("--scan-workers", type=int, help="`dumpwatch scan --workers` (default: the scan's own)")
    ap.add_argument("--against", metavar="REV",
                    help="only time the enrollment, by git revision REV and by this tree alternately "
                         "(--repeat rounds, best of each side)")
    ap.add_argument("--front", action="store_true",
                    help="with --scale-to: the real records before the filler (the figures before 2026-12-01)")
    ap.add_argument("--scan-home", type=Path, help="only the scans, against the index in this home")
    ap.add_argument("--assemble-home", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.assemble_home:
        return assemble_scaled(a.assemble_home, a.scale_to, spread=not a.front)
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-enroll-"))
    work.mkdir(parents=True, exist_ok=True)
    leak, repost, home = work / "leak.csv", work / "repost.csv", a.scan_home or work / "home"
    if not a.scan_home:
        shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "DUMPWATCH_KEY": "5e" * 32, "PYTHONPATH": str(ROOT)}
    done = work / f"generated-{a.rows}-{a.repost_rows}"
    try:
        t, c = time.perf_counter(), time.process_time()
        if not (a.reuse and done.exists()):
            write_leak(leak, a.rows, repost, a.repost_rows)
            done.touch()
        gen = {"wall": time.perf_counter() - t, "cpu": time.process_time() - c}
        if a.generate_only:
            return
        print(f"generated {a.rows} rows ({leak.stat().st_size / 1e9:.2f} GB) and a {a.repost_rows}-row repost "
              f"in {gen['wall']:.0f} s", file=sys.stderr)
        if a.against:
            return compare(a.against, leak, work, a.rows, a.workers, a.repeat, env)
        dw = [sys.executable, "-m", "dumpwatch.cli", "--home", str(home)]
        codes = [c.resolve() for c in (a.code or [ROOT])]
        revs = {c: subprocess.run(["git", "-C", str(c), "log", "-1", "--format=%h"], capture_output=True,
                                  text=True).stdout.strip() or c.name for c in codes}
        scan_cmd = dw + ["scan", str(repost), "--json"] + (["--workers", str(a.scan_workers)] if a.scan_workers else [])

        def scan_all() -> tuple[dict[Path, dict], dict]:
            """Best of ``--repeat`` scans per revision (alternated) and of ``csv.reader``; one line per
            revision on stderr: CPU, peak RSS of the scan's process tree, and whether its JSON is the first's."""
            runs: dict[Path, list[dict]] = {c: [] for c in codes}
            base = []
            for i in range(a.repeat):
                base.append(run([sys.executable, "-c", CSV_BASELINE, str(repost)]))
                for c in (codes if i % 2 == 0 else codes[::-1]):
                    runs[c].append(run(scan_cmd, {**env, "PYTHONPATH": str(c)}, cwd=c))
            bests = {c: best(r) for c, r in runs.items()}
            first = _comparable(bests[codes[0]]["out"])
            for c, r in bests.items():
                print(f"scan by {revs[c]}: {r['wall']:.2f} s wall, CPU {r['cpu']:.2f} s (csv.reader CPU "
                      f"{best(base)['cpu']:.2f} s), peak RSS {r['rss_mb']:.0f} MB ({r['anon_mb']:.0f} MB anon.), "
                      f"scan JSON same as {revs[codes[0]]}: {_comparable(r['out']) == first}", file=sys.stderr)
            return bests, best(base)

        if a.scan_home:
            per_code, b = scan_all()
            scan = per_code[codes[0]]
            finding = json.loads(scan["out"].splitlines()[0])
            records = json.loads((home / "index" / "big" / "meta.json").read_text())["records"]
            print(json.dumps({"index_records": records, "scan_wall_s": scan["wall"], "scan_cpu_s": scan["cpu"],
                              "csv_wall_s": b["wall"], "csv_cpu_s": b["cpu"], "ratio_cpu": scan["cpu"] / b["cpu"],
                              "scan_rss_mb": scan["rss_mb"], "scan_anon_mb": scan["anon_mb"],
                              "matched": finding["matched_records"], "records_seen": finding["records_seen"]}))
            print(f"| {records:,} (index in {home}) | {scan['wall']:.2f} s / {b['wall']:.2f} s = "
                  f"{scan['wall'] / b['wall']:.2f}× (CPU {scan['cpu']:.2f} s / {b['cpu']:.2f} s = "
                  f"{scan['cpu'] / b['cpu']:.2f}×) | {scan['rss_mb']:.0f} MB ({scan['anon_mb']:.0f} MB anon.) | "
                  f"{finding['verdict']}, {finding['matched_records']:,} of {finding['records_seen']:,} |")
            return
        enroll = run(dw + ["enroll", str(leak), "--leak", "big", "--lab-column", "laboratoire",
                           "--workers", str(a.workers)], env)
        print(enroll["out"].strip(), file=sys.stderr)
        size = du(home / "index" / "big")
        per_code, b = scan_all()
        scan = per_code[codes[0]]
        finding = json.loads(scan["out"].splitlines()[0])
        result = {
            "rows": a.rows, "leak_gb": leak.stat().st_size / 1e9, "generate_s": gen["wall"],
            "enroll_wall_s": enroll["wall"], "enroll_cpu_s": enroll["cpu"], "enroll_rss_mb": enroll["rss_mb"],
            "enroll_anon_mb": enroll["anon_mb"], "index_mb": size / 1e6,
            "repost_rows": a.repost_rows, "scan_wall_s": scan["wall"], "scan_cpu_s": scan["cpu"],
            "csv_wall_s": b["wall"], "csv_cpu_s": b["cpu"], "ratio_wall": scan["wall"] / b["wall"],
            "ratio_cpu": scan["cpu"] / b["cpu"], "scan_rss_mb": scan["rss_mb"], "scan_anon_mb": scan["anon_mb"],
            "verdict": finding["verdict"], "matched": finding["matched_records"],
            "records_seen": finding["records_seen"], "workers": a.workers,
        }
        print(json.dumps(result))
        print(f"| {a.rows:,} | {result['leak_gb']:.2f} GB | {enroll['wall']:.0f} s ({enroll['cpu']:.0f} s CPU) | "
              f"{enroll['rss_mb']:.0f} MB ({enroll['anon_mb']:.0f} MB anon.) | {size / 1e6:.0f} MB | "
              f"{scan['wall']:.2f} s / {b['wall']:.2f} s = {result['ratio_wall']:.2f}× "
              f"(CPU {result['ratio_cpu']:.2f}×) | {scan['rss_mb']:.0f} MB ({scan['anon_mb']:.0f} MB anon.) | "
              f"{finding['verdict']}, {finding['matched_records']:,} of {finding['records_seen']:,} |")
        if a.scale_to > a.rows:
            step = run([sys.executable, __file__, "--assemble-home", str(home), "--scale-to", str(a.scale_to)]
                       + (["--front"] if a.front else []), env)
            took = json.loads(step["out"].splitlines()[-1])
            size = du(home / "index" / "big")
            per_code, b = scan_all()
            scan = per_code[codes[0]]
            finding = json.loads(scan["out"].splitlines()[0])
            scaled = {**took, "scale_to": a.scale_to, "assemble_rss_mb": step["rss_mb"],
                      "assemble_anon_mb": step["anon_mb"], "index_mb": size / 1e6, "scan_wall_s": scan["wall"],
                      "scan_cpu_s": scan["cpu"], "csv_wall_s": b["wall"], "csv_cpu_s": b["cpu"],
                      "ratio_wall": scan["wall"] / b["wall"], "ratio_cpu": scan["cpu"] / b["cpu"],
                      "scan_rss_mb": scan["rss_mb"], "scan_anon_mb": scan["anon_mb"], "verdict": finding["verdict"],
                      "matched": finding["matched_records"], "records_seen": finding["records_seen"]}
            print(json.dumps(scaled))
            print(f"| {a.scale_to:,} ({a.rows:,} enrolled + filler) | assemble {took['assemble_wall_s']:.0f} s "
                  f"({took['assemble_cpu_s']:.0f} s CPU) | {took['assemble_peak_rss_mb']:.0f} MB (the join alone) | "
                  f"{size / 1e6:.0f} MB | {scan['wall']:.2f} s / {b['wall']:.2f} s = {scaled['ratio_wall']:.2f}× "
                  f"(CPU {scaled['ratio_cpu']:.2f}×) | {scan['rss_mb']:.0f} MB ({scan['anon_mb']:.0f} MB anon.) | "
                  f"{finding['verdict']}, {finding['matched_records']:,} of {finding['records_seen']:,} |")
    finally:
        if not a.keep and not a.scan_home:  # a home given is never removed, nor what is beside it
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
