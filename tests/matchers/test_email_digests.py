"""The email column's fingerprints (issue 9, noise): what the per-cell normalisation would give.

:func:`matchers.columns.email_digests` fingerprints a clean cell lower-cased as it is, without
the pattern match of :func:`matchers.identifiers.email_norm`. Stated with Hypothesis: where
``email_norm`` gives an email, the digest is that email's; where it gives nothing, the digest is
the zero block or the digest of a text that is no normalised email (which no index holds).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import identifiers as ids
from matchers.columns import WHITESPACE, email_digests
from matchers.fingerprint import Fingerprinter

ZERO = b"\0" * 8
digest = Fingerprinter(bytes(range(32))).hasher("email")

emails = st.from_regex(r"[A-Za-z0-9._+-]{1,12}@[A-Za-z0-9-]{1,8}(\.[A-Za-z]{2,4}){1,2}", fullmatch=True)
around = st.text(alphabet=st.sampled_from(" \t<>\"'\u00a0\u3000\x0b\x1c\u2028\r"), max_size=3)
junk = st.text(alphabet=st.sampled_from("aZ0@.-_+ éİẞ\"'<>\u00a0,;"), max_size=12)


@st.composite
def cells(draw) -> str:
    kind = draw(st.sampled_from(["clean", "around", "junk", "empty", "broken"]))
    if kind == "clean":
        return draw(emails)
    if kind == "around":
        return draw(around) + draw(emails) + draw(around)
    if kind == "empty":
        return ""
    if kind == "broken":  # an email with a character inside that no email holds
        e = draw(emails)
        i = draw(st.integers(0, len(e)))
        return e[:i] + draw(st.sampled_from([" ", "\u00a0", ",", "é", "\n", "<"])) + e[i:]
    return draw(junk)


@settings(max_examples=400, deadline=None)
@given(st.lists(cells(), min_size=1, max_size=30))
def test_digests_are_those_of_the_normalised_emails(column):
    got = email_digests(column, digest)
    assert len(got) == 8 * len(column)
    for i, cell in enumerate(column):
        d = got[8 * i:8 * i + 8]
        e = ids.email_norm(cell) if "@" in cell else None
        if e:
            assert d == digest(e)
        else:  # nothing, or a text no index holds (not a normalised email)
            assert d == ZERO or (d == digest(cell.lower()) and ids.email_norm(cell.lower()) != cell.lower())


def test_clean_and_unclean_cells():
    column = ["Jean.Dupont@Example.org", " <marie@example.org> ", "", "n/a", "a@b", "x y@example.org"]
    got = email_digests(column, digest)
    assert got[0:8] == digest("jean.dupont@example.org")
    assert got[8:16] == digest("marie@example.org")
    assert got[16:24] == ZERO


def test_the_stripped_white_space_is_what_str_strip_strips():
    assert set(WHITESPACE) == {c for c in map(chr, range(0x110000)) if c.isspace()}
