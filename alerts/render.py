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

Every fixed string is a gettext msgid (:mod:`alerts.i18n`): a message is rendered in its receiver's
``language`` (French by default) with dates in the ``[alerts] timezone``; plurals go through
``ngettext``. The Article 33 draft, which follows the sections of the CNIL's notification form, is
:mod:`alerts.draft`; the sentences of a source-health alert are :func:`health_lines`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from dumpwatch import clock
from dumpwatch.escape import plain
from alerts import i18n
from alerts.i18n import N_, _, ngettext, npgettext, pgettext
from alerts.privacy import scrub, scrub_value
from alerts.settings import SEVERITIES, Contact

SCHEMA = "dumpwatch.alert/1"
DEADLINE_HOURS = 72
INCOMPLETE = N_("incomplete scan: the count is a lower bound")

CATEGORY_NAME = {"identity": N_("identity"), "contact": N_("contact details"), "nir": N_("NIR"),
                 "health": N_("health")}
CATEGORY_TEXT = {
    "identity": N_("civil status (names, sex, date of birth, postal address)"),
    "contact": N_("contact details (telephone numbers, email addresses)"),
    "nir": N_("social-security number (NIR), a lifelong national identifier"),
    "health": N_("health data (blood group, treating doctor, insurer, comments, treatments, pathologies): "
                 "a special category under GDPR Article 9"),
}
CONSEQUENCES = {
    "nir": N_("identity theft and fraud against social security and insurers (the NIR never changes)"),
    "health": N_("disclosure of health conditions (such as HIV status or pregnancy): discrimination, distress, "
                 "blackmail"),
    "contact": N_("targeted phishing, scam calls and text messages impersonating the lab or the health "
                  "insurance"),
    "identity": N_("identity theft when combined with other data; exposure of the home address"),
}
WIDER = N_("further circulation: the copy can be re-posted, indexed by search engines and sold again")
MEASURES = (
    N_("request the removal of the copy from the hosting site (and its search-engine caches)"),
    N_("keep monitoring for further copies (dumpwatch continues to crawl the known sources)"),
    N_("assess whether the risk is high enough to inform the people concerned (GDPR Article 34)"),
    N_("warn the people concerned of phishing and scam calls using their data"),
)
SEVERITY_NAME = {"info": N_("info"), "low": N_("low"), "medium": N_("medium"), "high": N_("high"),
                 "critical": N_("critical")}
VERDICT_NAME = {"repost": N_("repost"), "schema-match": N_("schema match"), "source-health": N_("source health")}
PROBLEM_NAME = {"failing": N_("failing"), "silent": N_("silent"), "losing": N_("losing pages")}
# what the crawler counts as a run's errors (crawler/middlewares.py: the exception's class name)
ERROR_NAME = {
    "DownloadConnectionRefusedError": N_("connection refused"),
    "ConnectionRefusedError": N_("connection refused"),
    "TimeoutError": N_("timeout"),
    "TCPTimedOutError": N_("timeout"),
    "DNSLookupError": N_("host name not found (DNS)"),
    "ConnectionLost": N_("connection lost"),
    "ResponseNeverReceived": N_("no response"),
    "SSLError": N_("TLS error"),
}


def tr(table: dict[str, str], key: str) -> str:
    """The translation of ``table[key]`` (``key`` itself when the table does not know it)."""
    return _(table[key]) if key in table else key


def severity_name(severity: str) -> str:
    return tr(SEVERITY_NAME, severity)


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
              contact: Contact | None = None) -> dict[str, Any] | None:
    """The facts of a GDPR Article 33 notification for the copies in ``views`` (None for health only),
    its sentences in the language of the render in progress."""
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
    n = len(copies)
    nature = (ngettext("confidentiality breach: personal data of a leaked file published again on {n} public "
                       "location", "confidentiality breach: personal data of a leaked file published again on "
                       "{n} public locations", n) if reposts else
              ngettext("a file shaped like a leaked one was published on {n} public location; no enrolled record "
                       "confirmed yet", "a file shaped like a leaked one was published on {n} public locations; "
                       "no enrolled record confirmed yet", n)).format(n=i18n.number(n))
    contact = contact or Contact()
    return {
        "complete": not incomplete,
        "incomplete_locations": incomplete,
        "nature": nature,
        "people_approx": sum(per_leak.values()),  # copies of one leak overlap: the largest copy counts
        "records_approx": sum(v["records"]["matched"] for v in copies),
        "people_in_enrolled_leak": enrolled,
        "categories": categories,
        "categories_text": [tr(CATEGORY_TEXT, c) for c in categories],
        "likely_consequences": [_(CONSEQUENCES[c]) for c in categories if c in CONSEQUENCES] + [_(WIDER)],
        "measures_proposed": [_(m) for m in MEASURES],
        "locations": [v["url"] for v in copies],
        "sources": sorted({v["source"] for v in copies if v["source"]}),
        "first_seen": min((v["first_seen"] for v in copies if v.get("first_seen")), default=None),
        "detected_at": detected,
        "deadline": clock.iso(clock.parse(detected) + timedelta(hours=DEADLINE_HOURS)),
        "contact_point": contact.text(),
        "contact": {"name": contact.name, "email": contact.email, "phone": contact.phone},
        "scope": {"lab": lab} if lab else {"lab": None},
    }


def _category_order(c: str) -> int:
    order = ("nir", "health", "contact", "identity")
    return order.index(c) if c in order else len(order)


def render(*, receiver: str, kind: str, idempotency_key: str, views: list[dict[str, Any]],
           incident: dict[str, Any] | None, leaks: dict[str, dict[str, Any]], lab: str = "",
           contact: Contact | None = None, new_keys: set[str] | None = None,
           language: str = i18n.DEFAULT_LANGUAGE, timezone: str = i18n.DEFAULT_TIMEZONE) -> Message:
    """Render a notification of ``views`` (the alerts of one group) for ``receiver``, in ``language``
    with dates in ``timezone``; ``contact`` is the contact point the draft names (a lab's DPO)."""
    from alerts.draft import draft_markdown

    with i18n.use(language, timezone):
        severity = max((v["severity"] for v in views), key=SEVERITIES.index, default="info")
        art33 = article33(views, leaks, lab, contact)
        new_keys = new_keys if new_keys is not None else {v["alert_key"] for v in views}
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "idempotency_key": idempotency_key,
            "receiver": receiver,
            "kind": kind,
            "language": language,
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


def records_text(n: int) -> str:
    """``1 record``, ``2 records`` (``1 enregistrement``, ``2 enregistrements``)."""
    return ngettext("{n} record", "{n} records", n).format(n=i18n.number(n))


def copies_text(n: int) -> str:
    return ngettext("{n} copy", "{n} copies", n).format(n=i18n.number(n))


def _subject(kind: str, severity: str, views: list[dict[str, Any]], lab: str, new: int) -> str:
    e = plain
    prefix = {"reminder": pgettext("subject", "Reminder: "), "update": pgettext("subject", "Update: "),
              "digest": pgettext("subject", "Digest: ")}.get(kind, "")
    copies = [v for v in views if v["verdict"] != "source-health"]
    if not copies:
        problems = sorted({tr(PROBLEM_NAME, str(v.get("detail", {}).get("problem", "problem"))) for v in views})
        sources = sorted({v["source"] for v in views})
        return _("[dumpwatch] {prefix}source health: {sources} {problems}").format(
            prefix=prefix, sources=e(", ".join(sources)), problems=e("/".join(problems)))
    leaks = e(", ".join(sorted({v.get("leak") or "unknown" for v in copies})))
    records = sum(v["records"]["matched"] for v in copies)
    verdicts = sorted({v["verdict"] for v in copies})
    what = "/".join(tr(VERDICT_NAME, x) for x in verdicts)
    n = len(copies)
    if lab:
        return npgettext("subject", "[dumpwatch] {prefix}{severity}: {records} of {lab} patients found in {copies} "
                         "of leak {leaks}", "[dumpwatch] {prefix}{severity}: {records} of {lab} patients found in "
                         "{copies} of leak {leaks}", records).format(
            prefix=prefix, severity=severity_name(severity).upper(), records=records_text(records), lab=e(lab),
            copies=copies_text(n), leaks=leaks)
    return _("[dumpwatch] {prefix}{severity} {what} of {leaks}: {records} in {copies}").format(
        prefix=prefix, severity=severity_name(severity).upper(), what=what, leaks=leaks,
        records=records_text(records), copies=copies_text(n))


def health_lines(v: dict[str, Any], e: Callable[[Any], str] = plain) -> list[str]:
    """A source-health alert in sentences: what is wrong with which source, since when, and what to do."""
    d = dict(v.get("detail") or {})
    problem = str(d.pop("problem", ""))
    source = e(v["source"])
    urls = d.pop("urls", None) or []
    where = (_("source {source} ({urls})").format(source=source, urls=e(", ".join(map(str, urls))))
             if urls else _("source {source}").format(source=source))
    detected = i18n.date(v["detected_at"])
    last = d.pop("last_success", None)
    since = (_("last successful run: {when}").format(when=i18n.date(last)) if last
             else _("no successful run recorded"))
    errors = d.pop("last_errors", None) or {}
    lines: list[str] = []
    if problem == "failing":
        runs = int(d.pop("failed_runs", 0) or 0)
        reason = d.pop("last_reason", "")
        lines.append("- " + ngettext("The {where} failed its last run ({since}).",
                                     "The {where} failed its last {n} runs ({since}).", runs).format(
            where=where, n=i18n.number(runs), since=since))
        if reason:
            lines.append("  " + _("Reason given by the last run: {reason}.").format(reason=e(reason)))
        advice = _("Check that the site answers from this machine (a browser or curl on the URL above), then run "
                   "`dumpwatch crawl {source}`; if it moved or closed, update or disable the source in "
                   "dumpwatch.toml.").format(source=source)
    elif problem == "silent":
        before = int(d.pop("listed_before", 0) or 0)
        lines.append("- " + ngettext("The {where} listed nothing on its last run, while it listed {n} item before: "
                                     "the site may have changed its layout, or be blocking us.",
                                     "The {where} listed nothing on its last run, while it listed {n} items before: "
                                     "the site may have changed its layout, or be blocking us.", before).format(
            where=where, n=i18n.number(before)))
        d.pop("since_run", None)
        d.pop("pages", None)
        advice = _("Open the listing page in a browser and compare it with the source's selectors (or preset) in "
                   "dumpwatch.toml; `dumpwatch crawl {source}` shows what a run sees.").format(source=source)
    elif problem == "losing":
        runs = int(d.pop("runs_losing_pages", 0) or 0)
        lost = d.pop("lost_pages", []) or []
        lines.append("- " + ngettext("The {where} reads its listings but lost pages on its last run ({since}).",
                                     "The {where} reads its listings but lost pages on each of its last {n} runs "
                                     "({since}).", runs).format(where=where, n=i18n.number(runs), since=since))
        if lost:
            lines.append("  " + _("Pages lost per run: {lost}.").format(lost=", ".join(i18n.number(int(x))
                                                                                      for x in lost)))
        advice = _("Those pages are fetched again each run and fail again: look at the crawl log of "
                   "`dumpwatch crawl {source}` (disk space, database locks, scan errors).").format(source=source)
    else:
        lines.append("- " + _("The {where} has a problem: {problem}.").format(where=where, problem=e(problem)))
        advice = ""
    if errors:
        parts = [_("{error} ({n}×)").format(error=e(tr(ERROR_NAME, str(k))), n=i18n.number(int(n)))
                 for k, n in sorted(errors.items())]
        lines.append("  " + _("Errors of the last run: {errors}.").format(errors=", ".join(parts)))
    for k, val in sorted(d.items()):  # anything else the crawler said, shown as it is
        lines.append(f"  {e(k)}: {e(val)}")
    lines.append("  " + _("Detected {when}.").format(when=detected))
    if advice:
        lines.append("  " + _("What to do: {advice}").format(advice=advice))
    return lines


def _copy_lines(v: dict[str, Any], e: Callable[[Any], str] = plain) -> list[str]:
    """The lines of one copy, each value from a page or a configuration passed through ``e``."""
    if v["verdict"] == "source-health":
        return health_lines(v, e)
    rec = v["records"]
    head = _("{verdict} of {leak} [{severity}] at {url}").format(
        verdict=tr(VERDICT_NAME, v["verdict"]), leak=e(v.get("leak") or "unknown"),
        severity=severity_name(v["severity"]), url=e(v["url"]))
    if v["source"]:
        head += " " + _("(source {source})").format(source=e(v["source"]))
    matched = i18n.number(rec["matched"])
    lines = [f"- {head}",
             "  " + _("first seen {first}, detected {detected}, notification deadline {deadline}").format(
                 first=i18n.date(v["first_seen"]), detected=i18n.date(v["detected_at"]),
                 deadline=i18n.date(v["notification_deadline"])),
             "  " + (ngettext("records matched: {matched} of {seen} row", "records matched: {matched} of {seen} rows",
                              rec["seen"]).format(matched=matched, seen=i18n.number(rec["seen"]))
                     if "seen" in rec else _("records matched: {matched}").format(matched=matched))]
    if not v.get("complete", True):
        lines.append("  " + _("{incomplete}: part of this copy could not be read; it may hold more records").format(
            incomplete=_(INCOMPLETE)))
    if rec["by_lab"]:
        lines.append("  " + _("by lab: {labs}").format(
            labs="; ".join(f"{e(k)}: {i18n.number(n)}" for k, n in rec["by_lab"].items())))
    if v.get("identifiers"):
        lines.append("  " + _("identifiers: {counts}").format(
            counts=", ".join(f"{e(k)}: {i18n.number(n)}" for k, n in sorted(v["identifiers"].items()))))
    names = ", ".join(tr(CATEGORY_NAME, c) for c in v["categories"])
    lines.append("  " + _("categories: {categories}").format(categories=e(names) or _("none")))
    size = int(v["size"] or 0)
    lines.append("  " + ngettext("content SHA-256: {sha} ({size} byte)", "content SHA-256: {sha} ({size} bytes)",
                                 size).format(sha=e(v["sha256"]), size=i18n.number(size)))
    if v.get("sample"):
        lines.append("  " + _("redacted sample: {sample}").format(sample=" | ".join(e(s) for s in v["sample"])))
    return lines


def _text(subject: str, data: dict[str, Any], markdown: str) -> str:
    lines = [subject, ""]
    inc = data.get("incident")
    if inc:
        lines.append(ngettext("Incident {id} ({n} alert so far, opened {opened}).",
                              "Incident {id} ({n} alerts so far, opened {opened}).", inc["alerts"]).format(
            id=inc["id"], n=i18n.number(inc["alerts"]), opened=i18n.date(inc["opened_at"])))
    lines.append(_("Severity: {severity}. Idempotency key: {key}.").format(
        severity=severity_name(data["severity"]), key=data["idempotency_key"]))
    lines.append("")
    for v in data["alerts"]:
        mark = _("NEW") + " " if v["alert_key"] in data["new_alerts"] and data["kind"] != "alert" else ""
        first, *rest = _copy_lines(v)
        lines.append(first.replace("- ", f"- {mark}", 1))
        lines.extend(rest)
    if markdown:
        lines += ["", "-" * 72, "", markdown]
    return "\n".join(lines) + "\n"


def _html(subject: str, data: dict[str, Any], a: dict[str, Any] | None, lab: str) -> str:
    e = html.escape
    parts = [f"<html lang='{e(data['language'])}'><body><h1>{e(subject)}</h1>",
             "<p>" + e(_("Severity: {severity}. Idempotency key: {key}.")).format(
                 severity=f"<b>{e(severity_name(data['severity']))}</b>",
                 key=f"<code>{e(data['idempotency_key'])}</code>") + "</p>"]
    for v in data["alerts"]:
        parts.append("<ul>" + "".join(f"<li>{e(line.strip().lstrip('- '))}</li>" for line in _copy_lines(v, plain))
                     + "</ul>")
    if a:
        least = "" if a.get("complete", True) else " " + _("at least ({incomplete})").format(
            incomplete=_(INCOMPLETE))
        parts.append(f"<h2>{e(_('Article 33 notification facts'))}</h2><table border='1' cellpadding='4'>")
        rows = [(_("Deadline"), _("{deadline} (72 hours from detection at {detected})").format(
                    deadline=i18n.date(a["deadline"]), detected=i18n.date(a["detected_at"]))),
                (_("Nature"), a["nature"]),
                (_("People concerned (approx.)"), i18n.number(a["people_approx"]) + least),
                (_("Records concerned"), i18n.number(a["records_approx"]) + least),
                (_("Categories"), plain("; ".join(a["categories_text"]))),
                (_("Likely consequences"), "; ".join(a["likely_consequences"])),
                (_("Measures proposed"), "; ".join(a["measures_proposed"]))]
        parts += [f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
        parts.append(f"</table><p>{e(_('The full draft is attached (article33-draft.md).'))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def probe_message(receiver: str, idempotency_key: str, language: str = i18n.DEFAULT_LANGUAGE,
                  timezone: str = i18n.DEFAULT_TIMEZONE) -> Message:
    """The message of `dumpwatch alerts test RECEIVER`, in the receiver's language."""
    with i18n.use(language, timezone):
        subject = _("[dumpwatch] test message for receiver {receiver}").format(receiver=plain(receiver))
        text = subject + "\n\n" + _("This is a test of the dumpwatch alert channel “{receiver}”, sent {when}. "
                                    "Idempotency key: {key}.").format(
            receiver=plain(receiver), when=i18n.date(clock.now()), key=idempotency_key) + "\n"
    data = {"schema": SCHEMA, "idempotency_key": idempotency_key, "receiver": receiver, "kind": "test",
            "language": language, "severity": "info", "incident": None, "alerts": [], "new_alerts": [],
            "article33": None}
    return Message(subject=subject, text=text, markdown="",
                   html=f"<html lang='{language}'><body><p>{html.escape(text)}</p></body></html>", data=data)


def fallback_message(message: Message, original: str, language: str = i18n.DEFAULT_LANGUAGE,
                     timezone: str = i18n.DEFAULT_TIMEZONE) -> Message:
    """``message``, undeliverable to receiver ``original``, as sent to the fallback receiver."""
    with i18n.use(language, timezone):
        subject = _("[dumpwatch] Undeliverable to {receiver}: {subject}").format(
            receiver=plain(original), subject=message.subject.removeprefix("[dumpwatch] "))
        text = _("This message could not be delivered to receiver “{receiver}”; it is sent to the fallback "
                 "receiver instead.").format(receiver=plain(original)) + "\n\n" + message.text
    return Message(subject=subject, text=text, markdown=message.markdown, html=message.html,
                   data={**message.data, "kind": "fallback", "original_receiver": original})
