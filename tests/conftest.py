"""Shared fixtures: synthetic data only (dumpwatch.devkit.synth), never real people.

Package-specific fixtures (local servers) live in tests/<package>/conftest.py.
"""

from __future__ import annotations

import pytest

from dumpwatch.devkit import synth


@pytest.fixture(scope="session")
def people() -> list[dict[str, str]]:
    """600 synthetic patients: the enrolled leak of most tests."""
    return synth.generate(600, seed=2021)


@pytest.fixture(scope="session")
def strangers() -> list[dict[str, str]]:
    """Other synthetic people (valid NIRs, phones, emails) who are NOT in the leak."""
    return synth.generate(300, seed=99)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty dumpwatch home; the key comes from its own file in it."""
    from dumpwatch.home import Home

    monkeypatch.delenv("DUMPWATCH_KEY", raising=False)
    monkeypatch.delenv("DUMPWATCH_KEY_FILE", raising=False)
    monkeypatch.setenv("DUMPWATCH_HOME", str(tmp_path / "home"))
    return Home.resolve(tmp_path / "home").ensure()
