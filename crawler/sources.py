"""Sources to crawl, declared in ``dumpwatch.toml``, parsed and validated into frozen dataclasses.

::

    [crawler]                      # defaults for every source
    user_agent = "dumpwatch/0.1 (leak monitoring; contact: dpo@example.org)"
    recrawl_age = "7d"             # a page seen less than this ago is not fetched again
    max_download_size = "50MB"

    [[sources]]
    name = "pastes"
    kind = "paste-archive"
    start_urls = ["https://paste.example/archive"]
    listing_selector = "table.maintable a::attr(href)"
    raw_url = "https://paste.example/raw/{key}"

Every error names the file, the source and the key (``dumpwatch.toml [sources.pastes.raw_url]:
...``) and says what is expected. See docs/crawler.md for every key of every kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit

from crawler.presets import PRESETS, SELECTOR_KEYS
from dumpwatch.errors import ConfigError
from dumpwatch.netpolicy import NetworkPolicy, host_port_entry, split_host_port

KINDS = ("paste-archive", "paste-api", "forum", "discourse", "feed", "telegram")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2,
          "gib": 1024**3}


@dataclass(frozen=True)
class CrawlerDefaults:
    """The ``[crawler]`` table: defaults for every source, and crawl-wide settings."""

    user_agent: str = "dumpwatch/0.1 (+leak monitoring of health data; see docs/crawler.md)"
    recrawl_age: float = 7 * 86400.0
    max_download_size: int = 50 * 1000**2
    timeout: float = 30.0
    retry_times: int = 3
    retry_backoff: float = 2.0  # seconds, doubled at each retry when no Retry-After is given
    retry_after_max: float = 600.0  # longest Retry-After honoured; longer waits give up for this run
    concurrency: int = 2
    delay: float = 1.0
    autothrottle: bool = True
    obey_robots: bool = True
    interval: float = 3600.0
    max_pages: int = 10
    depth: int = 1
    max_requests: int = 5000  # per run, a safety stop
    run_timeout: float = 1800.0  # seconds a crawl may take before its child process is stopped
    failing_runs: int = 3  # consecutive failed runs that raise a "failing" health finding


@dataclass(frozen=True)
class Source:
    """One source: where to start, how to find new items, how far to go, how politely."""

    name: str
    kind: str
    start_urls: tuple[str, ...]
    enabled: bool = True
    interval: float = 3600.0
    max_pages: int = 10
    depth: int = 1
    allowed_domains: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cookies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    proxy: str | None = None
    obey_robots: bool = True
    concurrency: int = 2
    delay: float = 1.0
    autothrottle: bool = True
    max_download_size: int = 50 * 1000**2
    timeout: float = 30.0
    recrawl_age: float = 7 * 86400.0
    user_agent: str = CrawlerDefaults.user_agent
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    allow_private_networks: bool | None = None  # None: [network] allow_private_networks

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class CrawlConfig:
    defaults: CrawlerDefaults
    sources: tuple[Source, ...]
    path: str | None = None
    network: NetworkPolicy = NetworkPolicy()  # [network]; a source's policy: network.for_source(...)

    def get(self, name: str) -> Source:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} (sources: {known}); declare it in a [[sources]] table",
                          path=self.path, key="sources")

    def enabled(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)


# -- kind-specific keys: name -> (type check, default) ----------------------------------------------

_COMMON = {
    "name", "kind", "start_urls", "enabled", "interval", "max_pages", "depth", "allowed_domains",
    "headers", "cookies", "proxy", "obey_robots", "concurrency", "delay", "autothrottle",
    "max_download_size", "timeout", "recrawl_age", "user_agent", "allow_private_networks",
}

_KIND_KEYS: dict[str, dict[str, Any]] = {
    "paste-archive": {
        "listing_selector": None,  # CSS selector of paste links on the listing page
        "listing_regex": None,  # or a regex over the listing body; group "key" (or group 1) is the key
        "key_regex": r"([A-Za-z0-9_-]{4,})/?(?:[?#].*)?$",  # the key inside a paste link
        "raw_url": None,  # template of the raw content URL: {key}, {base} (scheme://host of the listing)
        "raw_link_selector": None,  # else: on the paste page, the link to the raw content
        "content_selector": None,  # else: on the paste page, the element holding the text
    },
    "paste-api": {
        "items_path": "",  # dotted path to the list of pastes in the JSON ("" = the document itself)
        "key_field": "key",
        "url_field": "scrape_url",
        "date_field": "date",
        "size_field": "size",
        "raw_url": None,  # template used when an item has no url_field: {key}, {base}
    },
    "forum": {"preset": None, "selectors": None},
    "discourse": {"latest_path": "/latest.json"},
    "feed": {"follow_links": True},
    "telegram": {"channels": None, "base_url": "https://t.me"},
}


def load_crawl_config(config: Mapping[str, Any]) -> CrawlConfig:
    """Parse ``[crawler]`` and ``[[sources]]`` of a loaded configuration (``Home.load_config``)."""
    path = config.get("_path")
    defaults = _defaults(config.get("crawler", {}), path)
    raw_sources = config.get("sources", [])
    if isinstance(raw_sources, dict):
        raise ConfigError("must be an array of tables: write [[sources]] (two brackets) for each source",
                          path=path, key="sources")
    if not isinstance(raw_sources, list):
        raise ConfigError("must be an array of [[sources]] tables", path=path, key="sources")
    sources = []
    names: set[str] = set()
    for i, raw in enumerate(raw_sources):
        src = _source(raw, i, defaults, path)
        if src.name in names:
            raise ConfigError(f"source name {src.name!r} is used twice; names must be unique",
                              path=path, key=f"sources.{src.name}.name")
        names.add(src.name)
        sources.append(src)
    return CrawlConfig(defaults, tuple(sources), path, NetworkPolicy.from_config(config))


# -- parsing helpers -------------------------------------------------------------------------------

class _Checker:
    def __init__(self, table: Mapping[str, Any], where: str, path: str | None):
        self.table, self.where, self.path = table, where, path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=f"{self.where}.{key}" if self.where else key)

    def has(self, key: str) -> bool:
        return key in self.table

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        if key not in self.table:
            if required:
                raise self.fail(key, "is required")
            return default
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def bool(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}")
        return value

    def int(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be an integer >= {minimum}, not {value!r}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self.fail(key, f"must be a number >= {minimum}, not {value!r}")
        return float(value)

    def duration(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        try:
            return parse_duration(value)
        except ValueError:
            raise self.fail(key, f"must be seconds or a duration like \"90s\", \"15m\", \"6h\", \"7d\", "
                                 f"not {value!r}") from None

    def size(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        try:
            return parse_size(value)
        except ValueError:
            raise self.fail(key, f"must be bytes or a size like \"512KiB\", \"50MB\", not {value!r}") from None

    def str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.table.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, f"must be a list of strings, not {value!r}")
        return tuple(v.strip() for v in value)

    def str_table(self, key: str) -> Mapping[str, str]:
        value = self.table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "must be a table of strings, e.g. { \"Accept-Language\" = \"fr\" }")
        return MappingProxyType(dict(value))


def parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(value)
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", value.lower())
        if m:
            return float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1)
    raise ValueError(value)


def parse_size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(value)
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)\s*", value.lower())
        if m and m.group(2) in _SIZES:
            return int(float(m.group(1)) * _SIZES[m.group(2)])
    raise ValueError(value)


def _defaults(table: Any, path: str | None) -> CrawlerDefaults:
    if not isinstance(table, dict):
        raise ConfigError("must be a table", path=path, key="crawler")
    c = _Checker(table, "crawler", path)
    base = CrawlerDefaults()
    known = set(CrawlerDefaults.__dataclass_fields__)
    for key in table:
        if key not in known:
            raise c.fail(key, f"unknown key; the [crawler] table accepts: {', '.join(sorted(known))}")
    return CrawlerDefaults(
        user_agent=c.str("user_agent", base.user_agent) or base.user_agent,
        recrawl_age=c.duration("recrawl_age", base.recrawl_age),
        max_download_size=c.size("max_download_size", base.max_download_size),
        timeout=c.duration("timeout", base.timeout),
        retry_times=c.int("retry_times", base.retry_times),
        retry_backoff=c.number("retry_backoff", base.retry_backoff),
        retry_after_max=c.duration("retry_after_max", base.retry_after_max),
        concurrency=c.int("concurrency", base.concurrency, minimum=1),
        delay=c.number("delay", base.delay),
        autothrottle=c.bool("autothrottle", base.autothrottle),
        obey_robots=c.bool("obey_robots", base.obey_robots),
        interval=c.duration("interval", base.interval),
        max_pages=c.int("max_pages", base.max_pages, minimum=1),
        depth=c.int("depth", base.depth),
        max_requests=c.int("max_requests", base.max_requests, minimum=1),
        run_timeout=c.duration("run_timeout", base.run_timeout),
        failing_runs=c.int("failing_runs", base.failing_runs, minimum=1),
    )


def _check_url(c: _Checker, key: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise c.fail(key, f"{url!r} is not an http(s) URL")
    return url


def _source(raw: Any, index: int, d: CrawlerDefaults, path: str | None) -> Source:
    if not isinstance(raw, dict):
        raise ConfigError("each [[sources]] entry must be a table", path=path, key=f"sources[{index}]")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"name must be letters, digits, '.', '_' or '-' (at most 64), not {name!r}",
                          path=path, key=f"sources[{index}].name")
    c = _Checker(raw, f"sources.{name}", path)
    kind = c.str("kind", required=True)
    if kind not in KINDS:
        raise c.fail("kind", f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    kind_keys = _KIND_KEYS[kind]
    for key in raw:
        if key not in _COMMON and key not in kind_keys:
            raise c.fail(key, f"unknown key for a {kind} source; accepted: "
                              f"{', '.join(sorted(_COMMON | set(kind_keys)))}")

    options = _options(c, kind, raw)
    start_urls = c.str_list("start_urls")
    if kind == "telegram" and options.get("channels"):
        base = options["base_url"].rstrip("/")
        start_urls = start_urls + tuple(f"{base}/s/{ch}" for ch in options["channels"])
    if not start_urls:
        hint = " (or channels = [\"name\"])" if kind == "telegram" else ""
        raise c.fail("start_urls", f"at least one start URL is needed{hint}")
    for url in start_urls:
        _check_url(c, "start_urls", url)

    allowed = c.str_list("allowed_domains")
    if not allowed:  # the hosts of the start URLs, with their port when it is not the scheme's default
        allowed = tuple(dict.fromkeys(host_port_entry(u) for u in start_urls))
    for dom in allowed:
        if split_host_port(dom) is None:
            raise c.fail("allowed_domains", f"{dom!r}: give host names only, or host:port (no scheme or path)")

    proxy = c.str("proxy")
    if proxy is not None:
        scheme = urlsplit(proxy).scheme
        if scheme.startswith("socks"):
            raise c.fail("proxy", "SOCKS proxies are not supported by Scrapy: use an HTTP proxy, e.g. "
                                  "Tor's HTTPTunnelPort (proxy = \"http://127.0.0.1:9080\") or privoxy")
        _check_url(c, "proxy", proxy)

    return Source(
        name=name,
        kind=kind,
        start_urls=start_urls,
        enabled=c.bool("enabled", True),
        interval=c.duration("interval", d.interval),
        max_pages=c.int("max_pages", d.max_pages, minimum=1),
        depth=c.int("depth", d.depth),
        allowed_domains=allowed,
        headers=c.str_table("headers"),
        cookies=c.str_table("cookies"),
        proxy=proxy,
        obey_robots=c.bool("obey_robots", d.obey_robots),
        concurrency=c.int("concurrency", d.concurrency, minimum=1),
        delay=c.number("delay", d.delay),
        autothrottle=c.bool("autothrottle", d.autothrottle),
        max_download_size=c.size("max_download_size", d.max_download_size),
        timeout=c.duration("timeout", d.timeout),
        recrawl_age=c.duration("recrawl_age", d.recrawl_age),
        user_agent=c.str("user_agent", d.user_agent) or d.user_agent,
        options=MappingProxyType(options),
        allow_private_networks=c.bool("allow_private_networks", False) if c.has("allow_private_networks") else None,
    )


def _regex(c: _Checker, key: str) -> str | None:
    value = c.str(key)
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise c.fail(key, f"not a valid regular expression: {exc}") from None
    return value


def _css(c: _Checker, key: str, value: str | None) -> str | None:
    """A CSS selector, compiled now as the spider's ``response.css()`` will (parsel): a syntax error
    would otherwise make every crawl of the source find nothing."""
    if value is not None:
        from cssselect import SelectorError
        from parsel import Selector

        try:
            Selector(text="<html></html>").css(value)
        except (SelectorError, ValueError) as exc:
            raise c.fail(key, f"not a valid CSS selector ({exc}); e.g. \"table a::attr(href)\"") from None
    return value


def _options(c: _Checker, kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    spec = _KIND_KEYS[kind]
    opts: dict[str, Any] = {}
    if kind == "paste-archive":
        opts["listing_selector"] = _css(c, "listing_selector", c.str("listing_selector"))
        opts["listing_regex"] = _regex(c, "listing_regex")
        opts["key_regex"] = _regex(c, "key_regex") or spec["key_regex"]
        opts["raw_url"] = c.str("raw_url")
        opts["raw_link_selector"] = _css(c, "raw_link_selector", c.str("raw_link_selector"))
        opts["content_selector"] = _css(c, "content_selector", c.str("content_selector"))
        if not (opts["listing_selector"] or opts["listing_regex"]):
            raise c.fail("listing_selector", "a paste-archive source needs listing_selector (CSS, e.g. "
                                             "\"table a::attr(href)\") or listing_regex")
        _check_template(c, "raw_url", opts["raw_url"])
    elif kind == "paste-api":
        for key in ("items_path", "key_field", "url_field", "date_field", "size_field"):
            value = raw.get(key, spec[key])
            if not isinstance(value, str):
                raise c.fail(key, f"must be a string, not {value!r}")
            opts[key] = value
        opts["raw_url"] = c.str("raw_url")
        _check_template(c, "raw_url", opts["raw_url"])
    elif kind == "forum":
        preset = c.str("preset")
        if preset is not None and preset.lower() not in PRESETS:
            raise c.fail("preset", f"unknown preset {preset!r}; one of: {', '.join(PRESETS)} "
                                   "(or give every selector in [sources.selectors])")
        selectors = dict(PRESETS[preset.lower()]) if preset else {}
        overrides = raw.get("selectors", {})
        if not isinstance(overrides, dict):
            raise c.fail("selectors", "must be a table of CSS selectors")
        for key, value in overrides.items():
            if key not in SELECTOR_KEYS:
                raise c.fail(f"selectors.{key}", f"unknown selector; accepted: {', '.join(SELECTOR_KEYS)}")
            if not isinstance(value, str):
                raise c.fail(f"selectors.{key}", f"must be a CSS selector string, not {value!r}")
            selectors[key] = _css(c, f"selectors.{key}", value)
        for key in ("topic_links", "post", "post_body"):
            if not selectors.get(key):
                raise c.fail(f"selectors.{key}", "is required: set preset = \"phpbb\" | \"mybb\" | "
                                                 "\"xenforo\" or give this selector")
        opts["preset"] = preset.lower() if preset else None
        opts["selectors"] = MappingProxyType(selectors)
    elif kind == "discourse":
        latest = raw.get("latest_path", spec["latest_path"])
        if not isinstance(latest, str) or not latest.startswith("/"):
            raise c.fail("latest_path", f"must be a path starting with '/', not {latest!r}")
        opts["latest_path"] = latest
    elif kind == "feed":
        opts["follow_links"] = c.bool("follow_links", True)
    elif kind == "telegram":
        channels = c.str_list("channels")
        for ch in channels:
            if not re.fullmatch(r"[A-Za-z0-9_]{3,64}", ch):
                raise c.fail("channels", f"{ch!r} is not a public channel name (letters, digits, '_')")
        opts["channels"] = channels
        opts["base_url"] = _check_url(c, "base_url", c.str("base_url", spec["base_url"]) or spec["base_url"])
    return opts


def _check_template(c: _Checker, key: str, template: str | None) -> None:
    if template is None:
        return
    try:
        template.format(key="k", base="http://h")
    except (KeyError, IndexError, ValueError) as exc:
        raise c.fail(key, f"template may use only {{key}} and {{base}}: {exc}") from None
    if "{key}" not in template:
        raise c.fail(key, "template must contain {key}")
