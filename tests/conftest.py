"""Shared fixtures: synthetic data only (dumpwatch.devkit.synth), never real people.

Package-specific fixtures (local servers) live in tests/<package>/conftest.py.
"""

from __future__ import annotations

import pytest

from dumpwatch.devkit import synth


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """`--dist loadgroup` (`make test`): an `xdist_group` test's node id ends in `@GROUP`, so that
    pytest-xdist sends a group's tests to one worker, one after the other. pytest-xdist 3.8 adds the
    suffix by setting `item._nodeid`, which pytest 9.2 no longer reads (node ids became `NodeId`
    objects): without this hook the groups are silently ignored. Same suffix, same rule (xdist's
    `_split_scope` reads it); tests/test_xdist_group.py checks that a group stays on one worker."""
    if not getattr(config.option, "loadgroup", False):  # set on the xdist workers under --dist loadgroup
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # a pytest before 9.2 reads xdist's own `_nodeid` suffix: nothing to do
        return

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and item.nodeid.rfind("@") <= item.nodeid.rfind("]"):  # not already suffixed
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="session")
def people() -> list[dict[str, str]]:
    """600 synthetic patients: the enrolled leak of most tests."""
    return synth.generate(600, seed=2021)


@pytest.fixture(scope="session")
def strangers() -> list[dict[str, str]]:
    """Other synthetic people (valid NIRs, phones, emails) who are NOT in the leak."""
    return synth.generate(300, seed=99)


@pytest.fixture(scope="session")
def enrolled_root(tmp_path_factory, people):
    """A home with ``people`` enrolled as leak ``labos-2021`` (labs from the ``laboratoire`` column),
    through the CLI in a child process as an operator does it; built once per session (once per
    pytest-xdist worker). Read-only: a test copies it (``shutil.copytree``) before using it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path_factory.mktemp("enrolled") / "home"
    leak = synth.write_csv(people, root.parent / "leak.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(root), "enroll", str(leak),
                           "--leak", "labos-2021", "--lab-column", "laboratoire"],
                          cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    leak.unlink()  # the cleartext file is not kept
    return root


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty dumpwatch home; the key comes from its own file in it."""
    from dumpwatch.home import Home

    monkeypatch.delenv("DUMPWATCH_KEY", raising=False)
    monkeypatch.delenv("DUMPWATCH_KEY_FILE", raising=False)
    monkeypatch.setenv("DUMPWATCH_HOME", str(tmp_path / "home"))
    return Home.resolve(tmp_path / "home").ensure()
