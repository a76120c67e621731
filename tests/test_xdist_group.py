"""`make test` runs two pytest-xdist workers with `--dist loadgroup`: the tests of one `xdist_group`
(the deployment tests) must run on one worker, one after the other (tests/conftest.py's hook)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUITE = '''
import json, os, pytest

def _log(name):
    with open(os.environ["GROUP_LOG"], "a") as f:
        f.write(json.dumps([name, os.environ.get("PYTEST_XDIST_WORKER")]) + "\\n")

@pytest.mark.xdist_group("deployment")
@pytest.mark.parametrize("i", range(4))
def test_grouped(i):
    _log(f"grouped{i}")

@pytest.mark.parametrize("i", range(8))
def test_other(i):
    _log(f"other{i}")
'''


def test_an_xdist_group_runs_on_one_worker(tmp_path):
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_groups.py").write_text(SUITE)
    log = tmp_path / "log.jsonl"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                           "--dist", "loadgroup", "test_groups.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "GROUP_LOG": str(log)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == 12
    workers = {w for name, w in runs if name.startswith("grouped")}
    assert len(workers) == 1, runs  # the group on one worker
    assert len({w for _, w in runs}) == 2  # and the other worker did run tests
