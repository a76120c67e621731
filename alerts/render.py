"""What an alert says: the message (subject, plain text, HTML, JSON) and the Article 33 draft (Markdown).

Everything is built from stored findings, never from the scanned content: URL, times, counts,
categories, content hash and the redacted sample, each string passed through
:func:`alerts.privacy.scrub` once more. A lab contact's view (``lab`` set) holds that lab's counts
only: no other lab's name or count, no per-identifier totals, no sample (the sample rows may belong
to other labs' patients).

A copy the engine could not read completely (``complete`` false on the finding: some records or
batches failed) says so on its lines, in the Article 33 facts and in the draft: its counts are a
lower bound, never to be reported as the whole.

What a page wrote (its URL, a source's problem, a lab or leak name) never acts on the reader: each
value is escaped for the output it enters, by the rule of :mod:`dumpwatch.escape` for that output
(``plain`` for the subject and the text, ``markdown`` for the draft, ``plain`` then
:func:`html.escape` for the HTML; the Slack/Mattermost text is made from the text by the webhook
channel). The JSON ``data`` keeps the values as they are: JSON is data.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from dumpwatch import clock
from dumpwatch.escape import markdown as md, plain
from alerts.privacy import scrub, scrub_value
from alerts.settings import SEVERITIES

SCHEMA = "dumpwatch.alert/1"
DEADLINE_HOURS = 72
INCOMPLETE = "incomplete scan: the count is a lower bound"

CATEGORY_TEXT = {
    "identity": "civil status (names, sex, date of birth, postal address)",
    "contact": "contact details (telephone numbers, email addresses)",
    "nir": "social-security number (NIR), a lifelong national identifier",
    "health": "health data (blood group, treating doctor, insurer, comments, treatments, pathologies): "
              "a special category under GDPR Article 9",
}
CONSEQUENCES = {
    "nir": "identity theft and fraud against social security and insurers (the NIR never changes)",
    "health": "disclosure of health conditions (such as HIV status or pregnancy): discrimination, distress, "
              "blackmail",
    "contact": "targeted phishing, scam calls and text messages impersonating the lab or the health insurance",
    "identity": "identity theft when combined with other data; exposure of the home address",
}
WIDER = "further circulation: the copy can be re-posted, indexed by search engines and sold again"
MEASURES = (
    "request the removal of the copy from the hosting site (and its search-engine caches)",
    "keep monitoring for further copies (dumpwatch continues to crawl the known sources)",
    "assess whether the risk is high enough to inform the people concerned (GDPR Article 34)",
    "warn the people concerned of phishing and scam calls using their data",
)


@dataclass(frozen=True)
class Message:
    """One rendered notification, frozen in the outbox so a retry sends the very same bytes."""

    subject: str
    text: str
    markdown: str  # the Article 33 notification draft
    html: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "text": self.text, "markdown": self.markdown, "html": self.html,
                "data": self.data}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Message":
        return cls(subject=d["subject"], text=d["text"], markdown=d["markdown"], html=d["html"], data=d["data"])


def alert_view(alert: dict[str, Any], finding: dict[str, Any]) -> dict[str, Any]:
    """The fields one alert shows, for its receiver's scope (``alert["lab"]``: "" = everything)."""
    lab = alert.get("lab") or ""
    detected = finding.get("detected_at") or alert["created_at"]
    view: dict[str, Any] = {
        "alert_key": alert["alert_key"],
        "finding_id": finding["id"],
        "verdict": finding["verdict"],
        "leak": finding.get("leak"),
        "severity": alert["severity"],
        "source": finding.get("source") or "",
        "url": scrub(finding.get("url") or ""),
        "first_seen": finding.get("first_seen"),
        "detected_at": detected,
        # stored as 0/1 (findings.complete); a finding from before that column is complete
        "complete": finding.get("complete") is None or bool(finding["complete"]),
    }
    if finding["verdict"] == "source-health":
        view["detail"] = scrub_value(finding.get("detail") or {})
        return view
    labs = finding.get("labs") or {}
    if lab:
        matched = int(labs.get(lab, 0))
        view["records"] = {"matched": matched, "by_lab": {lab: matched}}
        view["scope"] = {"lab": lab}
    else:
        view["records"] = {"matched": int(finding.get("matched_records") or 0),
                           "seen": int(finding.get("records_seen") or 0),
                           "by_lab": {k: int(v) for k, v in sorted(labs.items())}}
        view["identifiers"] = dict(finding.get("identifiers") or {})
        view["sample"] = [scrub(str(s)) for s in finding.get("sample") or []]
    view.update({
        "categories": list(finding.get("categories") or []),
        "schema_score": finding.get("schema_score"),
        "sha256": finding.get("sha256"),
        "size": finding.get("size"),
        "notification_deadline": clock.iso(clock.parse(detected) + timedelta(hours=DEADLINE_HOURS)),
    })
    return view


def article33(views: list[dict[str, Any]], leaks: dict[str, dict[str, Any]], lab: str = "",
              contact_point: str = "") -> dict[str, Any] | None:
    """The facts of a GDPR Article 33 notification for the copies in ``views`` (None for health only)."""
    copies = [v for v in views if v["verdict"] != "source-health"]
    if not copies:
        return None
    per_leak: dict[str, int] = {}
    for v in copies:
        name = v.get("leak") or "unknown"
        per_leak[name] = max(per_leak.get(name, 0), v["records"]["matched"])
    categories = sorted({c for v in copies for c in v["categories"]}, key=_category_order)
    detected = min(v["detected_at"] for v in copies)
    enrolled = {}
    for name in per_leak:
        info = leaks.get(name) or {}
        total = (info.get("labs") or {}).get(lab) if lab else info.get("records")
        if total:
            enrolled[name] = int(total)
    reposts = [v for v in copies if v["verdict"] == "repost"]
    incomplete = [v["url"] for v in copies if not v.get("complete", True)]
    return {
        "complete": not incomplete,
        "incomplete_locations": incomplete,
        "nature": ("confidentiality breach: personal data of a leaked file published again on "
                   f"{len(copies)} public location(s)" if reposts else
                   f"a file shaped like a leaked one was published on {len(copies)} public location(s); "
                   "no enrolled record confirmed yet"),
        "people_approx": sum(per_leak.values()),  # copies of one leak overlap: the largest copy counts
        "records_approx": sum(v["records"]["matched"] for v in copies),
        "people_in_enrolled_leak": enrolled,
        "categories": categories,
        "categories_text": [CATEGORY_TEXT.get(c, c) for c in categories],
        "likely_consequences": [CONSEQUENCES[c] for c in categories if c in CONSEQUENCES] + [WIDER],
        "measures_proposed": list(MEASURES),
        "locations": [v["url"] for v in copies],
        "detected_at": detected,
        "deadline": clock.iso(clock.parse(detected) + timedelta(hours=DEADLINE_HOURS)),
        "contact_point": contact_point,
        "scope": {"lab": lab} if lab else {"lab": None},
    }


def _category_order(c: str) -> int:
    order = ("nir", "health", "contact", "identity")
    return order.index(c) if c in order else len(order)


def render(*, receiver: str, kind: str, idempotency_key: str, views: list[dict[str, Any]],
           incident: dict[str, Any] | None, leaks: dict[str, dict[str, Any]], lab: str = "",
           contact_point: str = "", new_keys: set[str] | None = None) -> Message:
    """Render a notification of ``views`` (the alerts of one group) for ``receiver``."""
    severity = max((v["severity"] for v in views), key=SEVERITIES.index, default="info")
    art33 = article33(views, leaks, lab, contact_point)
    new_keys = new_keys if new_keys is not None else {v["alert_key"] for v in views}
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "idempotency_key": idempotency_key,
        "receiver": receiver,
        "kind": kind,
        "severity": severity,
        "incident": incident,
        "alerts": views,
        "new_alerts": sorted(new_keys),
        "article33": art33,
    }
    subject = _subject(kind, severity, views, lab, len(new_keys))
    markdown = draft_markdown(art33, views, lab) if art33 else ""
    text = _text(subject, data, markdown)
    body_html = _html(subject, data, art33, lab)
    return Message(subject=subject, text=text, markdown=markdown, html=body_html, data=data)


def _subject(kind: str, severity: str, views: list[dict[str, Any]], lab: str, new: int) -> str:
    e = plain
    prefix = {"reminder": "Reminder: ", "update": "Update: ", "fallback": "", "digest": "Digest: "}.get(kind, "")
    copies = [v for v in views if v["verdict"] != "source-health"]
    if not copies:
        problems = sorted({str(v.get("detail", {}).get("problem", "problem")) for v in views})
        sources = sorted({v["source"] for v in views})
        return f"[dumpwatch] {prefix}source health: {e(', '.join(sources))} {e('/'.join(problems))}"
    leaks = e(", ".join(sorted({v.get("leak") or "unknown" for v in copies})))
    records = sum(v["records"]["matched"] for v in copies)
    verdicts = sorted({v["verdict"] for v in copies})
    what = "repost" if verdicts == ["repost"] else "/".join(verdicts)
    n = len(copies)
    where = f"{n} cop{'y' if n == 1 else 'ies'}"
    if lab:
        return (f"[dumpwatch] {prefix}{severity.upper()}: {records} records of {e(lab)} patients found in "
                f"{where} of leak {leaks}")
    return f"[dumpwatch] {prefix}{severity.upper()} {what} of {leaks}: {records} records in {where}"


def _copy_lines(v: dict[str, Any], e: Callable[[Any], str] = plain) -> list[str]:
    """The lines of one copy, each value from a page or a configuration passed through ``e``."""
    if v["verdict"] == "source-health":
        detail = ", ".join(f"{e(k)}={e(val)}" for k, val in sorted(v.get("detail", {}).items()))
        return [f"- source {e(v['source'])}: {detail} (detected {v['detected_at']})"]
    rec = v["records"]
    lines = [f"- {v['verdict']} of {e(v.get('leak') or 'unknown')} [{v['severity']}] at {e(v['url'])}"
             + (f" (source {e(v['source'])})" if v["source"] else ""),
             f"  first seen {v['first_seen']}, detected {v['detected_at']}, "
             f"notification deadline {v['notification_deadline']}",
             f"  records matched: {rec['matched']}" + (f" of {rec['seen']} rows" if "seen" in rec else "")]
    if not v.get("complete", True):
        lines.append(f"  {INCOMPLETE}: part of this copy could not be read; it may hold more records")
    if rec["by_lab"]:
        lines.append("  by lab: " + "; ".join(f"{e(k)}: {n}" for k, n in rec["by_lab"].items()))
    if v.get("identifiers"):
        lines.append("  identifiers: " + ", ".join(f"{e(k)}: {n}" for k, n in sorted(v["identifiers"].items())))
    lines.append(f"  categories: {e(', '.join(v['categories'])) or 'none'}")
    lines.append(f"  content SHA-256: {e(v['sha256'])} ({v['size']} bytes)")
    if v.get("sample"):
        lines.append("  redacted sample: " + " | ".join(e(s) for s in v["sample"]))
    return lines


def _text(subject: str, data: dict[str, Any], markdown: str) -> str:
    lines = [subject, ""]
    inc = data.get("incident")
    if inc:
        lines.append(f"Incident {inc['id']} ({inc['alerts']} alert(s) so far, opened {inc['opened_at']}).")
    lines.append(f"Severity: {data['severity']}. Idempotency key: {data['idempotency_key']}.")
    lines.append("")
    for v in data["alerts"]:
        mark = "NEW " if v["alert_key"] in data["new_alerts"] and data["kind"] != "alert" else ""
        first, *rest = _copy_lines(v)
        lines.append(first.replace("- ", f"- {mark}", 1))
        lines.extend(rest)
    if markdown:
        lines += ["", "-" * 72, "", markdown]
    return "\n".join(lines) + "\n"


def draft_markdown(a: dict[str, Any], views: list[dict[str, Any]], lab: str = "") -> str:
    """A draft of the Article 33 notification, to complete and send to the CNIL (Markdown)."""
    who = f"the laboratory {md(lab)}" if lab else "the controller(s)"
    enrolled = "; ".join(f"{md(k)}: {n}" for k, n in a["people_in_enrolled_leak"].items()) or "unknown"
    lines = [
        "# Draft: notification of a personal data breach (GDPR Article 33)",
        "",
        f"*Prepared by dumpwatch for {who}. Check every fact before sending.*",
        "",
        f"**Deadline:** {a['deadline']} (72 hours from detection at {a['detected_at']}).",
        "",
        "## Nature of the breach",
        "",
        a["nature"] + ".",
        "",
        "Locations:",
        *[f"- {md(u)}" for u in a["locations"]],
        "",
        "## People and records concerned (approximate)",
        "",
        f"- People concerned: about {a['people_approx']} (largest copy of each leak; copies overlap)"
        + ("" if a.get("complete", True) else " at least"),
        f"- Records concerned: {a['records_approx']} across the copies found"
        + ("" if a.get("complete", True) else " at least"),
        f"- People in the original leaked file: {enrolled}",
        *([] if a.get("complete", True) else [
            f"- **{INCOMPLETE[0].upper() + INCOMPLETE[1:]}**: {len(a['incomplete_locations'])} cop"
            f"{'y' if len(a['incomplete_locations']) == 1 else 'ies'} could not be read completely "
            f"({', '.join(md(u) for u in a['incomplete_locations'])}); they may hold more people than counted "
            "here"]),
        "",
        "## Categories of personal data",
        "",
        *[f"- {md(t)}" for t in a["categories_text"]],
        "",
        "## Likely consequences",
        "",
        *[f"- {t}" for t in a["likely_consequences"]],
        "",
        "## Measures taken or proposed",
        "",
        *[f"- {t}" for t in a["measures_proposed"]],
        "",
        "## Contact point",
        "",
        md(a["contact_point"]) or "(name and contact details of the data-protection officer)",
        "",
        "## Evidence",
        "",
        "| Location | Detected | Records | SHA-256 |",
        "|---|---|---|---|",
        *[f"| {md(v['url'])} | {v['detected_at']} | {v['records']['matched']} | `{v['sha256']}` |"
          for v in views if v["verdict"] != "source-health"],
        "",
    ]
    return "\n".join(lines)


def _html(subject: str, data: dict[str, Any], a: dict[str, Any] | None, lab: str) -> str:
    e = html.escape
    parts = [f"<html><body><h1>{e(subject)}</h1>",
             f"<p>Severity: <b>{e(data['severity'])}</b>. Idempotency key: <code>{e(data['idempotency_key'])}</code></p>"]
    for v in data["alerts"]:
        parts.append("<ul>" + "".join(f"<li>{e(line.strip().lstrip('- '))}</li>" for line in _copy_lines(v, plain))
                     + "</ul>")
    if a:
        parts.append("<h2>Article 33 notification facts</h2><table border='1' cellpadding='4'>")
        rows = [("Deadline", f"{a['deadline']} (72 h from detection at {a['detected_at']})"),
                ("Nature", a["nature"]),
                ("People concerned (approx.)", str(a["people_approx"])
                 + ("" if a.get("complete", True) else f" at least ({INCOMPLETE})")),
                ("Records concerned", str(a["records_approx"])
                 + ("" if a.get("complete", True) else f" at least ({INCOMPLETE})")),
                ("Categories", plain("; ".join(a["categories_text"]))),
                ("Likely consequences", "; ".join(a["likely_consequences"])),
                ("Measures proposed", "; ".join(a["measures_proposed"]))]
        parts += [f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
        parts.append("</table><p>The full draft is attached (article33-draft.md).</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def probe_message(receiver: str, idempotency_key: str) -> Message:
    subject = f"[dumpwatch] test message for receiver {receiver}"
    text = (f"{subject}\n\nThis is a test of the dumpwatch alert channel {receiver!r}. "
            f"Idempotency key: {idempotency_key}.\n")
    data = {"schema": SCHEMA, "idempotency_key": idempotency_key, "receiver": receiver, "kind": "test",
            "severity": "info", "incident": None, "alerts": [], "new_alerts": [], "article33": None}
    return Message(subject=subject, text=text, markdown="", html=f"<html><body><p>{html.escape(text)}</p></body></html>",
                   data=data)
