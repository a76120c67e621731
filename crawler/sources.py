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

Both tables are declared once here (:data:`CRAWLER`, :data:`SOURCE` and the kind's keys in
:data:`KIND_KEYS`, checked by :mod:`dumpwatch.tables`: types, durations, sizes, unknown keys with a
did-you-mean); what a declaration cannot say (URLs, selectors, regexes, templates) is checked after.
Every error names the file, the source and the key (``dumpwatch.toml [sources.pastes.raw_url]:
...``) and says what is expected; the errors of every source are reported at once. See
docs/crawler.md for every key of every kind.
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
from dumpwatch.tables import Collector, Key, Section, array_of, did_you_mean, path_of

KINDS = ("paste-archive", "paste-api", "forum", "discourse", "feed", "telegram")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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


# -- the declared tables (dumpwatch.tables) ----------------------------------------------------------

_D = CrawlerDefaults()
CRAWLER = Section("crawler", {
    "user_agent": Key("str", _D.user_agent),
    "recrawl_age": Key("duration", _D.recrawl_age),
    "max_download_size": Key("size", _D.max_download_size),
    "timeout": Key("duration", _D.timeout),
    "retry_times": Key("int", _D.retry_times, minimum=0),
    "retry_backoff": Key("number", _D.retry_backoff, minimum=0),
    "retry_after_max": Key("duration", _D.retry_after_max),
    "concurrency": Key("int", _D.concurrency, minimum=1),
    "delay": Key("number", _D.delay, minimum=0),
    "autothrottle": Key("bool", _D.autothrottle),
    "obey_robots": Key("bool", _D.obey_robots),
    "interval": Key("duration", _D.interval),
    "max_pages": Key("int", _D.max_pages, minimum=1),
    "depth": Key("int", _D.depth, minimum=0),
    "max_requests": Key("int", _D.max_requests, minimum=1),
    "run_timeout": Key("duration", _D.run_timeout),
    "failing_runs": Key("int", _D.failing_runs, minimum=1),
})

# The keys every [[sources]] table accepts; those inherited from [crawler] take its values as defaults.
SOURCE = Section("sources", {
    "name": Key("str", required=True),
    "kind": Key("str", required=True, choices=KINDS),
    "start_urls": Key("str_list", ()),
    "enabled": Key("bool", True),
    "allowed_domains": Key("str_list", ()),
    "headers": Key("str_table", MappingProxyType({})),
    "cookies": Key("str_table", MappingProxyType({})),
    "proxy": Key("str"),
    **{k: CRAWLER.keys[k] for k in ("interval", "max_pages", "depth", "obey_robots", "concurrency", "delay",
                                    "autothrottle", "max_download_size", "timeout", "recrawl_age",
                                    "user_agent")},
    "allow_private_networks": Key("bool"),  # None: the [network] table's value
})
_INHERITED = [k for k in SOURCE.keys if k in CRAWLER.keys]

# The keys of each kind, added to SOURCE: selectors and templates are checked further in _options.
KIND_KEYS: dict[str, Section] = {
    "paste-archive": Section("sources", {
        "listing_selector": Key("str"),  # CSS selector of paste links on the listing page
        "listing_regex": Key("str"),  # or a regex over the listing body; group "key" (or group 1) is the key
        "key_regex": Key("str", r"([A-Za-z0-9_-]{4,})/?(?:[?#].*)?$"),  # the key inside a paste link
        "raw_url": Key("str"),  # template of the raw content URL: {key}, {base} (scheme://host of the listing)
        "raw_link_selector": Key("str"),  # else: on the paste page, the link to the raw content
        "content_selector": Key("str"),  # else: on the paste page, the element holding the text
    }),
    "paste-api": Section("sources", {
        "items_path": Key("text", ""),  # dotted path to the list of pastes in the JSON ("" = the document)
        "key_field": Key("text", "key"),
        "url_field": Key("text", "scrape_url"),
        "date_field": Key("text", "date"),
        "size_field": Key("text", "size"),
        "raw_url": Key("str"),  # template used when an item has no url_field: {key}, {base}
    }),
    "forum": Section("sources", {"preset": Key("str"), "selectors": Key("table", {})}),
    "discourse": Section("sources", {"latest_path": Key("text", "/latest.json")}),
    "feed": Section("sources", {"follow_links": Key("bool", True)}),
    "telegram": Section("sources", {"channels": Key("str_list", ()), "base_url": Key("str", "https://t.me")}),
}


def load_crawl_config(config: Mapping[str, Any]) -> CrawlConfig:
    """Parse ``[crawler]`` and ``[[sources]]`` of a loaded configuration (``Home.load_config``); every
    error of every source is raised at once (:class:`~dumpwatch.errors.ConfigErrors`)."""
    path = path_of(config)
    defaults = CrawlerDefaults(**CRAWLER.read(config.get("crawler"), path=path))
    errors = Collector(path)
    sources = []
    names: set[str] = set()
    for i, raw in enumerate(array_of(config, "sources")):
        with errors.collect():
            src = _source(raw, i, defaults, path)
            if src.name in names:
                raise ConfigError(f"source name {src.name!r} is used twice; names must be unique",
                                  path=path, key=f"sources.{src.name}.name")
            names.add(src.name)
            sources.append(src)
    network = NetworkPolicy()
    with errors.collect():  # reported with the errors of the sources, all at once
        network = NetworkPolicy.from_config(config)
    errors.raise_any()
    return CrawlConfig(defaults, tuple(sources), path, network)


# -- what a declaration cannot say -------------------------------------------------------------------

class _Where:
    """Errors of one source: ``fail(key, message)`` names the file and ``sources.NAME.key``."""

    def __init__(self, where: str, path: str | None):
        self.where, self.path = where, path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=f"{self.where}.{key}")


def _check_url(c: _Where, key: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise c.fail(key, f"{url!r} is not an http(s) URL")
    return url


def _source(raw: Any, index: int, d: CrawlerDefaults, path: str | None) -> Source:
    if not isinstance(raw, Mapping):
        raise ConfigError("each [[sources]] entry must be a table", path=path, key=f"sources[{index}]")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"name must be letters, digits, '.', '_' or '-' (at most 64), not {name!r}",
                          path=path, key=f"sources[{index}].name")
    c = _Where(f"sources.{name}", path)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise c.fail("kind", f"unknown kind {kind!r}; one of: {', '.join(KINDS)}" if kind is not None
                     else f"is required: one of {', '.join(KINDS)}")
    inherited = {k: getattr(d, k) for k in _INHERITED}
    v = (SOURCE | KIND_KEYS[kind]).read(raw, path=path, where=c.where, defaults=inherited)

    options = _options(c, kind, v)
    start_urls = v["start_urls"]
    if kind == "telegram" and options.get("channels"):
        base = options["base_url"].rstrip("/")
        start_urls = start_urls + tuple(f"{base}/s/{ch}" for ch in options["channels"])
    if not start_urls:
        hint = " (or channels = [\"name\"])" if kind == "telegram" else ""
        raise c.fail("start_urls", f"at least one start URL is needed{hint}")
    for url in start_urls:
        _check_url(c, "start_urls", url)

    allowed = v["allowed_domains"]
    if not allowed:  # the hosts of the start URLs, with their port when it is not the scheme's default
        allowed = tuple(dict.fromkeys(host_port_entry(u) for u in start_urls))
    for dom in allowed:
        if split_host_port(dom) is None:
            raise c.fail("allowed_domains", f"{dom!r}: give host names only, or host:port (no scheme or path)")

    proxy = v["proxy"]
    if proxy is not None:
        scheme = urlsplit(proxy).scheme
        if scheme.startswith("socks"):
            raise c.fail("proxy", "SOCKS proxies are not supported by Scrapy: use an HTTP proxy, e.g. "
                                  "Tor's HTTPTunnelPort (proxy = \"http://127.0.0.1:9080\") or privoxy")
        _check_url(c, "proxy", proxy)

    common = {k: v[k] for k in SOURCE.keys if k not in ("start_urls", "allowed_domains", "proxy")}
    return Source(**common, start_urls=start_urls, allowed_domains=allowed, proxy=proxy,
                  options=MappingProxyType(options))


def _regex(c: _Where, key: str, value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise c.fail(key, f"not a valid regular expression: {exc}") from None
    return value


def _css(c: _Where, key: str, value: str | None) -> str | None:
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


def _options(c: _Where, kind: str, v: Mapping[str, Any]) -> dict[str, Any]:
    """The kind's own keys (``v``, read by its section), checked further: selectors, regexes, templates."""
    opts = {k: v[k] for k in KIND_KEYS[kind].keys}
    if kind == "paste-archive":
        for key in ("listing_selector", "raw_link_selector", "content_selector"):
            _css(c, key, opts[key])
        _regex(c, "listing_regex", opts["listing_regex"])
        _regex(c, "key_regex", opts["key_regex"])
        if not (opts["listing_selector"] or opts["listing_regex"]):
            raise c.fail("listing_selector", "a paste-archive source needs listing_selector (CSS, e.g. "
                                             "\"table a::attr(href)\") or listing_regex")
        _check_template(c, "raw_url", opts["raw_url"])
    elif kind == "paste-api":
        _check_template(c, "raw_url", opts["raw_url"])
    elif kind == "forum":
        preset = opts["preset"]
        if preset is not None and preset.lower() not in PRESETS:
            raise c.fail("preset", f"unknown preset {preset!r}; one of: {', '.join(PRESETS)} "
                                   "(or give every selector in [sources.selectors])")
        selectors = dict(PRESETS[preset.lower()]) if preset else {}
        for key, value in opts["selectors"].items():
            if key not in SELECTOR_KEYS:
                raise c.fail(f"selectors.{key}", f"unknown selector; {did_you_mean(key, SELECTOR_KEYS)}"
                                                 f"accepted: {', '.join(SELECTOR_KEYS)}")
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
        if not opts["latest_path"].startswith("/"):
            raise c.fail("latest_path", f"must be a path starting with '/', not {opts['latest_path']!r}")
    elif kind == "telegram":
        for ch in opts["channels"]:
            if not re.fullmatch(r"[A-Za-z0-9_]{3,64}", ch):
                raise c.fail("channels", f"{ch!r} is not a public channel name (letters, digits, '_')")
        _check_url(c, "base_url", opts["base_url"])
    return opts


def _check_template(c: _Where, key: str, template: str | None) -> None:
    if template is None:
        return
    try:
        template.format(key="k", base="http://h")
    except (KeyError, IndexError, ValueError) as exc:
        raise c.fail(key, f"template may use only {{key}} and {{base}}: {exc}") from None
    if "{key}" not in template:
        raise c.fail(key, "template must contain {key}")
