"""The alerting part of dumpwatch.toml: receivers, lab contacts, routes and delivery settings.

Declared once here (:data:`ALERTS`, :data:`RECEIVER`, :data:`ROUTE`, checked by
:mod:`dumpwatch.tables`; ``[smtp]``, which email receivers inherit, and ``[contacts]`` in
:mod:`alerts.contacts`), parsed into frozen dataclasses once where the configuration enters (the
crawl pipeline, the delivery job, the commands); every error names the file, the receiver or route
and the key, and says how to fix it; the errors of every table are reported at once. See docs/alerts.md for the reference and a full example::

    [alerts]
    authority_receiver = "cnil"
    operators_receiver = "ops"

    language = "fr"                 # default of every receiver; "en" also spoken
    timezone = "Europe/Paris"       # dates in messages

    [smtp]                          # what every email receiver inherits
    host = "smtp.example"
    user = "dumpwatch"
    password_env = "DUMPWATCH_SMTP_PASSWORD"
    from = "dumpwatch@monitor.example"

    [[receivers]]
    name = "cnil"
    type = "email"
    to = ["violations@cnil.example"]

    [contacts]                      # each lab's DPO: alerts go to email (through [smtp]), the draft names them
    "Biolab Vannes" = { name = "Dr Anne Martin", email = "dpo@biolab-vannes.example", phone = "+33 2 97 00 00 00" }
    "Labo Lorient" = "dpo-lorient"  # short form: the name of a [[receivers]] table

    [[routes]]
    match = { verdict = "repost" }
    receiver = "cnil"
    continue = true
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


from alerts.contacts import Contact, contact, smtp_defaults
from alerts.credentials import credential, webhook_url
from alerts.i18n import DEFAULT_LANGUAGE, DEFAULT_TIMEZONE, LANGUAGES, zone
from dumpwatch.errors import ConfigError
from dumpwatch.redact import redact_url
from dumpwatch.tables import Collector, Key, Section, array_of, did_you_mean, path_of, table_of

log = logging.getLogger(__name__)

SEVERITIES = ("info", "low", "medium", "high", "critical")
MATCH_KEYS = ("leak", "verdict", "severity", "lab", "source")
VERDICTS = ("repost", "schema-match", "source-health")

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
    # webhook: the URL is a credential (Slack, Mattermost): from the environment or a file, shown redacted
    url: str = ""
    url_env: str | None = None
    url_file: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    format: str = "json"  # json | slack
    # both
    timeout: float = 10.0
    verify_tls: bool = True
    ca_file: str | None = None
    language: str = DEFAULT_LANGUAGE  # of the messages it gets

    def password(self) -> str | None:
        """The SMTP password, from the environment or a file (never from the configuration itself)."""
        return credential(self.name, "password", self.password_env, self.password_file)

    def endpoint(self) -> str:
        """The webhook URL: ``url``, or read from ``url_env`` / ``url_file`` (at each use, like the secret)."""
        return self.url or webhook_url(self.name, self.url_env, self.url_file)

    @property
    def target(self) -> str:
        """Where the receiver sends, as shown by the commands: the recipients of an email receiver,
        a webhook's URL redacted (:func:`dumpwatch.redact.redact_url`) or where it is read from."""
        if self.type == "email":
            return ", ".join(self.to)
        if self.url:
            return redact_url(self.url)
        return f"url from ${self.url_env}" if self.url_env else f"url from file {self.url_file}"

    def secret(self) -> bytes:
        """The webhook signing secret, from the environment or a file."""
        value = credential(self.name, "secret", self.secret_env, self.secret_file)
        if not value:
            raise ConfigError(f"receiver {self.name!r} has no signing secret: set secret_env or secret_file",
                              key=f"receivers.{self.name}.secret_env")
        return value.encode()


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
    contact_point: str = ""  # DPO / contact point named in the Article 33 draft (labs: their own)
    contact_points: dict[str, Contact] = field(default_factory=dict)  # lab -> its DPO, from [contacts]
    language: str = DEFAULT_LANGUAGE  # of receivers that do not say theirs
    timezone: str = DEFAULT_TIMEZONE  # of the dates in messages
    path: str | None = None

    def contact_for(self, lab: str) -> Contact:
        """The contact point a draft for ``lab`` names ("" = the global ``contact_point``)."""
        point = self.contact_points.get(lab) if lab else None
        if point and point.text():
            return point
        return Contact(name=self.contact_point)

    def speech(self, receiver: str) -> tuple[str, str]:
        """The language and time zone of the messages of ``receiver``."""
        r = self.receivers.get(receiver)
        return (r.language if r else self.language), self.timezone

    @property
    def configured(self) -> bool:
        return bool(self.receivers)


# -- the declared tables (dumpwatch.tables) ----------------------------------------------------------

_A = Alerting()
ALERTS = Section("alerts", {
    "authority_receiver": Key("str", _A.authority_receiver),
    "operators_receiver": Key("str", _A.operators_receiver),
    "fallback_receiver": Key("str"),
    "group_wait": Key("duration", _A.timing.group_wait),
    "group_interval": Key("duration", _A.timing.group_interval),
    "repeat_interval": Key("duration", _A.timing.repeat_interval),
    "max_age": Key("duration", _A.max_age),
    "retry_base": Key("duration", _A.retry_base),
    "retry_cap": Key("duration", _A.retry_cap),
    "lease": Key("duration", _A.lease),
    "incident_ttl": Key("duration", _A.incident_ttl),
    "critical_records": Key("int", _A.critical_records, minimum=0),
    "high_records": Key("int", _A.high_records, minimum=0),
    "contact_point": Key("text", ""),
    "language": Key("text", DEFAULT_LANGUAGE, choices=LANGUAGES, hint="the default language of receivers"),
    "timezone": Key("str", DEFAULT_TIMEZONE, hint="an IANA time zone, e.g. \"Europe/Paris\" or \"UTC\""),
    "authority_digest": Key("bool", False),
    "digest_interval": Key("duration", Route.digest_interval),
})

_R = Receiver("", "")
RECEIVER = Section("receivers", {
    "name": Key("str", required=True),
    "type": Key("text", required=True, choices=("email", "webhook")),
    "to": Key("str_list", (), hint="e.g. to = [\"dpo@lab.example\"]"),
    "from": Key("text", _R.sender),
    "smtp_host": Key("text", _R.smtp_host),
    "smtp_port": Key("int", minimum=1, maximum=65535, hint="a TCP port number"),
    "security": Key("text", _R.security, choices=("starttls", "tls", "none")),
    "username": Key("text"),
    "password_env": Key("text"),
    "password_file": Key("text"),
    "url": Key("text"),
    "url_env": Key("text"),
    "url_file": Key("text"),
    "secret_env": Key("text"),
    "secret_file": Key("text"),
    "format": Key("text", _R.format, choices=("json", "slack")),
    "timeout": Key("duration", _R.timeout),
    "verify_tls": Key("bool", _R.verify_tls),
    "ca_file": Key("text"),
    "language": Key("text", choices=LANGUAGES, hint="default: [alerts] language"),
})

ROUTE = Section("routes", {
    "name": Key("text"),
    "match": Key("table", {}, hint="e.g. match = { verdict = \"repost\" }"),
    "min_severity": Key("text", choices=SEVERITIES, hint="the lowest severity the route takes"),
    "receiver": Key("text"),
    "per_lab": Key("bool", False),
    "continue": Key("bool", False),
    "group_wait": Key("duration"),
    "group_interval": Key("duration"),
    "repeat_interval": Key("duration"),
    "digest": Key("bool", False),
    "digest_interval": Key("duration"),
})


def load(config: Mapping[str, Any] | None) -> Alerting:
    """Parse and validate the alerting configuration (an empty or ``None`` config gives defaults).

    ``[alerts]``, every ``[[receivers]]`` table and every ``[[routes]]`` table are checked whole;
    their errors are raised at once (:class:`~dumpwatch.errors.ConfigErrors`).
    """
    config = config or {}
    path = path_of(config)
    errors = Collector(path)
    a = ALERTS.read(config.get("alerts"), path=path)
    timing = Timing(a["group_wait"], a["group_interval"], a["repeat_interval"])
    try:
        zone(a["timezone"])
    except ValueError as exc:
        errors.add("alerts.timezone", str(exc))
    inherited: dict[str, Any] = {"language": a["language"]}
    with errors.collect():
        inherited.update(smtp_defaults(config, path))

    receivers: dict[str, Receiver] = {}
    raw_receivers = array_of(config, "receivers")
    # named but refused (its own error said why): not "undefined" again where it is referred to
    refused = {r.get("name") for r in raw_receivers if isinstance(r, Mapping)}
    for i, raw in enumerate(raw_receivers):
        with errors.collect():
            r = _receiver(raw, i, path, inherited)
            if r.name in receivers:
                raise ConfigError(f"two receivers are named {r.name!r}; names must be unique", path=path,
                                  key=f"receivers[{i}].name")
            receivers[r.name] = r

    contacts: dict[str, str] = {}
    points: dict[str, Contact] = {}
    for lab, entry in table_of(config, "contacts").items():
        with errors.collect():
            point = contact(lab, entry, path, receivers, refused)
            if point.receiver not in receivers and point.email and not isinstance(entry, str) \
                    and "receiver" not in entry:
                receivers[point.receiver] = _receiver(
                    {"name": point.receiver, "type": "email", "to": [point.email],
                     **({"language": entry["language"]} if "language" in entry else {})},
                    0, path, inherited, where=f"contacts.{lab}")
            contacts[lab] = point.receiver
            points[lab] = point

    for key in ("authority_receiver", "operators_receiver", "fallback_receiver"):
        if key in (config.get("alerts") or {}) and a[key] not in receivers and a[key] not in refused:
            errors.add(f"alerts.{key}", f"receiver {a[key]!r} is not defined in [[receivers]]; "
                                        f"{did_you_mean(a[key], receivers)}defined: {', '.join(receivers) or 'none'}")
    authority, operators = a["authority_receiver"], a["operators_receiver"]

    raw_routes = config.get("routes")
    routes: tuple[Route, ...] = ()
    if raw_routes is None:
        routes = _default_routes(receivers, authority, operators, timing, a["authority_digest"],
                                 a["digest_interval"])
    else:
        built = []
        for i, raw in enumerate(array_of(config, "routes")):
            with errors.collect():
                built.append(_route(raw, i, path, receivers, timing, a["digest_interval"], refused))
        routes = tuple(built)
    errors.raise_any()
    return Alerting(
        receivers=receivers, contacts=contacts, routes=routes,
        authority_receiver=authority, operators_receiver=operators,
        fallback_receiver=a["fallback_receiver"], timing=timing,
        max_age=a["max_age"], retry_base=a["retry_base"], retry_cap=a["retry_cap"], lease=a["lease"],
        incident_ttl=a["incident_ttl"], critical_records=a["critical_records"],
        high_records=a["high_records"], contact_point=a["contact_point"], contact_points=points,
        language=a["language"], timezone=a["timezone"], path=path,
    )


def _receiver(raw: Any, i: int, path: Any, inherited: Mapping[str, Any] | None = None,
              where: str | None = None) -> Receiver:
    """One receiver; an email receiver inherits what it does not say from ``[smtp]`` (``inherited``)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("each receiver is a [[receivers]] table", path=path, key=f"receivers[{i}]")
    name = raw.get("name")
    where = where or (f"receivers.{name}" if isinstance(name, str) and name else f"receivers[{i}]")
    inherited = dict(inherited or {})
    if raw.get("type") != "email":  # a webhook inherits the language only
        inherited = {k: v for k, v in inherited.items() if k == "language"}
    v = RECEIVER.read(raw, path=path, where=where, defaults=inherited)

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, path=path, key=f"{where}.{key}")

    name, kind, verify = v["name"], v["type"], v["verify_tls"]
    common = dict(name=name, type=kind, timeout=v["timeout"] or 10.0, verify_tls=verify, ca_file=v["ca_file"],
                  language=v["language"] or DEFAULT_LANGUAGE)
    if kind == "email":
        to = v["to"]
        if not to or not all("@" in a for a in to):
            raise fail("to", "an email receiver needs to = [\"address@example\", ...]")
        security = v["security"]
        port = v["smtp_port"] or {"starttls": 587, "tls": 465, "none": 25}[security]
        if v["username"] and not (v["password_env"] or v["password_file"]):
            raise fail("username", "a username needs password_env or password_file (never a password in the file)")
        if security == "none" and v["username"]:
            log.warning("receiver %s authenticates over an unencrypted SMTP connection", name)
        return Receiver(**common, to=to, sender=v["from"], smtp_host=v["smtp_host"], smtp_port=port,
                        security=security, username=v["username"], password_env=v["password_env"],
                        password_file=v["password_file"])
    url, given = v["url"], [k for k in ("url", "url_env", "url_file") if v[k]]
    if len(given) != 1:
        raise fail(given[1] if given else "url",
                   "a webhook receiver needs exactly one of url = \"https://...\", url_env = \"VARIABLE\" or "
                   "url_file = \"/path\" (prefer url_env or url_file: for Slack or Mattermost the URL is the "
                   f"credential){'; given: ' + ', '.join(given) if given else ''}")
    if url and not url.startswith(("http://", "https://")):
        raise fail("url", "a webhook receiver needs url = \"https://...\"")
    if not (v["secret_env"] or v["secret_file"]):
        raise fail("secret_env", "a webhook receiver needs secret_env or secret_file (the HMAC signing secret)")
    if not verify:
        log.warning("receiver %s: TLS verification is off (verify_tls = false); prefer ca_file", name)
    return Receiver(**common, url=url or "", url_env=v["url_env"], url_file=v["url_file"],
                    secret_env=v["secret_env"], secret_file=v["secret_file"], format=v["format"])


def _route(raw: Any, i: int, path: Any, receivers: dict[str, Receiver], timing: Timing,
           digest_interval: float, refused: set[Any] = frozenset()) -> Route:
    if not isinstance(raw, Mapping):
        raise ConfigError("each route is a [[routes]] table", path=path, key=f"routes[{i}]")
    name = str(raw.get("name") or f"routes[{i}]")
    where = f"routes.{name}" if raw.get("name") else name
    v = ROUTE.read(raw, path=path, where=where)

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, path=path, key=f"{where}.{key}")

    match: dict[str, tuple[str, ...]] = {}
    for key, value in v["match"].items():
        if key not in MATCH_KEYS:
            raise fail(f"match.{key}", f"cannot match on {key!r}; {did_you_mean(key, MATCH_KEYS)}"
                                       f"use one of {', '.join(MATCH_KEYS)}")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
            raise fail(f"match.{key}", "a matcher is a string or a list of strings (globs allowed)")
        if key == "severity":
            bad = [x for x in values if x not in SEVERITIES]
            if bad:
                raise fail("match.severity", f"unknown severity {bad[0]!r}; use {', '.join(SEVERITIES)}")
        match[key] = tuple(values)
    per_lab, receiver = v["per_lab"], v["receiver"]
    if per_lab and receiver:
        raise fail("receiver", "a per_lab route sends to each lab's contact: remove receiver")
    if not per_lab and receiver not in receivers and (not receiver or receiver not in refused):
        raise fail("receiver", f"receiver {receiver!r} is not defined in [[receivers]]; "
                               f"{did_you_mean(receiver, receivers)}defined: {', '.join(receivers) or 'none'}"
                   if receiver else "a route needs receiver = \"NAME\" (or per_lab = true)")

    def dur(key: str, default: float) -> float:
        return default if v[key] is None else v[key]

    return Route(
        name=name, match=match, min_severity=v["min_severity"], receiver=receiver, per_lab=per_lab,
        continue_=v["continue"],
        timing=Timing(dur("group_wait", timing.group_wait), dur("group_interval", timing.group_interval),
                      dur("repeat_interval", timing.repeat_interval)),
        digest=v["digest"], digest_interval=dur("digest_interval", digest_interval),
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
