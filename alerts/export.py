"""Exports for analysts: a recorded finding as a MISP event (PyMISP) or a STIX 2.1 bundle (stix2).

What an export holds is the evidence the store holds, minus the redacted sample: the URL, the
source, the times, the content's SHA-256 and size, the verdict, the leak's name, the counts
(matched and seen records, identifiers by kind, records by lab) and the categories of data
exposed. Never a cleartext identifier, and not even the redacted sample (``1 85 05 ** …``,
``j***@…``): an export leaves the organisation, and a partial NIR (sex, year and month of birth)
is still a fragment of a person. Every text is passed through :func:`alerts.privacy.scrub` on
the way out, as a last guard.

- **MISP** (:func:`misp_event`): one event; a ``url`` object (the URL), a ``file`` object (SHA-256,
  size in bytes), a ``paste`` object (origin = the source, the URL, first and last seen; never the
  paste's text); the counts as ``counter`` attributes and the categories as ``text`` attributes;
  tags ``tlp:…``, ``dumpwatch:leak="…"`` and ``dumpwatch:verdict="…"``.
- **STIX 2.1** (:func:`stix_bundle`): a ``report`` of the leak (one id per leak name and enrolment
  time, so exports of several copies refer to the same report), a ``sighting`` of that report with
  the counts, an ``observed-data`` pointing at a ``url`` and a ``file`` (SHA-256, size)
  observable, the monitor's ``identity``; every object marked with the TLP marking definition.

Both need the ``export`` extra (``pip install 'dumpwatch[export]'``); without it
:class:`~dumpwatch.errors.DumpwatchError` says so.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from alerts.privacy import scrub, scrub_value
from dumpwatch.errors import DumpwatchError

TLP_LEVELS = ("white", "green", "amber", "red")
FORMATS = ("misp", "stix")
# Namespace of the STIX ids dumpwatch derives (the leak's report, the monitor's identity).
_NS = uuid.UUID("6f1e4a0e-7f4b-5b8e-9d0c-1d2a3b4c5d6e")


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DumpwatchError(f"exports need {module.split('.')[0]}, in the 'export' extra: "
                             "pip install 'dumpwatch[export]'") from None


def _when(iso: str | None) -> datetime:
    if not iso:
        return datetime.now(timezone.utc)
    dt = datetime.fromisoformat(iso)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _facts(finding: dict[str, Any]) -> dict[str, Any]:
    """What an export may say of a finding (the row of :func:`dumpwatch.store.get_finding`)."""
    return scrub_value({
        "id": finding["id"], "verdict": finding["verdict"], "leak": finding.get("leak") or "",
        "source": finding.get("source") or "", "url": finding.get("url") or "",
        "sha256": finding.get("sha256") or "", "size": finding.get("size") or 0,
        "first_seen": finding.get("first_seen"), "detected_at": finding.get("detected_at"),
        "matched_records": finding.get("matched_records") or 0, "records_seen": finding.get("records_seen") or 0,
        "identifiers": dict(finding.get("identifiers") or {}), "labs": dict(finding.get("labs") or {}),
        "categories": list(finding.get("categories") or []), "complete": bool(finding.get("complete", 1)),
    })


def _summary(f: dict[str, Any]) -> str:
    labs = ", ".join(f"{lab}: {n}" for lab, n in sorted(f["labs"].items(), key=lambda x: -x[1]))
    return (f"dumpwatch finding {f['id']}: {f['verdict']} of leak {f['leak'] or '-'}; {f['matched_records']} "
            f"confirmed records of {f['records_seen']} seen" + ("" if f["complete"] else " (read in part: lower bound)")
            + (f"; by lab: {labs}" if labs else "") + (f"; data exposed: {', '.join(f['categories'])}"
                                                        if f["categories"] else ""))


def _is_url(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


# -- MISP ------------------------------------------------------------------------------------------

def misp_event(finding: dict[str, Any], *, tlp: str = "amber") -> Any:
    """A :class:`pymisp.MISPEvent` for one finding (``event.to_json()`` is what MISP imports)."""
    pymisp = _need("pymisp")
    f = _facts(finding)
    seen = _when(f["first_seen"])
    ev = pymisp.MISPEvent()
    ev.info = scrub(f"dumpwatch: {f['verdict']} of leak {f['leak'] or '-'} at {f['url'] or f['source']}")
    ev.date = _when(f["detected_at"]).date()
    ev.distribution = 0  # your organisation only: the analyst shares it on purpose
    ev.threat_level_id = 1 if f["verdict"] == "repost" else 2
    ev.analysis = 2 if f["verdict"] == "repost" else 0
    ev.add_tag(f"tlp:{tlp}")
    if f["leak"]:
        ev.add_tag(f'dumpwatch:leak="{f["leak"]}"')
    ev.add_tag(f'dumpwatch:verdict="{f["verdict"]}"')
    if _is_url(f["url"]):
        url = pymisp.MISPObject("url")
        url.add_attribute("url", f["url"])
        url.add_attribute("first-seen", seen)
        ev.add_object(url)
    paste = pymisp.MISPObject("paste")
    paste.add_attribute("origin", f["source"] or "dumpwatch")
    if _is_url(f["url"]):
        paste.add_attribute("url", f["url"])
    paste.add_attribute("title", _summary(f))
    paste.add_attribute("first-seen", seen)
    paste.add_attribute("last-seen", _when(f["detected_at"]))
    ev.add_object(paste)
    if f["sha256"]:
        file = pymisp.MISPObject("file")
        file.add_attribute("sha256", f["sha256"])
        file.add_attribute("size-in-bytes", int(f["size"]))
        ev.add_object(file)
    counts = {"matched_records": f["matched_records"], "records_seen": f["records_seen"],
              **{f"identifiers.{k}": v for k, v in sorted(f["identifiers"].items())},
              **{f"lab: {k}": v for k, v in sorted(f["labs"].items())}}
    for what, n in counts.items():
        ev.add_attribute("counter", int(n), category="Other", comment=what, to_ids=False)
    for cat in f["categories"]:
        ev.add_attribute("text", cat, category="Other", comment="category of data exposed", to_ids=False)
    return ev


# -- STIX 2.1 --------------------------------------------------------------------------------------

def stix_bundle(finding: dict[str, Any], *, leak: dict[str, Any] | None = None, tlp: str = "amber") -> Any:
    """A :class:`stix2.Bundle` for one finding; ``leak`` is its row of ``dumpwatch.store.leaks``
    (``enrolled_at`` pins the report's id), when the leak is still enrolled."""
    stix2 = _need("stix2")
    f = _facts(finding)
    marking = {"white": stix2.TLP_WHITE, "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER,
               "red": stix2.TLP_RED}[tlp]
    marks = [marking.id]
    identity = stix2.Identity(id=f"identity--{uuid.uuid5(_NS, 'dumpwatch monitor')}", name="dumpwatch",
                              identity_class="system", description="dumpwatch leak monitor",
                              object_marking_refs=marks)
    first, last = _when(f["first_seen"]), _when(f["detected_at"])
    last = max(first, last)
    observables: list[Any] = []
    if _is_url(f["url"]):
        observables.append(stix2.URL(value=f["url"], object_marking_refs=marks))
    if f["sha256"]:
        observables.append(stix2.File(hashes={"SHA-256": f["sha256"]}, size=int(f["size"]),
                                      object_marking_refs=marks))
    objects: list[Any] = [marking, identity, *observables]
    observed = None
    if observables:
        observed = stix2.ObservedData(created_by_ref=identity.id, first_observed=first, last_observed=last,
                                      number_observed=1, object_refs=[o.id for o in observables],
                                      object_marking_refs=marks)
        objects.append(observed)
    leak_name = f["leak"] or "(unknown leak: schema match)"
    enrolled = (leak or {}).get("enrolled_at") or ""
    report = stix2.Report(
        id=f"report--{uuid.uuid5(_NS, f'leak:{leak_name}:{enrolled}')}", created_by_ref=identity.id,
        name=f"Leak {leak_name}", report_types=["threat-report"],
        published=_when(enrolled) if enrolled else first,
        description=(f"Enrolled leak {leak_name}: {leak['records']} records of {len(leak.get('labs') or {})} lab(s), "
                     f"watched by dumpwatch (keyed fingerprints only)" if leak else
                     f"{leak_name}, as seen by dumpwatch"),
        object_refs=[observed.id] if observed else [identity.id], object_marking_refs=marks)
    objects.append(report)
    sighting = stix2.Sighting(
        created_by_ref=identity.id, sighting_of_ref=report.id, first_seen=first, last_seen=last, count=1,
        observed_data_refs=[observed.id] if observed else None, where_sighted_refs=[identity.id],
        description=_summary(f), object_marking_refs=marks,
        custom_properties={"x_dumpwatch_verdict": f["verdict"], "x_dumpwatch_matched_records": f["matched_records"],
                           "x_dumpwatch_records_seen": f["records_seen"],
                           "x_dumpwatch_identifiers": f["identifiers"], "x_dumpwatch_labs": f["labs"],
                           "x_dumpwatch_categories": f["categories"], "x_dumpwatch_complete": f["complete"]})
    objects.append(sighting)
    return stix2.Bundle(objects=objects, allow_custom=True)


def export(finding: dict[str, Any], fmt: str, *, leak: dict[str, Any] | None = None, tlp: str = "amber") -> str:
    """The text of one export (``fmt``: ``misp`` or ``stix``), JSON."""
    if fmt == "misp":
        return misp_event(finding, tlp=tlp).to_json(indent=1)
    if fmt == "stix":
        return json.dumps(json.loads(stix_bundle(finding, leak=leak, tlp=tlp).serialize()), indent=1,
                          ensure_ascii=False)
    raise ValueError(f"unknown export format {fmt!r}")
