"""The alerting part of dumpwatch.toml: receivers, lab contacts, routes and delivery settings.

Parsed into frozen dataclasses and validated once; every error names the file, the receiver or route
and the key, and says how to fix it. See docs/alerts.md for the reference and a full example::

    [alerts]
    authority_receiver = "cnil"
    operators_receiver = "ops"

    [[receivers]]
    name = "cnil"
    type = "email"
    to = ["violations@cnil.example"]

    [contacts]
    "Biolab Vannes" = "dpo-biolab"

    [[routes]]
    match = { verdict = "repost" }
    receiver = "cnil"
    continue = true
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process, utils

from dumpwatch.errors import ConfigError
from dumpwatch.home import section

log = logging.getLogger(__name__)

SEVERITIES = ("info", "low", "medium", "high", "critical")
MATCH_KEYS = ("leak", "verdict", "severity", "lab", "source")
VERDICTS = ("repost", "schema-match", "source-health")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any, *, where: str = "", path: Any = None) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"4h"``, ``"1d"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise ConfigError(f"a duration is a number of seconds or a string like '5m', not {value!r}",
                          path=path, key=where)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(f"a duration is a number of seconds or a string like '30s', '5m', '4h', '1d', "
                              f"not {value!r}", path=path, key=where)
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds < 0:
        raise ConfigError("a duration cannot be negative", path=path, key=where)
    return seconds


@dataclass(frozen=True)
class Timing:
    """Alertmanager-style grouping times, in seconds."""

    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0


@dataclass(frozen=True)
class Receiver:
    """Where messages go: an email address list or a webhook endpoint, with a name."""

    name: str
    type: str  # "email" | "webhook"
    # email
    to: tuple[str, ...] = ()
    sender: str = "dumpwatch@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    # webhook
    url: str = ""
    secret_env: str | None = None
    secret_file: str | None = None
    format: str = "json"  # json | slack
    # both
    timeout: float = 10.0
    verify_tls: bool = True
    ca_file: str | None = None

    def password(self) -> str | None:
        """The SMTP password, from the environment or a file (never from the configuration itself)."""
        return _credential(self.name, "password", self.password_env, self.password_file)

    def secret(self) -> bytes:
        """The webhook signing secret, from the environment or a file."""
        value = _credential(self.name, "secret", self.secret_env, self.secret_file)
        if not value:
            raise ConfigError(f"receiver {self.name!r} has no signing secret: set secret_env or secret_file",
                              key=f"receivers.{self.name}.secret_env")
        return value.encode()


def _credential(receiver: str, what: str, env: str | None, file: str | None) -> str | None:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"receiver {receiver!r}: environment variable {env} (its {what}) is not set; "
                              f"export it or use {what}_file", key=f"receivers.{receiver}.{what}_env")
        return value.strip()
    if file:
        p = Path(file).expanduser()
        try:
            return p.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"receiver {receiver!r}: cannot read its {what} file {p} ({exc.strerror}); "
                              f"create it (mode 0600) or use {what}_env", path=p,
                              key=f"receivers.{receiver}.{what}_file") from None
    return None


@dataclass(frozen=True)
class Route:
    """One node of the routing list: matchers, a receiver (or the lab contacts), grouping times."""

    name: str
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min_severity: str | None = None
    receiver: str | None = None
    per_lab: bool = False  # fan out to each lab of the copy through the [contacts] table
    continue_: bool = False
    timing: Timing = Timing()
    digest: bool = False
    digest_interval: float = 86400.0


@dataclass(frozen=True)
class Alerting:
    """Everything the alerts package needs from the configuration."""

    receivers: dict[str, Receiver] = field(default_factory=dict)
    contacts: dict[str, str] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    authority_receiver: str = "cnil"
    operators_receiver: str = "operators"
    fallback_receiver: str | None = None
    timing: Timing = Timing()
    max_age: float = 24 * 3600.0  # dead-letter after this long undelivered
    retry_base: float = 30.0
    retry_cap: float = 3600.0
    lease: float = 300.0  # a claimed message whose sender vanished is retried after this
    incident_ttl: float = 72 * 3600.0  # an incident without new copies for this long closes
    critical_records: int = 100
    high_records: int = 1000
    contact_point: str = ""  # DPO / contact point named in the Article 33 draft
    path: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.receivers)


_RECEIVER_KEYS = {
    "name", "type", "to", "from", "smtp_host", "smtp_port", "security", "username", "password_env",
    "password_file", "url", "secret_env", "secret_file", "format", "timeout", "verify_tls", "ca_file",
}
_ROUTE_KEYS = {"name", "match", "min_severity", "receiver", "per_lab", "continue", "group_wait",
               "group_interval", "repeat_interval", "digest", "digest_interval"}
_ALERTS_KEYS = {"authority_receiver", "operators_receiver", "fallback_receiver", "group_wait",
                "group_interval", "repeat_interval", "max_age", "retry_base", "retry_cap", "lease",
                "incident_ttl", "critical_records", "high_records", "contact_point", "authority_digest",
                "digest_interval"}


def load(config: dict[str, Any] | None) -> Alerting:
    """Parse and validate the alerting configuration (an empty or ``None`` config gives defaults)."""
    config = config or {}
    path = config.get("_path")
    table = section(config, "alerts")
    _unknown(table, _ALERTS_KEYS, path, "alerts")

    def dur(key: str, default: float, where: str = "alerts", src: dict | None = None) -> float:
        src = table if src is None else src
        return parse_duration(src[key], where=f"{where}.{key}", path=path) if key in src else default

    timing = Timing(dur("group_wait", 30.0), dur("group_interval", 300.0), dur("repeat_interval", 4 * 3600.0))

    receivers: dict[str, Receiver] = {}
    raw_receivers = config.get("receivers", [])
    if not isinstance(raw_receivers, list):
        raise ConfigError("write receivers as [[receivers]] tables", path=path, key="receivers")
    for i, raw in enumerate(raw_receivers):
        r = _receiver(raw, i, path)
        if r.name in receivers:
            raise ConfigError(f"two receivers are named {r.name!r}; names must be unique", path=path,
                              key=f"receivers[{i}].name")
        receivers[r.name] = r

    contacts_raw = section(config, "contacts")
    contacts: dict[str, str] = {}
    for lab, name in contacts_raw.items():
        if not isinstance(name, str) or name not in receivers:
            raise ConfigError(f"lab {lab!r} points to receiver {name!r}, which is not defined in [[receivers]]",
                              path=path, key=f"contacts.{lab}")
        contacts[lab] = name

    def ref(key: str, default: str | None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise ConfigError("must be a receiver name", path=path, key=f"alerts.{key}")
        if key in table and value not in receivers:
            raise ConfigError(f"receiver {value!r} is not defined in [[receivers]]", path=path, key=f"alerts.{key}")
        return value

    authority = ref("authority_receiver", "cnil")
    operators = ref("operators_receiver", "operators")
    fallback = ref("fallback_receiver", None)

    digest_interval = dur("digest_interval", 86400.0)
    raw_routes = config.get("routes")
    if raw_routes is None:
        routes = _default_routes(receivers, authority or "cnil", operators or "operators", timing,
                                 bool(table.get("authority_digest", False)), digest_interval)
    else:
        if not isinstance(raw_routes, list):
            raise ConfigError("write routes as [[routes]] tables", path=path, key="routes")
        routes = tuple(_route(raw, i, path, receivers, timing, digest_interval) for i, raw in enumerate(raw_routes))

    def intval(key: str, default: int) -> int:
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError("must be a non-negative integer", path=path, key=f"alerts.{key}")
        return value

    return Alerting(
        receivers=receivers, contacts=contacts, routes=routes,
        authority_receiver=authority or "cnil", operators_receiver=operators or "operators",
        fallback_receiver=fallback, timing=timing,
        max_age=dur("max_age", 24 * 3600.0), retry_base=dur("retry_base", 30.0),
        retry_cap=dur("retry_cap", 3600.0), lease=dur("lease", 300.0),
        incident_ttl=dur("incident_ttl", 72 * 3600.0),
        critical_records=intval("critical_records", 100), high_records=intval("high_records", 1000),
        contact_point=str(table.get("contact_point", "")), path=path,
    )


def _unknown(table: dict, allowed: set[str], path: Any, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}", path=path,
                              key=f"{where}.{key}")


def _receiver(raw: Any, i: int, path: Any) -> Receiver:
    if not isinstance(raw, dict):
        raise ConfigError("each receiver is a [[receivers]] table", path=path, key=f"receivers[{i}]")
    name = raw.get("name")
    where = f"receivers.{name}" if isinstance(name, str) and name else f"receivers[{i}]"
    if not isinstance(name, str) or not name:
        raise ConfigError("every receiver needs a name", path=path, key=f"{where}.name")
    _unknown(raw, _RECEIVER_KEYS, path, where)
    kind = raw.get("type")
    if kind not in ("email", "webhook"):
        raise ConfigError(f"type must be 'email' or 'webhook', not {kind!r}", path=path, key=f"{where}.type")
    timeout = parse_duration(raw.get("timeout", 10), where=f"{where}.timeout", path=path)
    verify = raw.get("verify_tls", True)
    if not isinstance(verify, bool):
        raise ConfigError("must be true or false", path=path, key=f"{where}.verify_tls")
    for key in ("password_env", "password_file", "secret_env", "secret_file", "ca_file", "username"):
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError("must be a string", path=path, key=f"{where}.{key}")
    common = dict(name=name, type=kind, timeout=timeout or 10.0, verify_tls=verify, ca_file=raw.get("ca_file"))
    if kind == "email":
        to = raw.get("to")
        if isinstance(to, str):
            to = [to]
        if not to or not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
            raise ConfigError("an email receiver needs to = [\"address@example\", ...]", path=path,
                              key=f"{where}.to")
        security = raw.get("security", "starttls")
        if security not in ("starttls", "tls", "none"):
            raise ConfigError(f"security must be 'starttls', 'tls' or 'none', not {security!r}", path=path,
                              key=f"{where}.security")
        port = raw.get("smtp_port", {"starttls": 587, "tls": 465, "none": 25}[security])
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError("must be a TCP port number", path=path, key=f"{where}.smtp_port")
        if raw.get("username") and not (raw.get("password_env") or raw.get("password_file")):
            raise ConfigError("a username needs password_env or password_file (never a password in the file)",
                              path=path, key=f"{where}.username")
        if "password" in raw:
            raise ConfigError("use password_env or password_file", path=path, key=f"{where}.password")
        if security == "none" and raw.get("username"):
            log.warning("receiver %s authenticates over an unencrypted SMTP connection", name)
        return Receiver(**common, to=tuple(to), sender=str(raw.get("from", "dumpwatch@localhost")),
                        smtp_host=str(raw.get("smtp_host", "localhost")), smtp_port=port, security=security,
                        username=raw.get("username"), password_env=raw.get("password_env"),
                        password_file=raw.get("password_file"))
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError("a webhook receiver needs url = \"https://...\"", path=path, key=f"{where}.url")
    if not (raw.get("secret_env") or raw.get("secret_file")):
        raise ConfigError("a webhook receiver needs secret_env or secret_file (the HMAC signing secret)",
                          path=path, key=f"{where}.secret_env")
    fmt = raw.get("format", "json")
    if fmt not in ("json", "slack"):
        raise ConfigError(f"format must be 'json' or 'slack', not {fmt!r}", path=path, key=f"{where}.format")
    if not verify:
        log.warning("receiver %s: TLS verification is off (verify_tls = false); prefer ca_file", name)
    return Receiver(**common, url=url, secret_env=raw.get("secret_env"), secret_file=raw.get("secret_file"),
                    format=fmt)


def _route(raw: Any, i: int, path: Any, receivers: dict[str, Receiver], timing: Timing,
           digest_interval: float) -> Route:
    if not isinstance(raw, dict):
        raise ConfigError("each route is a [[routes]] table", path=path, key=f"routes[{i}]")
    name = str(raw.get("name") or f"routes[{i}]")
    where = f"routes.{name}" if raw.get("name") else name
    _unknown(raw, _ROUTE_KEYS, path, where)
    match_raw = raw.get("match", {})
    if not isinstance(match_raw, dict):
        raise ConfigError("match is a table, e.g. match = { verdict = \"repost\" }", path=path, key=f"{where}.match")
    match: dict[str, tuple[str, ...]] = {}
    for key, value in match_raw.items():
        if key not in MATCH_KEYS:
            raise ConfigError(f"cannot match on {key!r}; use one of {', '.join(MATCH_KEYS)}", path=path,
                              key=f"{where}.match.{key}")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError("a matcher is a string or a list of strings (globs allowed)", path=path,
                              key=f"{where}.match.{key}")
        if key == "severity":
            bad = [v for v in values if v not in SEVERITIES]
            if bad:
                raise ConfigError(f"unknown severity {bad[0]!r}; use {', '.join(SEVERITIES)}", path=path,
                                  key=f"{where}.match.severity")
        match[key] = tuple(values)
    min_sev = raw.get("min_severity")
    if min_sev is not None and min_sev not in SEVERITIES:
        raise ConfigError(f"unknown severity {min_sev!r}; use {', '.join(SEVERITIES)}", path=path,
                          key=f"{where}.min_severity")
    per_lab = raw.get("per_lab", False)
    receiver = raw.get("receiver")
    if per_lab and receiver:
        raise ConfigError("a per_lab route sends to each lab's contact: remove receiver", path=path,
                          key=f"{where}.receiver")
    if not per_lab and receiver not in receivers:
        raise ConfigError(f"receiver {receiver!r} is not defined in [[receivers]]" if receiver else
                          "a route needs receiver = \"NAME\" (or per_lab = true)", path=path, key=f"{where}.receiver")
    for key in ("per_lab", "continue", "digest"):
        if key in raw and not isinstance(raw[key], bool):
            raise ConfigError("must be true or false", path=path, key=f"{where}.{key}")

    def dur(key: str, default: float) -> float:
        return parse_duration(raw[key], where=f"{where}.{key}", path=path) if key in raw else default

    return Route(
        name=name, match=match, min_severity=min_sev, receiver=receiver, per_lab=bool(per_lab),
        continue_=bool(raw.get("continue", False)),
        timing=Timing(dur("group_wait", timing.group_wait), dur("group_interval", timing.group_interval),
                      dur("repeat_interval", timing.repeat_interval)),
        digest=bool(raw.get("digest", False)), digest_interval=dur("digest_interval", digest_interval),
    )


def _default_routes(receivers: dict[str, Receiver], authority: str, operators: str, timing: Timing,
                    authority_digest: bool, digest_interval: float) -> tuple[Route, ...]:
    """Confirmed reposts → the authority and each lab's contact; schema matches and health → operators."""
    routes = []
    if authority in receivers:
        routes.append(Route(name="authority", match={"verdict": ("repost",)}, receiver=authority,
                            continue_=True, timing=timing, digest=authority_digest,
                            digest_interval=digest_interval))
    routes.append(Route(name="lab-contacts", match={"verdict": ("repost",)}, per_lab=True, continue_=True,
                        timing=timing))
    if operators in receivers:
        routes.append(Route(name="operators", match={"verdict": ("schema-match", "source-health")},
                            receiver=operators, timing=timing))
    return tuple(routes)


# -- what deliveries will need, checked before anything runs ------------------------------------------

SUGGEST_SCORE = 80.0  # rapidfuzz ratio (0-100, case and punctuation ignored) from which a lab is suggested


def preflight(alerting: Alerting, labs: Iterable[str] | None) -> tuple[list[ConfigError], list[str]]:
    """Errors and warnings a delivery or a routing would otherwise meet later.

    Every receiver's secret or password is read and its TLS context built (as the channels do);
    ``[contacts]`` is checked against ``labs``, the labs of the enrolled leaks (``None``: no leak
    enrolled, nothing to check against): a contact whose lab is not enrolled but close to one that
    is, is a misspelling (an error with a did-you-mean, since routing compares names exactly and that
    lab's contact would never be told); an enrolled lab without a contact is a warning.
    """
    from alerts.channels import tls_context

    errors: list[ConfigError] = []
    warnings: list[str] = []
    path = alerting.path

    def located(exc: ConfigError) -> ConfigError:  # in the configuration file (the message names others)
        return ConfigError(exc.message, path=path, key=exc.key) if path else exc

    for r in alerting.receivers.values():
        try:
            if r.type == "webhook":
                r.secret()
            else:
                r.password()
        except ConfigError as exc:
            errors.append(located(exc))
        if r.ca_file or not r.verify_tls:
            try:
                tls_context(r)
            except (OSError, ssl.SSLError) as exc:
                errors.append(ConfigError(f"receiver {r.name!r}: cannot load its CA file {r.ca_file!r} "
                                          f"({getattr(exc, 'strerror', None) or exc}); give a readable PEM file",
                                          path=path, key=f"receivers.{r.name}.ca_file"))
    if labs is None or not alerting.configured:  # no leak to check against; no receiver to tell at all
        return errors, warnings
    enrolled = sorted(set(labs))
    for lab in alerting.contacts:
        if lab in enrolled:
            continue
        best = process.extractOne(lab, enrolled, scorer=fuzz.ratio, processor=utils.default_process,
                                  score_cutoff=SUGGEST_SCORE) if enrolled else None
        if best is not None:
            errors.append(ConfigError(
                f"no enrolled leak has a lab {lab!r}: did you mean {best[0]!r}? Lab names must be written "
                f"exactly as in the enrolled file's lab column, or that lab's contact is never told",
                path=path, key=f"contacts.{lab}"))
        else:
            warnings.append(f"{path or 'the configuration'} [contacts.{lab}]: no enrolled leak has a lab "
                            f"{lab!r}; receiver {alerting.contacts[lab]!r} is told nothing until one does")
    per_lab = [r for r in alerting.routes if r.per_lab]
    whole = sorted({r.receiver for r in alerting.routes if not r.per_lab and r.receiver and _takes_reposts(r)})
    still = (f"{', '.join(whole)} still receive{'s' if len(whole) == 1 else ''} them" if whole else
             "no route sends reposts to any other receiver: nobody is told")
    for lab in enrolled:
        if lab in alerting.contacts:
            continue
        if per_lab:
            warnings.append(f"{path or 'the configuration'} [contacts]: enrolled lab {lab!r} has no contact: "
                            f"its DPO is not told of copies holding its patients ({still}); add "
                            f"{json.dumps(lab, ensure_ascii=False)} = \"RECEIVER\"")
    if enrolled and not per_lab:
        warnings.append(f"{path or 'the configuration'} [routes]: no route has per_lab = true, so no lab's "
                        f"contact is ever told ({still})")
    return errors, warnings


def _takes_reposts(route: Route) -> bool:
    verdicts = route.match.get("verdict")
    return not verdicts or any(fnmatchcase("repost", p) for p in verdicts)
