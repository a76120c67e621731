"""[scan] and [limits]: read by dumpwatch.engine_settings into the engine's objects (the engine parses
no configuration); errors name the file, the key and the fix, all at once."""

from __future__ import annotations

import pytest

from dumpwatch.engine_settings import limits_from, scan_settings_from
from dumpwatch.errors import ConfigError, ConfigErrors
from dumpwatch.tables import Config
from matchers.errors import SettingsError
from matchers.extract import Limits
from matchers.scan import ScanSettings


def test_limits_from_a_table():
    assert limits_from({"limits": {"max_bytes": 1000, "max_ratio": 50}}) == Limits(max_bytes=1000, max_ratio=50.0)
    assert limits_from({"limits": {"max_html_bytes": 5}}).max_html_bytes == 5  # every field is a key
    assert limits_from(None) == Limits() and limits_from({}) == Limits()
    assert isinstance(limits_from({"limits": {"max_ratio": 3}}).max_ratio, float)


def test_limits_errors_name_the_file_and_the_key():
    with pytest.raises(ConfigError, match=r"dumpwatch.toml \[limits.max_byte\]: unknown key; did you mean "
                                          r"'max_bytes'\?"):
        limits_from(Config({"limits": {"max_byte": 1}}, path="dumpwatch.toml"))
    with pytest.raises(ConfigError, match=r"\[limits.max_depth\]: must be a positive number"):
        limits_from({"limits": {"max_depth": -1}})
    with pytest.raises(ConfigError, match=r"\[limits\]: must be a table"):
        limits_from({"limits": 3})


def test_scan_settings_and_every_error_at_once():
    s = scan_settings_from({"scan": {"repost_threshold": 5, "workers": 2}, "limits": {"max_depth": 2}})
    assert s == ScanSettings(repost_threshold=5, workers=2, limits=Limits(max_depth=2))
    assert scan_settings_from({"scan": {"repost_threshold": 5}}, threshold=7, workers=3).repost_threshold == 7
    with pytest.raises(ConfigErrors) as err:
        scan_settings_from(Config({"scan": {"threshold": 2, "workers": 0}, "limits": {"max_bytes": 0}},
                                  path="dumpwatch.toml"))
    assert [e.key for e in err.value.errors] == ["scan", "scan.workers", "limits.max_bytes"]
    assert "unknown key(s) threshold; did you mean 'repost_threshold'?" in str(err.value)
    assert all("dumpwatch.toml" in str(e) for e in err.value.errors)


def test_the_engine_keeps_its_invariants():
    with pytest.raises(SettingsError, match=r"\[scan.workers\]"):
        ScanSettings(workers=0)
    with pytest.raises(SettingsError, match=r"\[limits.max_ratio\]"):
        Limits(max_ratio=0)
