"""Who gets what: severity of a finding, and the ordered routing list (like an alert router's tree).

Routes are evaluated in order; the first that matches takes the alert unless it says ``continue``.
A ``per_lab`` route fans out to each lab whose patients are in the copy, through the ``[contacts]``
table, and each of those alerts is scoped to its lab: the lab sees its own counts only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from alerts.settings import SEVERITIES, Alerting, Route, Timing

log = logging.getLogger(__name__)

SENSITIVE = ("nir", "health")
_warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def severity(verdict: str, categories: list[str] | tuple[str, ...], matched_records: int,
             alerting: Alerting | None = None) -> str:
    """From what is exposed (NIR and health data weigh most) and how many records.

    repost: critical if NIR or health data and at least ``critical_records`` records; high if NIR or
    health data, or at least ``high_records`` records; medium otherwise. schema-match: medium with
    NIR or health columns, low otherwise. source-health: info.
    """
    critical = alerting.critical_records if alerting else 100
    high = alerting.high_records if alerting else 1000
    sensitive = any(c in SENSITIVE for c in categories)
    if verdict == "repost":
        if sensitive and matched_records >= critical:
            return "critical"
        if sensitive or matched_records >= high:
            return "high"
        return "medium"
    if verdict == "schema-match":
        return "medium" if sensitive else "low"
    return "info"


@dataclass(frozen=True)
class Target:
    """One alert to enqueue: a receiver, the route that chose it and, for a lab contact, its lab."""

    receiver: str
    route: str
    lab: str  # "" = the whole copy (authority, operators); else the only lab this alert may show
    labels: dict[str, str]
    group_key: str
    timing: Timing
    digest_interval: float | None  # set for digest routes


def _matches(route: Route, labels: dict[str, str]) -> bool:
    for key, patterns in route.match.items():
        if key == "lab":
            continue  # checked per lab below
        if not any(fnmatchcase(labels.get(key, ""), p) for p in patterns):
            return False
    if route.min_severity and SEVERITIES.index(labels["severity"]) < SEVERITIES.index(route.min_severity):
        return False
    return True


def route(alerting: Alerting, labels: dict[str, str], labs: dict[str, int]) -> list[Target]:
    """The targets of an alert with ``labels`` (leak, verdict, severity, source) over a copy with ``labs``."""
    targets: list[Target] = []
    seen: set[tuple[str, str]] = set()
    for r in alerting.routes:
        if not _matches(r, labels):
            continue
        lab_patterns = r.match.get("lab")
        present = sorted(lab for lab, n in labs.items() if n > 0)
        if lab_patterns:
            present = [lab for lab in present if any(fnmatchcase(lab, p) for p in lab_patterns)]
            if not present:
                continue
        new: list[tuple[str, str]] = []
        if r.per_lab:
            for lab in present:
                receiver = alerting.contacts.get(lab)
                if receiver is None:
                    warn_once(f"contact:{lab}", "no contact for lab %r in [contacts]: it is not told of copies "
                              "holding its patients (the authority still is)", lab)
                    continue
                new.append((receiver, lab))
            if not new:
                continue
        else:
            assert r.receiver is not None
            new.append((r.receiver, ""))
        for receiver, lab in new:
            if (receiver, lab) in seen:
                continue  # one alert per receiver and scope, even if two routes lead there
            seen.add((receiver, lab))
            scoped = {**labels, "lab": lab, "receiver": receiver}
            if r.digest:
                group_key = f"{receiver}|{r.name}|digest"
            else:
                group_key = "|".join((receiver, r.name, labels.get("leak", ""), labels["verdict"], lab))
            targets.append(Target(receiver=receiver, route=r.name, lab=lab, labels=scoped, group_key=group_key,
                                  timing=r.timing, digest_interval=r.digest_interval if r.digest else None))
        if not r.continue_:
            break
    return targets
