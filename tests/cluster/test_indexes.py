"""A worker with a foreign key, a stale or a missing index refuses to scan and says why (the control
node publishes the key id and each leak's index identity; crawler/cluster/indexes.py)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys

import pytest

from crawler.cluster import indexes
from dumpwatch.errors import ScannerUnavailable
from tests.helpers.crawlkit import LEAK, ROOT


def _foreign_key(control, worker):
    worker.key_path.write_text(secrets.token_bytes(32).hex() + "\n")
    return "has another key"


def _stale(control, worker):
    meta = control.index_dir / LEAK / "meta.json"
    data = json.loads(meta.read_text())
    data["records"] = int(data["records"]) + 1  # enrolled again on the control node
    meta.write_text(json.dumps(data))
    return f"leak {LEAK!r} is stale here"


def _missing(control, worker):
    shutil.rmtree(worker.index_dir / LEAK)
    return f"leak {LEAK!r} is not enrolled here"


def _extra(control, worker):
    shutil.copytree(worker.index_dir / LEAK, worker.index_dir / "other-leak")
    return "leak 'other-leak' is enrolled here but not on the control node"


def test_the_same_key_and_indexes_pass(homes, rds):
    published = indexes.publish(rds, homes["control"])
    assert published["leaks"].keys() == {LEAK} and len(published["key_id"]) == 16
    assert indexes.check(rds, homes["worker"]) == published
    assert homes["control"].load_key().hex() not in json.dumps(published)  # the key id, never the key


@pytest.mark.parametrize("spoil", [_foreign_key, _stale, _missing, _extra])
def test_a_worker_refuses_a_foreign_key_or_a_stale_missing_or_extra_index(homes, rds, spoil):
    control, worker = homes["control"], homes["worker"]
    why = spoil(control, worker)
    indexes.publish(rds, control)
    with pytest.raises(ScannerUnavailable) as err:
        indexes.check(rds, worker)
    assert why in str(err.value)


def test_the_worker_command_says_why_and_exits(homes, redis_url, rds):
    control, worker = homes["control"], homes["worker"]
    (worker.root / "dumpwatch.toml").write_text("")
    why = _stale(control, worker)
    indexes.publish(rds, control)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(worker.root), "worker",
                           "--redis", redis_url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert why in proc.stderr and "copy the control node's index/ here" in proc.stderr
    assert "Traceback" not in proc.stderr
