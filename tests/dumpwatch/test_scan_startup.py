"""`dumpwatch scan` starts with what a scan needs (issue 9, noise): the database layer
(sqlite_utils and its plugins) is imported only by commands that use the database, or to explain
a storage failure, so a scan of a document of noise does not pay for it."""

from __future__ import annotations

import json
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


# Readers and libraries the scan of a plain CSV does not use (issue 9, `startup`): imported by the
# first input or record that needs them, never at start-up.
NOT_FOR_A_PLAIN_CSV = ("rapidfuzz", "stdnum", "openpyxl", "bs4", "matchers.extract.archives",
                       "matchers.extract.xlsx", "matchers.extract.compressed", "matchers.extract.htmldoc")


def test_a_plain_csv_scan_imports_no_reader_it_does_not_use(tmp_path: Path, enrolled_root: Path, people):
    import shutil

    from dumpwatch.devkit import synth

    root = tmp_path / "home"
    shutil.copytree(enrolled_root, root)
    doc = synth.write_csv(people[:2], tmp_path / "two.csv")   # two enrolled records, as enrolled
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    code = ("import json, sys\nfrom dumpwatch.cli.main import main\n"
            "try:\n    main(['--home', sys.argv[2], 'scan', sys.argv[1], '--workers', '1', '--json'])\n"
            "finally:\n    print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rapidfuzz', 'stdnum', 'openpyxl', 'bs4', 'matchers'))), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(doc), str(root)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert '"matched_records": 2' in proc.stdout, proc.stderr[-2000:]
    loaded = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "matchers.verify" in loaded   # the records were matched: the whole scan path ran
    assert loaded.isdisjoint(NOT_FOR_A_PLAIN_CSV), sorted(loaded & set(NOT_FOR_A_PLAIN_CSV))
