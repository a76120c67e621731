"""The Article 33 draft: a Markdown notification following the sections of the CNIL's online form.

The CNIL's breach notification service asks, section after section (see docs/alerts.md for the
sources): the organisation and its contact point; the nature of the breach; when and how it was
discovered; the categories and approximate numbers of people and of records; the categories of data
(special categories of GDPR Article 9 among them); the likely consequences; the measures taken or
proposed; whether the people were or will be informed (Article 34). :data:`SECTIONS` lists them in
that order. Each section is filled with what dumpwatch knows (the facts of
:func:`alerts.render.article33`) and every field only the controller can answer is marked
:data:`TODO` (« À compléter par le responsable de traitement » in French).

Every value from a page or the configuration goes through :func:`dumpwatch.escape.markdown`; the
only table is the evidence table (one row per copy). Rendered inside :func:`alerts.i18n.use`.
"""

from __future__ import annotations

from typing import Any

from dumpwatch.escape import markdown as md
from alerts import i18n
from alerts.i18n import N_, _, ngettext
from alerts.render import INCOMPLETE, tr

TODO = N_("To be completed by the data controller")

# (key, title) of each section of the CNIL form, in its order; the draft's "## " headings.
SECTIONS = (
    ("organisation", N_("1. The organisation and its contact point")),
    ("nature", N_("2. Nature of the breach")),
    ("discovery", N_("3. Discovery of the breach")),
    ("people", N_("4. People and records concerned (approximate)")),
    ("data", N_("5. Categories of personal data")),
    ("consequences", N_("6. Likely consequences")),
    ("measures", N_("7. Measures taken or proposed")),
    ("information", N_("8. Information of the people concerned (GDPR Article 34)")),
    ("evidence", N_("9. Evidence collected by dumpwatch")),
)


def todo() -> str:
    return f"**{_(TODO)}**"


def draft_markdown(a: dict[str, Any], views: list[dict[str, Any]], lab: str = "") -> str:
    """The draft notification of the facts ``a`` (render's ``article33``) for ``views``, in Markdown."""
    title = dict(SECTIONS)
    copies = [v for v in views if v["verdict"] != "source-health"]
    complete = a.get("complete", True)
    least = "" if complete else " " + _("at least")
    labs = sorted({k for v in copies for k in v["records"]["by_lab"]})
    who = (_("the laboratory {lab}").format(lab=md(lab)) if lab else _("the controller(s)"))
    lines = [
        "# " + _("Draft: notification of a personal data breach (GDPR Article 33)"),
        "",
        "*" + _("Prepared by dumpwatch for {who}, in the order of the CNIL's online notification form. Check "
                "every fact before sending; fill in every field marked {todo}.").format(who=who, todo=_(TODO)) + "*",
        "",
        "**" + _("Deadline:") + "** " + _("{deadline} (72 hours from detection at {detected}).").format(
            deadline=i18n.date(a["deadline"]), detected=i18n.date(a["detected_at"])),
        "",
        "## " + _(title["organisation"]),
        "",
        "- " + _("Data controller: {controller}").format(
            controller=md(lab) if lab else (", ".join(md(x) for x in labs) + " — " + todo() if labs else todo())),
        "- " + _("Registration number (SIREN) and address: {value}").format(value=todo()),
    ]
    c = a.get("contact") or {}
    if c.get("name") or c.get("email") or c.get("phone"):
        lines += ["- " + _("Contact point (data-protection officer): {name}").format(name=md(c.get("name")) or todo()),
                  "- " + _("Email: {email}").format(email=md(c.get("email")) or todo()),
                  "- " + _("Telephone: {phone}").format(phone=md(c.get("phone")) or todo())]
    else:
        lines.append("- " + _("Contact point (data-protection officer): {name}").format(
            name=md(a.get("contact_point")) or todo()))
    sources = ", ".join(md(s) for s in a.get("sources") or [])
    lines += [
        "",
        "## " + _(title["nature"]),
        "",
        "- " + _("Type of breach: loss of confidentiality (personal data disclosed to unauthorised people)"),
        "- " + _("Circumstances: {nature}.").format(nature=a["nature"]),
        "- " + _("Origin and cause of the breach (how the file left the information system): {value}").format(
            value=todo()),
        "- " + ngettext("Location where the data was found:", "Locations where the data was found:",
                        len(a["locations"])),
        *[f"  - {md(u)}" for u in a["locations"]],
        "",
        "## " + _(title["discovery"]),
        "",
        "- " + _("Discovered on {detected} by dumpwatch, which monitors public sites for copies of the leaked "
                 "file{sources}.").format(
            detected=i18n.date(a["detected_at"]),
            sources=(" (" + _("sources: {sources}").format(sources=sources) + ")") if sources else ""),
        "- " + _("First seen online by dumpwatch: {when} (the copy may have been published earlier).").format(
            when=i18n.date(a.get("first_seen")) or todo()),
        "- " + _("Date the breach began, and date the controller became aware of it: {value}").format(value=todo()),
        "- " + _("If this notification is sent after the 72-hour deadline, the reasons for the delay: {value}").format(
            value=todo()),
        "",
        "## " + _(title["people"]),
        "",
        "- " + _("Categories of people: {people}").format(
            people=_("patients of the laboratory {lab}").format(lab=md(lab)) if lab
            else _("patients of medical biology laboratories")),
        "- " + _("People concerned: about {n}{least} (largest copy of each leak; copies overlap)").format(
            n=i18n.number(a["people_approx"]), least=least),
        "- " + _("Records concerned: {n}{least} across the copies found").format(
            n=i18n.number(a["records_approx"]), least=least),
        "- " + _("People in the original leaked file: {enrolled}").format(
            enrolled="; ".join(f"{md(k)}: {i18n.number(n)}" for k, n in a["people_in_enrolled_leak"].items())
            or _("unknown")),
    ]
    if not complete:
        n = len(a["incomplete_locations"])
        lines.append("- **" + _(INCOMPLETE)[:1].upper() + _(INCOMPLETE)[1:] + "**: " + ngettext(
            "{n} copy could not be read completely ({locations}); it may hold more people than counted here",
            "{n} copies could not be read completely ({locations}); they may hold more people than counted here",
            n).format(n=i18n.number(n), locations=", ".join(md(u) for u in a["incomplete_locations"])))
    special = "health" in a["categories"]
    lines += [
        "",
        "## " + _(title["data"]),
        "",
        *[f"- {md(t)}" for t in a["categories_text"]],
        "- " + (_("Special categories of data (GDPR Article 9): yes, health data") if special else
                _("Special categories of data (GDPR Article 9): none found by dumpwatch; {value}").format(
                    value=todo())),
        "",
        "## " + _(title["consequences"]),
        "",
        *[f"- {t}" for t in a["likely_consequences"]],
        "- " + _("Severity of the consequences for the people, as assessed by the controller: {value}").format(
            value=todo()),
        "",
        "## " + _(title["measures"]),
        "",
        "- " + _("Measures already taken: {value}").format(value=todo()),
        "- " + _("Measures proposed:"),
        *[f"  - {t}" for t in a["measures_proposed"]],
        "",
        "## " + _(title["information"]),
        "",
        ("- " + _("The data include {what}: the risk to the people is likely high, and Article 34 then requires "
                  "informing them without undue delay.").format(what=", ".join(
                      tr(_KINDS, k) for k in ("health", "nir") if k in a["categories"])))
        if set(a["categories"]) & {"health", "nir"} else
        "- " + _("Whether the risk to the people is high (Article 34) is for the controller to assess."),
        "- " + _("Have the people been informed, or will they be (when, how, with what message)? {value}").format(
            value=todo()),
        "",
        "## " + _(title["evidence"]),
        "",
        "| " + " | ".join((_("Location"), _("Detected"), _("Records"), "SHA-256")) + " |",
        "|---|---|---|---|",
        *[f"| {md(v['url'])} | {i18n.date(v['detected_at'])} | {i18n.number(v['records']['matched'])} | "
          f"`{v['sha256']}` |" for v in copies],
        "",
    ]
    return "\n".join(lines)


_KINDS = {"health": N_("health data (GDPR Article 9)"), "nir": N_("social-security numbers (NIR)")}
