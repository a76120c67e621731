"""French first, English available (issue 13): every message kind rendered in both languages from the
gettext catalogues, no msgid missing from either, no English left in the French render, plurals right."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from alerts import i18n
from alerts.draft import SECTIONS, TODO
from alerts.render import Message, alert_view, copies_text, fallback_message, probe_message, records_text, render
from alerts.settings import Contact

ROOT = Path(__file__).resolve().parents[2]
T0 = "2021-02-24T10:05:00+00:00"
LAB, OTHER = "Biolab Vannes", "LBM Armor Analyses"
LEAKS = {"labos-2021": {"records": 5000, "labs": {LAB: 300, OTHER: 200}}}


def _finding(verdict="repost", matched=41, labs=None, complete=1, **detail):
    if verdict == "source-health":
        return {"id": 9, "verdict": verdict, "source": "forum", "url": "", "detected_at": T0, "first_seen": T0,
                "detail": detail}
    return {"id": 1, "verdict": verdict, "leak": "labos-2021" if verdict == "repost" else None, "source": "pastes",
            "url": "https://paste.example/raw/x", "first_seen": "2021-02-24T09:00:00+00:00", "detected_at": T0,
            "labs": labs if labs is not None else {LAB: matched - 1, OTHER: 1}, "matched_records": matched,
            "records_seen": matched + 3, "identifiers": {"nir": matched, "email": matched},
            "sample": ["1 85 05 ** *** *** **", "j***@orange.fr"], "categories": ["nir", "health", "contact", "identity"],
            "sha256": "a" * 64, "size": 1234, "complete": complete}


def _alert(severity="high", lab=""):
    return {"alert_key": f"k-{severity}-{lab}", "severity": severity, "created_at": T0, "lab": lab}


HEALTH = [
    dict(problem="failing", failed_runs=3, last_success="2021-02-20T08:00:00+00:00", last_reason="finished",
         last_errors={"DownloadConnectionRefusedError": 2, "HTTP 503": 1}, urls=["http://forum.example/"]),
    dict(problem="silent", listed_before=14, since_run=7, pages=1, last_success=T0),
    dict(problem="losing", runs_losing_pages=3, lost_pages=[2, 1, 4], last_success=None, last_errors={}),
    dict(problem="blocked", note="captcha"),
]


def every_message(language: str) -> dict[str, Message]:
    """Every kind of message dumpwatch sends, in ``language``."""
    kw = dict(leaks=LEAKS, language=language, timezone="Europe/Paris")
    repost = alert_view(_alert("critical"), _finding())
    out = {
        "alert": render(receiver="cnil", kind="alert", idempotency_key="dw-1", views=[repost],
                        incident={"id": 1, "alerts": 1, "opened_at": T0}, contact=Contact(name="DPO of the labs"), **kw),
        "update-lab": render(receiver="lab0", kind="update", idempotency_key="dw-2",
                             views=[alert_view(_alert("high", LAB), _finding())], lab=LAB,
                             incident={"id": 2, "alerts": 2, "opened_at": T0},
                             contact=Contact(name="Dr Anne Martin", email="dpo@biolab.example", phone="+33 2 97 01 02 03"),
                             new_keys=set(), **kw),
        "reminder": render(receiver="cnil", kind="reminder", idempotency_key="dw-3", views=[repost], incident=None,
                           **kw),
        "digest-incomplete": render(receiver="cnil", kind="digest", idempotency_key="dw-4",
                                    views=[repost, alert_view(_alert("high"), _finding(matched=5, complete=0))],
                                    incident=None, **kw),
        "schema-match": render(receiver="ops", kind="alert", idempotency_key="dw-5",
                               views=[alert_view(_alert("medium"), _finding("schema-match", matched=0, labs={}))],
                               incident=None, **kw),
        "test": probe_message("cnil", "dw-test", language, "Europe/Paris"),
    }
    for i, detail in enumerate(HEALTH):
        out[f"health-{detail['problem']}"] = render(
            receiver="ops", kind="alert", idempotency_key=f"dw-h{i}",
            views=[alert_view(_alert("info"), _finding("source-health", **detail))], incident=None, **kw)
    out["fallback"] = fallback_message(out["alert"], "cnil", language, "Europe/Paris")
    return out


def _shown(m: Message) -> str:
    return "\n".join((m.subject, m.text, html.unescape(re.sub(r"<[^>]+>", " ", m.html)), m.markdown))


# -- the catalogues ---------------------------------------------------------------------------------

def _extracted() -> set[str | tuple[str, ...]]:
    """The msgids in the code, as `pybabel extract -F babel.cfg` finds them (context included)."""
    method_map = [("alerts/**.py", "python")]
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(str(ROOT), method_map):
        found.add((context, message) if context else message)
    return found


def _catalogue(language: str):
    po, _mo = i18n.catalogue_paths(language)
    with po.open("rb") as fp:
        return read_po(fp, locale=language)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_no_msgid_is_missing_from_either_catalogue(language):
    code = _extracted()
    assert len(code) > 100  # the extraction found the messages
    catalogue = {(m.context, m.id) if m.context else m.id: m for m in _catalogue(language) if m.id}
    assert sorted(map(str, code - set(catalogue))) == [], f"msgids missing from the {language} catalogue: make extract"
    if language == "fr":
        for key in code:
            m = catalogue[key]
            assert "fuzzy" not in m.flags, f"fuzzy French translation of {key!r}"
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            assert strings and all(s.strip() for s in strings), f"no French translation of {key!r}"
            msgid = m.id if isinstance(m.id, tuple) else (m.id,)
            placeholders = set(re.findall(r"\{\w+\}", " ".join(msgid)))
            for s in strings:  # a translation keeps every placeholder (a lost {n} would print nothing)
                assert set(re.findall(r"\{\w+\}", s)) == placeholders or len(strings) > 1, (key, s)


def test_the_catalogues_are_compiled_by_the_build():
    for language in i18n.LANGUAGES:
        po, mo = i18n.catalogue_paths(language)
        assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime, f"{mo}: run make locales"


# -- every message kind -----------------------------------------------------------------------------

def test_every_message_kind_renders_in_both_languages():
    fr, en = every_message("fr"), every_message("en")
    assert fr.keys() == en.keys()
    for kind in fr:
        assert fr[kind].subject != en[kind].subject, kind
        assert fr[kind].text != en[kind].text, kind
    assert "À compléter par le responsable de traitement" in fr["alert"].markdown
    assert TODO in en["alert"].markdown
    assert fr["alert"].subject.startswith("[dumpwatch] CRITIQUE republication de labos-2021 : 41 enregistrements")
    assert en["alert"].subject.startswith("[dumpwatch] CRITICAL repost of labos-2021: 41 records")


def _english_fragments() -> set[str]:
    """The fixed English text of every msgid (the parts between placeholders) that French does not share."""
    fragments = set()
    for m in _catalogue("fr"):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        french = " ".join(m.string if isinstance(m.string, tuple) else (m.string,))
        for msgid in ids:
            for chunk in re.split(r"\{\w+\}", msgid):
                chunk = chunk.strip(" .:;,()[]-")
                if len(chunk.split()) >= 2 and chunk not in french:
                    fragments.add(chunk)
    return fragments


def test_no_english_leaks_into_the_french_render():
    fragments = _english_fragments()
    assert "records matched" in fragments and "of leak" in fragments  # the check has teeth
    for kind, message in every_message("fr").items():
        shown = _shown(message)
        leaked = sorted(f for f in fragments if re.search(rf"(?<!\w){re.escape(f)}(?!\w)", shown))
        assert leaked == [], f"English in the French {kind} message: {leaked}"


def test_health_alert_is_a_sentence_with_the_source_url_and_advice():
    for language, says in (("fr", ("La source forum (http://forum.example/) a échoué à ses 3 dernières collectes",
                                   "connexion refusée (2 fois)", "Que faire : Vérifiez que le site répond")),
                           ("en", ("The source forum (http://forum.example/) failed its last 3 runs",
                                   "connection refused (2×)", "What to do: Check that the site answers"))):
        text = every_message(language)["health-failing"].text
        assert "last_errors" not in text and "{'" not in text and "DownloadConnectionRefusedError" not in text
        for s in says:
            assert s in text, (language, s, text)


# -- plurals and dates ------------------------------------------------------------------------------

def test_plurals_zero_one_two_in_both_languages():
    expected = {"fr": (["0 enregistrement", "1 enregistrement", "2 enregistrements"], ["0 copie", "1 copie", "2 copies"]),
                "en": (["0 records", "1 record", "2 records"], ["0 copies", "1 copy", "2 copies"])}
    for language, (records, copies) in expected.items():
        with i18n.use(language):
            assert [records_text(n) for n in (0, 1, 2)] == records
            assert [copies_text(n) for n in (0, 1, 2)] == copies
    with i18n.use("fr"):
        assert records_text(1_000_000) == "1\u202f000\u202f000 d’enregistrements"  # CLDR's "many" form


@pytest.mark.parametrize("n", [1, 2])
def test_subjects_agree_with_their_counts(n):
    views = [alert_view(_alert("high", LAB), _finding(matched=n + 1, labs={LAB: n}))]
    fr = render(receiver="lab0", kind="alert", idempotency_key="dw", views=views, incident=None, leaks=LEAKS, lab=LAB)
    en = render(receiver="lab0", kind="alert", idempotency_key="dw", views=views, incident=None, leaks=LEAKS, lab=LAB,
                language="en")
    if n == 1:
        assert f"1 enregistrement de patients de {LAB} trouvé dans 1 copie" in fr.subject
        assert f"1 record of {LAB} patients found in 1 copy " in en.subject
    else:
        assert f"2 enregistrements de patients de {LAB} trouvés dans 1 copie" in fr.subject
        assert f"2 records of {LAB} patients found in 1 copy " in en.subject


def test_dates_in_the_receivers_language_and_time_zone():
    views = [alert_view(_alert(), _finding())]
    fr = render(receiver="c", kind="alert", idempotency_key="dw", views=views, incident=None, leaks=LEAKS)
    en = render(receiver="c", kind="alert", idempotency_key="dw", views=views, incident=None, leaks=LEAKS,
                language="en", timezone="America/New_York")
    assert "détecté le 24 février 2021, 11:05:00 +0100" in fr.text  # 10:05 UTC in Paris
    assert "detected February 24, 2021, 5:05:00\u202fAM EST" in en.text
    assert fr.data["alerts"][0]["detected_at"] == T0 == en.data["alerts"][0]["detected_at"]  # JSON stays ISO 8601


# -- the notification form ---------------------------------------------------------------------------

@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_draft_follows_every_section_of_the_cnil_form(language):
    draft = every_message(language)["update-lab"].markdown
    with i18n.use(language):
        titles = [i18n._(t) for _key, t in SECTIONS]
        todo = i18n._(TODO)
    headings = re.findall(r"^## (.+)$", draft, re.M)
    assert headings == titles
    body = dict(zip(titles, re.split(r"^## .+$", draft, flags=re.M)[1:]))
    organisation, people, information = body[titles[0]], body[titles[3]], body[titles[7]]
    assert "Dr Anne Martin" in organisation and "+33 2 97 01 02 03" in organisation and "biolab.example" in organisation
    assert LAB in organisation and todo in organisation  # the SIREN and address are the controller's
    assert re.search(r"\b40\b", people) and "300" in people  # its own patients, of its 300 enrolled
    assert OTHER not in draft
    assert todo in information and ("34" in information)
    for section in ("nature", "discovery", "measures"):
        assert todo in body[titles[[k for k, _t in SECTIONS].index(section)]], section
    assert "9" in body[titles[4]]  # health data: a special category (Art. 9)


def test_authority_draft_names_the_global_contact_point():
    draft = every_message("fr")["alert"].markdown
    assert "DPO of the labs" in draft and "Dr Anne Martin" not in draft
