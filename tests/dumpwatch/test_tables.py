"""dumpwatch.tables: the one checker of configuration tables, the one duration and size parsers, and
the loaded configuration that knows its file."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dumpwatch.errors import ConfigError, ConfigErrors
from dumpwatch.home import Home
from dumpwatch.tables import Collector, Config, Key, Section, array_of, parse_duration, parse_size, path_of, table_of

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# -- durations ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("2w", 1209600),
    ("1h30m", 5400), ("1h 30m 15s", 5415), ("90", 90), (" 15M ", 900), ("1.5h", 5400), ("0", 0),
    (7, 7), (0.5, 0.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["-1", "-5s", "1y", "soon", "", "5 minutes", "m5", "1h-30m", True, None,
                                 -1, float("inf"), float("nan"), [], "1e3s"])
def test_garbage_durations_are_refused_with_examples(bad):
    with pytest.raises(ValueError) as err:
        parse_duration(bad)
    assert '"250ms"' in str(err.value) and '"7d"' in str(err.value) and repr(bad) in str(err.value)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=4))
def test_duration_round_trip(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == pytest.approx(sum(n * UNITS[u] for n, u in parts))


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_a_number_is_seconds(x):
    assert parse_duration(x) == x and parse_duration(f"{x:.12f}") == pytest.approx(x, abs=1e-9)


@given(st.text(max_size=12))
def test_any_text_is_a_duration_or_a_value_error(text):
    try:
        assert parse_duration(text) >= 0
    except ValueError as exc:
        assert "duration like" in str(exc)


# -- sizes -------------------------------------------------------------------------------------------

SIZE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


@pytest.mark.parametrize("text, size", [
    ("512", 512), ("64KB", 64_000), ("50MB", 50_000_000), ("1GB", 10**9), ("512KiB", 524288),
    ("10MiB", 10 * 1024**2), ("2GiB", 2 * 1024**3), ("10mb", 10_000_000), ("1.5MB", 1_500_000), (10, 10), (0, 0),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["-1", "1TB", "lots", "", "MB", 1.5, -3, True, None])
def test_garbage_sizes_are_refused_with_examples(bad):
    with pytest.raises(ValueError, match=r'size like .*"50MB"'):
        parse_size(bad)


@given(st.integers(0, 10**6), st.sampled_from(sorted(SIZE_UNITS)), st.booleans())
def test_size_round_trip(n, unit, lower):
    text = f"{n}{unit.lower() if lower else unit}"
    assert parse_size(text) == n * SIZE_UNITS[unit]


# -- sections ----------------------------------------------------------------------------------------

DEMO = Section("demo", {
    "name": Key("str", required=True),
    "interval": Key("duration", 60.0, minimum=1),
    "max_size": Key("size", 1000),
    "workers": Key("int", 1, minimum=1),
    "enabled": Key("bool", True),
    "mode": Key("text", "fast", choices=("fast", "slow")),
    "tags": Key("str_list", ()),
})


def test_a_declared_section_gives_every_value_checked():
    v = DEMO.read({"name": " x ", "interval": "2w", "max_size": "64KB", "tags": "one"}, path="f.toml")
    assert v == {"name": "x", "interval": 1209600.0, "max_size": 64000, "workers": 1, "enabled": True,
                 "mode": "fast", "tags": ("one",)}
    assert DEMO.read({"name": "x"}, defaults={"workers": 4})["workers"] == 4


def test_an_unknown_key_gets_a_did_you_mean():
    with pytest.raises(ConfigError) as err:
        DEMO.read({"name": "x", "intreval": "1h"}, path="dumpwatch.toml", where="demo.one")
    assert err.value.key == "demo.one.intreval"
    assert str(err.value).startswith("dumpwatch.toml [demo.one.intreval]: unknown key; did you mean 'interval'?")
    assert "accepts: enabled, interval" in str(err.value)


def test_type_errors_name_the_file_the_key_and_the_fix_all_at_once():
    with pytest.raises(ConfigErrors) as err:
        DEMO.read({"interval": "0.5s", "max_size": "big", "workers": True, "enabled": "yes", "mode": "quick",
                   "extra": 1}, path="dumpwatch.toml")
    by_key = {e.key: str(e) for e in err.value.errors}
    assert set(by_key) == {"demo.extra", "demo.name", "demo.interval", "demo.max_size", "demo.workers",
                           "demo.enabled", "demo.mode"}
    assert all(s.startswith(f"dumpwatch.toml [{k}]: ") for k, s in by_key.items())
    assert "is required" in by_key["demo.name"]
    assert "must be a duration >= 1 seconds" in by_key["demo.interval"]
    assert 'size like' in by_key["demo.max_size"] and "integer >= 1" in by_key["demo.workers"]
    assert "true or false" in by_key["demo.enabled"] and "'fast' or 'slow'" in by_key["demo.mode"]
    assert str(err.value).startswith("7 configuration errors:")


def test_grouped_unknown_keys_and_a_table_that_is_not_one():
    grouped = Section("scan", {"workers": Key("int", 1)}, group_unknown=True)
    with pytest.raises(ConfigError, match=r"^f \[scan\]: unknown key\(s\) a, worker; did you mean 'workers'\?"):
        grouped.read({"worker": 2, "a": 1}, path="f")
    with pytest.raises(ConfigError, match=r"\[demo\]: must be a table"):
        DEMO.read([1], path="f")


def test_sections_combine():
    both = DEMO | Section("extra", {"colour": Key("text", "red")})
    assert both.name == "demo" and both.read({"name": "n"})["colour"] == "red"


# -- the loaded configuration ------------------------------------------------------------------------

def test_config_is_read_only_and_knows_its_file(tmp_path):
    (tmp_path / "dumpwatch.toml").write_text('[scan]\nworkers = 2\n')
    config = Home(tmp_path).load_config()
    assert isinstance(config, Config) and path_of(config) == str(tmp_path / "dumpwatch.toml")
    assert dict(config) == {"scan": {"workers": 2}} and "_path" not in config
    with pytest.raises(TypeError):
        config["scan"] = {}  # type: ignore[index]
    assert pickle.loads(pickle.dumps(config)) == config and path_of(pickle.loads(pickle.dumps(config)))
    assert path_of(Home(tmp_path / "none").load_config()) is None
    assert path_of({"scan": {}}) is None and path_of(None) is None  # a plain mapping has no file


def test_tables_and_arrays_of_a_configuration():
    config = Config({"a": {"k": 1}, "b": 3, "s": [{"name": "x"}], "t": {"name": "x"}}, path="c.toml")
    assert table_of(config, "a") == {"k": 1} and table_of(config, "zz") == {} and table_of(None, "a") == {}
    with pytest.raises(ConfigError, match=r"c.toml \[b\]: must be a table"):
        table_of(config, "b")
    assert array_of(config, "s") == [{"name": "x"}] and array_of({}, "s") == []
    with pytest.raises(ConfigError, match=r"c.toml \[t\]: must be an array of tables: write \[\[t\]\]"):
        array_of(config, "t")


def test_a_collector_keeps_every_error():
    errors = Collector("f.toml")
    with errors.collect():
        raise ConfigError("one", path="f.toml", key="a")
    with errors.collect():
        DEMO.read({}, path="f.toml")
    errors.add("c", "three")
    with pytest.raises(ConfigErrors, match="3 configuration errors"):
        errors.raise_any()
    Collector().raise_any()  # nothing collected: nothing raised


# -- parsed once where it enters -----------------------------------------------------------------------

def test_alerting_is_parsed_once_and_then_passed_as_is(monkeypatch):
    from alerts import outbox, settings

    calls = []
    real = settings.load
    monkeypatch.setattr(settings, "load", lambda config: calls.append(config) or real(config))
    alerting = outbox.alerting_of(Config({"alerts": {"group_wait": "250ms"}}, path="f.toml"))
    assert alerting.timing.group_wait == 0.25 and alerting.path == "f.toml" and len(calls) == 1
    for _ in range(3):  # what record_finding does with what the crawl pipeline hands it
        assert outbox.alerting_of(alerting) is alerting
    assert len(calls) == 1


def test_every_duration_key_takes_the_same_forms():
    """"2w" and "250ms" are durations in every table (there were two parsers that disagreed)."""
    from alerts.settings import load
    from crawler.sources import load_crawl_config
    from dumpwatch.daemon.settings import load_settings

    src = {"name": "s", "kind": "feed", "start_urls": ["https://x.example/"], "interval": "2w"}
    cc = load_crawl_config({"crawler": {"timeout": "250ms"}, "sources": [src]})
    assert cc.get("s").interval == 1209600 and cc.defaults.timeout == 0.25
    assert load({"alerts": {"group_wait": "250ms", "max_age": "2w"}}).max_age == 1209600
    assert load_settings({"daemon": {"jitter": "250ms", "seen_retention": "2w"}}).retention.seen_retention == 1209600
