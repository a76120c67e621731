"""`dumpwatch scan` starts with what a scan needs (issue 9, noise): the database layer
(sqlite_utils and its plugins) is imported only by commands that use the database, or to explain
a storage failure, so a scan of a document of noise does not pay for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_scan_does_not_import_the_database_layer(tmp_path: Path):
    doc = tmp_path / "products.csv"
    doc.write_text("sku,designation,prix\nP1,lampe,12.50\nP2,table,99.00\n", encoding="utf-8")
    env = {**os.environ, "DUMPWATCH_HOME": str(tmp_path / "home")}
    env.pop("DUMPWATCH_KEY", None)
    code = ("import sys\nfrom dumpwatch.cli.main import main\n"
            "try:\n    main(['scan', sys.argv[1], '--json'])\n"
            "finally:\n    print('sqlite_utils' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(doc)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert '"verdict": "none"' in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "False"
