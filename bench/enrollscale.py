"""An enrolled index scaled up with random filler records (``bench/bench_enroll.py --scale-to N``).

Enrolling 33 million rows takes minutes of every core; the cost of *scanning against* an index of
that size does not need them fingerprinted. :func:`assemble_scaled` writes the records of a real
enrolled index back as parts (:class:`matchers.indexbuild.IndexPart`'s files), adds parts of
filler records (uniform random fingerprints, as keyed fingerprints are, in the real records'
proportions of kinds, bigrams and labs: never matched by anything), and joins them all with the
real :func:`matchers.indexbuild.assemble` into the index the scan then reads.

``spread`` (the default): the real records are cut into slices laid between the filler parts, so
that their record numbers, hence the per-record arrays a scan reads for each verified record
(salts, salted fingerprints, labs, bigrams), are spread over the whole index as in a real leak of
that size. Without it (``--front``, what the figures before 2026-12-01 used) they all sit in the
first pages of each per-record array, which a scan then reads from the cache: a faster, flattering
scan.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np


def _index_as_parts(index_dir: Path, stage: Path, bits: int, slices: int) -> tuple[dict, list]:
    """A saved index's records written back as ``slices`` :class:`~matchers.indexbuild.IndexPart`
    directories (records in order, strong fingerprints renumbered within each slice)."""
    from matchers.index import LeakIndex
    from matchers.indexbuild import _STRONG, PartSummary

    idx = LeakIndex.load(index_dir)
    n = len(idx)
    arrays = {k: np.asarray(v) for k, v in idx.arrays.items()}
    e = np.empty(len(arrays["strong_fp"]), dtype=_STRONG)
    for k in ("fp", "rec", "kind"):
        e[k] = arrays[f"strong_{k}"]
    e = e[np.argsort(e["rec"], kind="stable")]  # by record, to cut it into slices
    cuts = np.linspace(0, n, slices + 1).astype(np.int64)
    ends = np.searchsorted(e["rec"], cuts)
    off = arrays["gram_off"]
    parts = []
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
        part = stage / f"real-{i}"
        part.mkdir(parents=True)
        for name in ("salt", "name", "dob", "postcode", "surname", "first_name", "lab", "row"):
            arrays[name][lo:hi].tofile(part / f"{name}.bin")
        arrays["gram"][off[lo]:off[hi]].tofile(part / "gram.bin")
        np.diff(off[lo:hi + 1]).astype("<u4").tofile(part / "gram_n.bin")
        s = e[ends[i]:ends[i + 1]].copy()
        s["rec"] -= np.uint32(lo)
        b = (s["fp"] >> np.uint64(64 - bits)).astype(np.intp)
        order = np.argsort(b, kind="stable")
        bucket_ends = np.cumsum(np.bincount(b, minlength=1 << bits))
        for k in range(1 << bits):
            s[order[(bucket_ends[k - 1] if k else 0):bucket_ends[k]]].tofile(part / f"strong-{k:03d}.bin")
        labs = np.bincount(arrays["lab"][lo:hi], minlength=len(idx.labs))
        kinds = np.bincount(s["kind"], minlength=len(idx.meta["kind_counts"]))
        parts.append(PartSummary(part, int(hi - lo), len(s), int(off[hi] - off[lo]), tuple(idx.labs),
                                 {idx.labs[j]: int(c) for j, c in enumerate(labs) if c},
                                 tuple(int(x) for x in kinds), bits))
    return idx.meta, parts


def _filler_part(part: Path, n: int, labs: tuple[str, ...], kinds: list[float], grams_per: float, bits: int,
                 seed: int):
    """``n`` records of random fingerprints (uniform, as keyed fingerprints are) in the real
    records' proportions of kinds, bigrams and labs: only for the size of an index, never matched."""
    from matchers.indexbuild import _STRONG, PartSummary

    rng = np.random.default_rng(seed)
    part.mkdir(parents=True)
    for name in ("salt", "name", "dob", "postcode", "surname", "first_name"):
        rng.integers(0, 2**64, n, dtype=np.uint64).tofile(part / f"{name}.bin")
    lab = rng.integers(0, len(labs), n).astype("<u2")
    lab.tofile(part / "lab.bin")
    np.arange(1, n + 1, dtype="<u4").tofile(part / "row.bin")
    gram_n = rng.poisson(grams_per, n).astype("<u4")
    gram_n.tofile(part / "gram_n.bin")
    rng.integers(0, 2**32, int(gram_n.sum()), dtype=np.uint32).tofile(part / "gram.bin")
    recs, kk = [], []
    for kind, share in enumerate(kinds):  # share: fingerprints of this kind per real record
        if share:
            has = np.flatnonzero(rng.random(n) < min(1.0, share))
            recs.append(has)
            kk.append(np.full(len(has), kind, dtype=np.uint8))
    rec = np.concatenate(recs).astype(np.uint32)
    e = np.empty(len(rec), dtype=_STRONG)
    e["fp"] = rng.integers(1, 2**64, len(rec), dtype=np.uint64)
    e["rec"], e["kind"] = rec, np.concatenate(kk)
    b = (e["fp"] >> np.uint64(64 - bits)).astype(np.intp)
    order = np.argsort(b, kind="stable")
    ends = np.cumsum(np.bincount(b, minlength=1 << bits))
    for k in range(1 << bits):
        e[order[(ends[k - 1] if k else 0):ends[k]]].tofile(part / f"strong-{k:03d}.bin")
    counts = Counter(lab.tolist())
    return PartSummary(part, n, len(e), int(gram_n.sum()), labs, {labs[i]: c for i, c in counts.items()},
                       tuple(int(x) for x in np.bincount(e["kind"], minlength=len(kinds))), bits)


def assemble_scaled(home: Path, total: int, chunk: int = 4_000_000, spread: bool = True) -> None:
    """(In a child process, for its peak RSS.) The real index of ``home`` plus filler records up to
    ``total``, joined by :func:`matchers.indexbuild.assemble` into the index the scan then reads;
    ``spread``: the real records cut into slices between the filler parts (see the module)."""
    from matchers.indexbuild import BUCKET_BITS, assemble, stage_dir

    index_dir = home / "index" / "big"
    stage = stage_dir(home / "index")
    t = time.perf_counter()
    filler_n = []
    done = 0
    real_n = int(json.loads((index_dir / "meta.json").read_text())["records"])
    while real_n + done < total:
        filler_n.append(min(chunk, total - real_n - done))
        done += filler_n[-1]
    slices = len(filler_n) + 1 if spread else 1
    meta, reals = _index_as_parts(index_dir, stage, BUCKET_BITS, slices)
    real_records = sum(p.records for p in reals)
    grams_per = sum(p.grams for p in reals) / max(1, real_records)
    kinds = [k / max(1, real_records) for k in np.sum([p.kind_counts for p in reals], axis=0).tolist()]
    fillers = [_filler_part(stage / f"part-{i + 1}", n, reals[0].labs, kinds, grams_per, BUCKET_BITS, i + 1)
               for i, n in enumerate(filler_n)]
    # Row offsets: the real slices keep their own row numbers; the filler's follow the real rows.
    parts, rows, filler_rows = [], [], real_records
    order = [x for pair in zip(reals, fillers) for x in pair] + reals[len(fillers):] if spread else reals + fillers
    filler_ids = {id(p) for p in fillers}
    for p in order:
        parts.append(p)
        if id(p) in filler_ids:
            rows.append(filler_rows)
            filler_rows += p.records
        else:
            rows.append(0)
    fill = time.perf_counter() - t
    try:  # the filler's own arrays are gone: the peak RSS from here on is the join's (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    t, c = time.perf_counter(), time.process_time()
    counts = assemble(parts, stage, rows)
    took = {"assemble_wall_s": time.perf_counter() - t, "assemble_cpu_s": time.process_time() - c, "filler_s": fill,
            "assemble_peak_rss_mb": next(int(line.split()[1]) for line in Path("/proc/self/status").read_text()
                                         .splitlines() if line.startswith("VmHWM:")) / 1024, "spread": spread}
    (stage / "meta.json").write_text(json.dumps({**meta, **counts}))
    shutil.rmtree(index_dir)
    os.replace(stage, index_dir)
    print(json.dumps(took))
