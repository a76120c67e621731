"""matchers.extract streams: peak memory stays flat while a ~200 MB input goes through it.

Each measurement runs in a fresh Python process (a high-water mark: in the test process earlier
tests would already have raised it; Linux /proc, where the CI runs), after a warm-up extraction so imports and
caches are in the baseline; growth = peak resident size (VmHWM) minus the resident size before
the big input. A control run that reads the input whole shows the measurement sees a non-streaming reader. The input is written in chunks to tmp_path, never held in memory.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dumpwatch.devkit import synth

MB = 1024 * 1024
TARGET = 200 * MB
# Growth allowed above the warmed-up baseline: buffers, one table's state; not the input.
BOUND = 48 * MB

PROBE = r"""
import gc, json, sys
from matchers.extract import extract

def status_kb(field):
    # VmHWM/VmRSS belong to this process image: ru_maxrss would carry the forking parent's peak
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status")

def drain(path):
    errors, rows = [], 0
    with open(path, "rb") as fh:
        for table in extract(fh, path, errors=errors):
            for _ in table.rows:
                rows += 1
    return rows, errors

drain(sys.argv[1])                                   # warm-up on a small file of the same shape
gc.collect()
base = status_kb("VmRSS")
if sys.argv[3:] == ["control"]:                      # what reading the input whole would cost
    with open(sys.argv[2], "rb") as fh:
        rows, errors = fh.read().count(b"\n"), []
else:
    rows, errors = drain(sys.argv[2])
peak = status_kb("VmHWM")
print(json.dumps({"rows": rows, "errors": errors, "base_kb": base, "peak_kb": peak}))
"""


def _measure(small: Path, big: Path, *extra: str) -> dict:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", PROBE, str(small), str(big), *extra], cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory, people):
    """~200 MB of synthetic rows (600 patients repeated), and a small file of the same shape."""
    root = tmp_path_factory.mktemp("memory")
    header, rows = synth.transform(people, columns=None)
    body = synth.csv_text(None, rows, ";").encode()
    head = synth.csv_text(header, [], ";").encode()
    path = root / "big.csv"
    repeats = TARGET // len(body) + 1
    with path.open("wb") as fh:
        fh.write(head)
        for _ in range(repeats):
            fh.write(body)
    small = root / "small.csv"
    small.write_bytes(head + body)
    return path, small, repeats * len(rows)


linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="peak resident size is read from /proc/self/status")


@linux_only
@pytest.mark.slow
def test_200_mb_csv_streams_in_bounded_memory(big_csv):
    path, small, n_rows = big_csv
    assert path.stat().st_size >= TARGET
    result = _measure(small, path)
    assert result["errors"] == []
    assert result["rows"] == n_rows
    growth = (result["peak_kb"] - result["base_kb"]) * 1024
    assert growth < BOUND, f"peak RSS grew by {growth / MB:.0f} MiB for a {TARGET // MB} MiB input"
    # the measurement can see a non-streaming reader: holding the input costs its size
    control = _measure(small, path, "control")
    assert (control["peak_kb"] - control["base_kb"]) * 1024 > TARGET * 0.9


@linux_only
@pytest.mark.slow
def test_200_mb_gzip_csv_streams_in_bounded_memory(big_csv, tmp_path):
    path, small, n_rows = big_csv
    packed = tmp_path / "big.csv.gz"
    with path.open("rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 4 * MB)
    small_packed = tmp_path / "small.csv.gz"
    small_packed.write_bytes(gzip.compress(small.read_bytes()))
    result = _measure(small_packed, packed)
    assert result["errors"] == []
    assert result["rows"] == n_rows
    growth = (result["peak_kb"] - result["base_kb"]) * 1024
    assert growth < BOUND, f"peak RSS grew by {growth / MB:.0f} MiB for a {TARGET // MB} MiB input"


@linux_only
@pytest.mark.slow
def test_80_mb_json_array_streams_in_bounded_memory(people, tmp_path):
    header, rows = synth.transform(people)
    records = ",\n".join(json.dumps(dict(zip(header, r)), ensure_ascii=False) for r in rows).encode()
    path = tmp_path / "big.json"
    repeats = 80 * MB // len(records) + 1
    with path.open("wb") as fh:
        fh.write(b"[\n")
        for i in range(repeats):
            fh.write(records + (b",\n" if i < repeats - 1 else b"\n"))
        fh.write(b"]\n")
    small = tmp_path / "small.json"
    small.write_bytes(b"[" + records + b"]")
    result = _measure(small, path)
    assert result["errors"] == []
    assert result["rows"] == repeats * len(rows)
    growth = (result["peak_kb"] - result["base_kb"]) * 1024
    assert growth < BOUND, f"peak RSS grew by {growth / MB:.0f} MiB for an 80 MiB JSON array"
