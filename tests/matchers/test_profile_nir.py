"""The column profile checks a NIR with its key as python-stdnum does, without importing stdnum
(issue 9, `startup`: a scan's start-up): :func:`matchers.schema._keyed_nir_valid` asks stdnum only
for a key written in digits of another script, and agrees with it on every NIR written any way."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.fr import nir as stdnum_nir

from matchers import identifiers as ids
from matchers import schema as sch

_DIGIT_FORMS = {str(d): [str(d), chr(0x660 + d), chr(0xFF10 + d), chr(0x966 + d)] for d in range(10)}


@st.composite
def written_nirs(draw):
    """A NIR body, its right key or another, written with separators, lower-case Corsica letters
    and digits of other scripts here and there."""
    body = f"{draw(st.integers(1, 9))}{draw(st.integers(0, 9999)):04d}" \
           f"{draw(st.sampled_from(['2A', '2B', '2a', '2b'] + [f'{i:02d}' for i in (0, 1, 19, 20, 75, 99)]))}" \
           f"{draw(st.integers(0, 999999)):06d}"
    key = draw(st.one_of(st.just(ids.nir_check_key(body.upper())), st.integers(0, 99)))
    chars = list(f"{body}{key:02d}")
    out = []
    for c in chars:
        out.append(draw(st.sampled_from(_DIGIT_FORMS[c])) if c.isdigit() and draw(st.integers(0, 9)) == 0 else c)
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from([" ", ".", "-", "_", "\u00a0", "\t", "/", "\n"])))
    return "".join(out)


@settings(max_examples=3000, deadline=None)
@given(written_nirs())
def test_the_profile_nir_check_is_stdnums(value):
    p = ids.nir_parts(value)
    if p and p[1]:
        assert sch._keyed_nir_valid(value) == stdnum_nir.is_valid(value.translate(ids._NIR_STRIP)), value


def test_a_key_in_other_digits_is_asked_to_stdnum():
    body = "1850578006084"
    value = body + "".join(chr(0x660 + int(c)) for c in f"{ids.nir_check_key(body):02d}")
    assert ids.nir_parts(value) and not sch._keyed_nir_valid(value)
