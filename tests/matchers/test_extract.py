"""matchers.extract: text shapes, encodings, JSON, HTML and the never-raise contract.

Containers and bombs are in test_extract_containers.py, memory in test_extract_memory.py.
All inputs are synthetic (dumpwatch.devkit.synth) and built on the fly.
"""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from dumpwatch.devkit import synth
from matchers.errors import SettingsError
from matchers.extract import KINDS, Limits, Table, extract, extract_bytes, extract_text

COLS = ["nom", "prenom", "email", "nir", "telephone", "ville", "laboratoire"]
CSV_READER = type(csv.reader([]))


def collect(tables):
    """[(kind, source, header, rows, encoding)] with every table's rows materialised in order."""
    out = []
    for table in tables:
        assert isinstance(table, Table)
        assert table.kind in KINDS
        out.append((table.kind, table.source, table.header, [r for r in table.rows], table.encoding))
    return out


def run(data: bytes | str, name: str = "input", limits: Limits = Limits()):
    errors: list[str] = []
    if isinstance(data, str):
        data = data.encode("utf-8")
    return collect(extract_bytes(data, name, limits, errors)), errors


def kinds(tables):
    return [t[0] for t in tables]


def only(tables, kind):
    found = [t for t in tables if t[0] == kind]
    assert len(found) == 1, (kind, [(t[0], t[1]) for t in tables])
    return found[0]


@pytest.fixture(scope="module")
def sample(people):
    """Header and rows of 40 synthetic patients, accents included."""
    return synth.transform(people[:40], columns=COLS)


# -- delimited -----------------------------------------------------------------------------

@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
def test_delimited_each_separator_quoted_or_not(sample, delimiter, quoting):
    header, rows = sample
    tables, errors = run(synth.csv_text(header, rows, delimiter, quoting), "dump.txt")
    kind, source, got_header, got_rows, encoding = only(tables, "delimited")
    assert errors == []
    assert got_header == tuple(header)
    assert got_rows == rows
    assert (source, encoding) == ("dump.txt", "utf-8")


def test_delimited_rows_are_the_csv_reader_itself(sample):
    header, rows = sample
    table = next(extract_bytes(synth.csv_text(header, rows, ";").encode(), "x.csv"))
    assert isinstance(iter(table.rows), CSV_READER)  # iterating is the C reader: no Python per row
    assert next(table.rows) == rows[0]           # header row already consumed


def test_delimited_without_header_keeps_first_row_as_data(sample):
    header, rows = sample
    tables, _ = run(synth.csv_text(None, rows, ","))
    _, _, got_header, got_rows, _ = only(tables, "delimited")
    assert got_header is None
    assert got_rows == rows


def test_delimited_columns_in_any_order_english_header(people):
    header, rows = synth.transform(people[:30], shuffle_columns=True, english=True, seed=5)
    tables, _ = run(synth.csv_text(header, rows, "|"))
    _, _, got_header, got_rows, _ = only(tables, "delimited")
    assert got_header == tuple(header)
    assert got_rows == rows


def test_header_heuristic_on_letters_only_columns(people):
    """No digits anywhere: only the column names tell a header from data."""
    cols = ["nom", "prenom", "ville"]
    header, rows = synth.transform(people[:20], columns=cols)
    with_header, _ = run(synth.csv_text(header, rows, ";"))
    without, _ = run(synth.csv_text(None, rows, ";"))
    assert only(with_header, "delimited")[2] == tuple(cols)
    assert only(without, "delimited")[2] is None
    assert only(without, "delimited")[3] == rows


def test_quoted_cells_with_delimiter_and_newline(sample):
    header, rows = sample
    rows = [list(r) for r in rows]
    rows[3][5] = "Vannes; centre\nbâtiment B"
    tables, _ = run(synth.csv_text(header, rows, ";"))
    assert only(tables, "delimited")[3] == rows


def test_banner_lines_before_a_csv_are_a_text_table(sample):
    header, rows = sample
    text = "==== base labo 2021 ====\nenjoy\n" + synth.csv_text(header, rows, ";")
    tables, _ = run(text)
    assert kinds(tables) == ["text", "delimited"]
    assert tables[0][3] == ["==== base labo 2021 ====", "enjoy"]
    assert tables[1][2] == tuple(header) and tables[1][3] == rows


def _stray_quote_csv(n: int) -> tuple[list[list[str]], str]:
    """``n`` rows, the first 20 with a quoted cell; row 19 loses its closing quote."""
    header, rows = synth.transform(synth.generate(n, seed=3), columns=COLS)
    rows = [list(r) for r in rows]
    for r in rows[:20]:
        r[5] = f"{r[5]}; centre"                     # quoted by the writer (holds the delimiter)
    lines = synth.csv_text(header, rows, ";").splitlines()
    assert lines[20].endswith('centre";' + rows[19][6])
    lines[20] = lines[20].replace('centre";', "centre;")
    return rows, "\n".join(lines) + "\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])   # byte-level and per-line guards
def test_stray_quote_does_not_swallow_the_file(encoding):
    """Few quoted cells, one never closed: the reader would make one giant cell of the rest of
    the file (and raise at its field limit). The cell is closed and reported."""
    rows, text = _stray_quote_csv(400)
    errors: list[str] = []
    limits = Limits(max_line_chars=2000)                # runaway threshold 8000 characters
    tables = collect(extract_bytes(text.encode(encoding), "q.csv", limits, errors))
    assert errors == ["q.csv: a quoted cell runs over 8000 characters (a stray '\"'?): it was "
                      "closed at the end of its line"]
    got = only(tables, "delimited")[3]
    assert got[:19] == rows[:19]
    assert got[-300:] == rows[-300:]                    # the rest is read normally
    assert max(len(c) for r in got for c in r) < 8000 + 4 * 2000
    assert isinstance(iter(next(extract_bytes(text.encode(), "q")).rows), CSV_READER)


def test_stray_quote_runaway_across_many_reads():
    """A threshold larger than one read: the cell is closed a few reads later, never after."""
    rows, text = _stray_quote_csv(3000)
    errors: list[str] = []
    limits = Limits(max_line_chars=50_000)              # runaway threshold 200,000 characters
    tables = collect(extract(io.BufferedReader(io.BytesIO(text.encode())), "q.csv", limits, errors))
    got = only(tables, "delimited")[3]
    assert len(errors) == 1 and "quoted cell runs over 200000" in errors[0]
    longest = max(len(c) for r in got for c in r)
    assert 150_000 < longest < 200_000 + 2 * 65536         # bytes counted, characters kept
    swallowed = len(rows) - len(got)
    assert got[-(len(rows) - 20 - swallowed - 1):] == rows[20 + swallowed + 1:]
    assert got[-1] == rows[-1]


def test_dense_quoting_resyncs_after_a_stray_quote():
    header, rows = synth.transform(synth.generate(300, seed=3), columns=COLS)
    lines = synth.csv_text(header, rows, ";", csv.QUOTE_ALL).splitlines()
    lines[10] = lines[10].replace('"', "", 1)           # one opening quote missing on row 10
    tables, errors = run("\n".join(lines))
    got = only(tables, "delimited")[3]
    assert errors == [] and len(got) == len(rows)
    assert got[:9] == rows[:9] and got[10:] == rows[10:]
    assert isinstance(iter(next(extract_bytes("\n".join(lines).encode(), "x")).rows), CSV_READER)


def test_long_quoted_lines_in_a_text_never_raise():
    """Mixed text whose lines hold quoted cells bigger than csv's default field limit."""
    old = csv.field_size_limit(131072)           # as in a fresh process
    try:
        cell = '"' + "x" * 300_000 + '"'
        text = "bonjour\n" + "".join(f"{cell};{cell};a\n" for _ in range(3)) + "au revoir\n"
        tables, errors = run(text)
    finally:
        csv.field_size_limit(max(old, csv.field_size_limit()))
    assert errors == []
    assert kinds(tables) == ["text", "delimited", "text"]
    assert tables[1][3] == [["x" * 300_000, "x" * 300_000, "a"]] * 3


def test_deeply_nested_json_is_reported_not_raised():
    deep = "[" * 5000 + "]" * 5000
    tables, errors = run('{"a": 1}\n' + deep + '\n{"b": 2}\n', "deep.jsonl")
    assert tables[0][3] == [{"a": "1"}, {"b": "2"}]
    assert errors == ["deep.jsonl: 1 JSON lines could not be parsed (first at line 2); 2 records read"]


def test_csv_sniffing_rejects_prose_with_commas():
    prose = ("Bonjour à tous, voici la suite, comme promis.\n"
             "Merci, vraiment, c'est top.\n"
             "Quelqu'un a le lien, svp ?\n") * 3
    tables, _ = run(prose)
    assert kinds(tables) == ["text"]
    assert len(tables[0][3]) == 9


# -- key-value, combo, text ---------------------------------------------------------------------

def test_keyvalue_blocks_from_synth(people):
    header, rows = synth.transform(people[:25], english=True)
    tables, errors = run(synth.render(header, rows, "kv"), "fullz.txt")
    assert errors == []
    assert kinds(tables) == ["text", "keyvalue"]
    assert tables[0][3] == ["---- FULLZ FR ----"]
    records = tables[1][3]
    assert records == [{k: v for k, v in zip(header, r) if v} for r in rows]


def test_keyvalue_french_keys_repeated_first_key_and_wrapped_value():
    text = ("Nom: DUPONT\nPrénom : Jean\nN° SS: 1 85 05 78 006 084 36\nTél : 06 12 34 56 78\n"
            "Adresse: 3 rue des Lilas\n56000 Vannes\nEmail: j.dupont@example.fr\n"
            "Nom: MARTIN\nPrénom: Léa\nN° SS: 2 91 12 2A 004 012 77\n")
    tables, _ = run(text)
    _, _, header, records, _ = only(tables, "keyvalue")
    assert header is None
    assert records == [
        {"Nom": "DUPONT", "Prénom": "Jean", "N° SS": "1 85 05 78 006 084 36",
         "Tél": "06 12 34 56 78", "Adresse": "3 rue des Lilas 56000 Vannes",
         "Email": "j.dupont@example.fr"},
        {"Nom": "MARTIN", "Prénom": "Léa", "N° SS": "2 91 12 2A 004 012 77"},
    ]


def test_keyvalue_records_separated_by_rules():
    text = "Nom: A\nTel: 0611111111\n-----\nNom: B\nTel: 0622222222\n=====\n\nNom: C\nTel: 0633333333\n"
    tables, _ = run(text)
    assert kinds(tables) == ["keyvalue"]
    assert [r["Nom"] for r in tables[0][3]] == ["A", "B", "C"]


@pytest.mark.parametrize("sep", [":", ";", "|"])
def test_combo_lists(people, sep):
    pairs = [(p["email"], f"azerty{i}!") for i, p in enumerate(people[:30])]
    text = "".join(f"{e}{sep}{s}\n" for e, s in pairs)
    tables, _ = run(text)
    assert kinds(tables) == ["combo"]
    assert tables[0][3] == [{"email": e, "secret": s} for e, s in pairs]


def test_combo_secret_may_contain_colons_and_single_line():
    tables, _ = run("jean.dupont@orange.fr:pa:ss:word\n")
    assert tables == [("combo", "input", None, [{"email": "jean.dupont@orange.fr",
                                                  "secret": "pa:ss:word"}], "utf-8")]


def test_rows_starting_with_an_email_are_not_combos(people):
    header, rows = synth.transform(people[:10], columns=["email", "nom", "prenom"])
    tables, _ = run(synth.csv_text(None, rows, ";"))
    assert kinds(tables) == ["delimited"]


def test_chatter_block_is_delimited_and_every_line_counted_once(people):
    header, rows = synth.transform(people[:12])
    text = synth.render(header, rows, "chatter", seed=4)
    tables, _ = run(text, "irc.log")
    assert kinds(tables) == ["text", "delimited", "text"]
    assert tables[1][3] == rows
    emitted = sum(len(t[3]) for t in tables)
    assert emitted == len(text.splitlines())


def test_mixed_paste_every_line_in_exactly_one_table(people):
    header, rows = synth.transform(people[:12], columns=["nom", "prenom", "nir", "email"])
    kv = synth.render(header, rows[:3], "kv").split("\n", 2)[2]
    combos = "".join(f"{r[3]}:secret{i}\n" for i, r in enumerate(rows[3:6]))
    text = ("salut, voici ce que j'ai trouvé\n\n" + kv + "\net les combos :\n" + combos
            + "\n" + synth.csv_text(header, rows[6:], "\t") + "fin\n")
    tables, _ = run(text)
    assert kinds(tables) == ["text", "keyvalue", "text", "combo", "delimited", "text"]
    assert len(tables[1][3]) == 3 and len(tables[3][3]) == 3 and len(tables[4][3]) == 6
    words = []
    for kind, _, header_, rows_, _ in tables:
        if header_:
            words.append(tuple(header_))
        for row in rows_:
            words.append(tuple(row.values()) if isinstance(row, dict) else
                         tuple(row) if isinstance(row, list) else row)
    words = [w for w in words if w]                # blank lines carry nothing
    assert len(words) == len(set(words))       # nothing emitted twice
    assert len(words) == 1 + 3 + 1 + 3 + 1 + 6 + 1


def test_lone_key_value_line_in_chatter_stays_text():
    text = "[10:11] bob: salut\nERROR: disk full\n[10:12] alice: ok\n"
    tables, _ = run(text)
    assert kinds(tables) == ["text"]
    assert tables[0][3] == text.splitlines()


def test_empty_and_blank_inputs_give_no_table_and_no_error():
    # read in full with nothing in them: not a failure (an error would mark the scan incomplete)
    for data in (b"", b"\n" * 5000, b"  \r\n\t\n"):
        tables, errors = run(data, "blank.txt")
        assert tables == [] and errors == []


def test_a_50_mb_single_line_is_split_not_built():
    word = b"lorem ipsum dolor sit amet "
    data = word * (50 * 1024 * 1024 // len(word))
    tables, errors = run(data, "one-line.txt")
    assert errors == []
    assert kinds(tables) == ["text"]
    lines = tables[0][3]
    assert len(lines) >= 50
    assert max(len(line) for line in lines) <= Limits().max_line_chars + 256
    assert sum(len(line) for line in lines) == len(data)     # nothing lost
    vocabulary = set(word.decode().split())
    assert all(set(line.split()) <= vocabulary for line in lines)   # cut at a space, never in a word


def test_long_lines_cut_at_the_cap_keep_crlf_whole():
    from matchers.extract.decode import text_lines

    data = ("a" * 9 + "\r\n") * 3 + "b" * 25 + "\n" + "tail"
    text = io.TextIOWrapper(io.BytesIO(data.encode()), encoding="utf-8", newline="")
    assert list(text_lines(text, 10)) == ["a" * 9] * 3 + ["b" * 10, "b" * 10, "b" * 5, "tail"]


def test_windows_line_endings_and_mac_cr(sample):
    header, rows = sample
    text = synth.csv_text(header, rows, ";")
    for newline in ("\r\n", "\r"):
        tables, _ = run(text.replace("\n", newline))
        assert only(tables, "delimited")[3] == rows


# -- encodings -----------------------------------------------------------------------------

ACCENTED = [["Hélène", "Lefèvre", "Ploërmel", "Côte d'Émeraude", "à jeun", "Noël"],
            ["François", "Müller", "Saint-Brieuc", "Lannion", "œdème", "Ça va"]]


@pytest.mark.parametrize("encoding,expected", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"),
    ("utf-16-le", "utf-16-le"), ("cp1252", "cp1252"), ("latin-1", "cp1252"),
])
def test_encodings_detected_and_decoded(people, encoding, expected):
    header, rows = synth.transform(people[:200], columns=COLS)
    rows = ACCENTED * 3 + [r[:6] for r in rows]
    text = synth.csv_text(["nom", "prenom", "ville", "labo", "commentaire", "note"], rows, ";")
    tables, errors = run(text.encode(encoding, errors="replace"), f"x.{encoding}.csv")
    _, _, header_, got, detected = only(tables, "delimited")
    assert errors == []
    assert detected == expected
    assert header_[0] == "nom"                 # no BOM left in the first cell
    expected = [[c.encode(encoding, "replace").decode(encoding) for c in r] for r in ACCENTED]
    assert got[:6] == expected * 3


def test_invalid_utf8_after_a_valid_sample_is_replaced_not_fatal(sample):
    header, rows = synth.transform(synth.generate(1500, seed=8), columns=COLS)
    good = synth.csv_text(header, rows, ";").encode()
    assert len(good) > 70_000                  # the bad byte is past the 64 KiB sample
    data = good + "Lefèvre;Zoé;z@x.fr;1;2;Brest;L\n".encode("cp1252") + good.split(b"\n", 1)[1]
    tables, errors = run(data)
    _, _, _, got, encoding = only(tables, "delimited")
    assert encoding == "utf-8" and errors == []
    assert ["Lef\ufffdvre", "Zo\ufffd", "z@x.fr", "1", "2", "Brest", "L"] in got
    assert len(got) == 2 * len(rows) + 1


def test_invalid_utf8_inside_the_sample_still_gives_a_table(sample):
    header, rows = sample
    data = synth.csv_text(header, rows, ";").encode() + b"DUPONT;Jean\xff\xfe;x@y.fr;1;2;Vannes;L\n"
    tables, _ = run(data)
    assert len(only(tables, "delimited")[3]) == len(rows) + 1


def test_binary_content_is_an_error_not_a_table():
    cases = {
        "img.png": b"\x89PNG\r\n\x1a\n" + os.urandom(2000),
        "a.out": b"\x7fELF\x02\x01\x01" + bytes(500) + os.urandom(500),
        "noise.bin": os.urandom(100_000),
        "nul.txt": b"nom;prenom\n" + b"\x00\x01\x02\x03" * 300,
        "nul2.txt": b"nom;prenom\n" + b"\x00A\x00\x01" * 300,
        "ctrl.txt": bytes(range(1, 9)) * 1000,
    }
    for name, data in cases.items():
        tables, errors = run(data, name)
        assert tables == [], name
        assert len(errors) == 1 and errors[0].startswith(f"{name}: binary content"), (name, errors)


def test_text_with_ansi_escapes_is_not_binary():
    log = "".join(f"\x1b[32mINFO\x1b[0m job {i} done\n" for i in range(200))
    tables, errors = run(log)
    assert errors == [] and kinds(tables) == ["text"]


# -- JSON ----------------------------------------------------------------------------------

def _dicts(header, rows):
    return [dict(zip(header, r)) for r in rows]


def test_json_array_of_objects(people):
    header, rows = synth.transform(people[:50], english=True)
    tables, errors = run(synth.render(header, rows, "json"), "dump.json")
    assert errors == []
    assert tables == [("json", "dump.json", None, _dicts(header, rows), "utf-8")]


def test_json_object_of_arrays_each_array_a_table(people):
    header, rows = synth.transform(people[:20])
    doc = {"source": "db export", "patients": _dicts(header, rows[:12]),
           "data": {"extra": _dicts(header, rows[12:])}}
    tables, errors = run(json.dumps(doc, ensure_ascii=False), "obj.json")
    assert errors == []
    assert [(t[0], t[1]) for t in tables] == [
        ("json", "obj.json#/patients"), ("json", "obj.json#/data/extra"), ("json", "obj.json")]
    assert tables[0][3] == _dicts(header, rows[:12])
    assert tables[1][3] == _dicts(header, rows[12:])
    assert tables[2][3] == [{"source": "db export"}]


def test_json_synth_object_format(people):
    header, rows = synth.transform(people[:15])
    tables, _ = run(synth.render(header, rows, "json-object"))
    assert tables[0][1] == "input#/patients" and tables[0][3] == _dicts(header, rows)


def test_json_single_object_flattened_values_as_strings():
    doc = {"patient": {"nom": "DUPONT", "prénom": "Jean", "adresse": {"ville": "Vannes"}},
           "nir": 185057800608436, "tags": ["VIH", "grossesse"], "actif": True, "note": None,
           "taux": 1.25, "analyses": [{"code": "HB", "valeur": 13.2}, {"code": "INR"}]}
    tables, errors = run(json.dumps(doc, ensure_ascii=False, indent=2))
    assert errors == []
    flat = {"patient.nom": "DUPONT", "patient.prénom": "Jean", "patient.adresse.ville": "Vannes",
            "nir": "185057800608436", "tags": "VIH, grossesse", "actif": "true", "note": "",
            "taux": "1.25"}
    # the list of objects is an array under an object member: its own table
    assert tables[0][1] == "input#/analyses"
    assert tables[0][3] == [{"code": "HB", "valeur": "13.2"}, {"code": "INR"}]
    assert tables[1][3] == [flat]


def test_json_nested_objects_inside_array_items_are_dotted():
    doc = [{"patient": {"nom": "A", "contact": {"tel": "0611"}}, "tags": ["x", 1, None],
            "visites": [{"date": "2020"}, {"date": "2021"}]}]
    tables, _ = run(json.dumps(doc))
    assert tables[0][3] == [{"patient.nom": "A", "patient.contact.tel": "0611",
                             "tags": "x, 1, ", "visites.0.date": "2020", "visites.1.date": "2021"}]


def test_json_lines_with_a_bad_line(people):
    header, rows = synth.transform(people[:10])
    lines = synth.render(header, rows, "jsonl").splitlines()
    lines.insert(4, '{"nom": "broken", ')
    tables, errors = run("\n".join(lines) + "\n", "x.jsonl")
    assert tables[0][3] == _dicts(header, rows)
    assert errors == ["x.jsonl: 1 JSON lines could not be parsed (first at line 5); 10 records read"]


def test_truncated_json_gives_records_so_far_and_an_error(people):
    header, rows = synth.transform(people[:30])
    text = synth.render(header, rows, "json")
    cut = text[: text.index(rows[20][1]) ]            # inside record 21
    tables, errors = run(cut, "cut.json")
    assert tables[0][3] == _dicts(header, rows)[:20]
    assert len(errors) == 1 and errors[0].startswith("cut.json: truncated JSON")
    assert rows[20][1] not in errors[0]                # the error never quotes content


def test_malformed_json_in_the_middle(people):
    header, rows = synth.transform(people[:30])
    text = synth.render(header, rows, "json")
    pos = text.index(rows[10][1])
    bad = text[:pos - 1] + "oops" + text[pos:]
    for doc in (bad, '{"patients": ' + bad + "}"):
        tables, errors = run(doc, "bad.json")
        assert tables[0][3] == _dicts(header, rows)[:10]
        assert len(errors) == 1 and "malformed JSON" in errors[0] and "after 10 records" in errors[0]


def test_brackets_at_line_start_are_not_json():
    text = "[12:34] user1: salut\n[12:35] user2: {ok}\n"
    tables, _ = run(text)
    assert kinds(tables) == ["text"]


def test_json_with_latin1_encoding(people):
    doc = [{"nom": "Lefèvre", "ville": "Ploërmel"}] * 50
    tables, _ = run(json.dumps(doc, ensure_ascii=False).encode("cp1252"))
    assert tables[0][3][0] == {"nom": "Lefèvre", "ville": "Ploërmel"}
    assert tables[0][4] == "cp1252"


# -- HTML ----------------------------------------------------------------------------------

def test_html_table_and_visible_text_from_synth(people):
    header, rows = synth.transform(people[:20], columns=COLS)
    tables, errors = run(synth.render(header, rows, "html"), "page.html")
    assert errors == []
    assert tables[0] == ("html", "page.html#table1", tuple(header), [tuple(r) for r in rows], "utf-8")
    assert tables[1:] == [("text", "page.html", None, ["Voici la base"], "utf-8")]   # no nav/footer


def test_html_dump_in_pre_and_kv_post_body(people):
    header, rows = synth.transform(people[:8], columns=["nom", "prenom", "nir", "email"])
    csv_body = synth.csv_text(header, rows, ";").replace("&", "&amp;").replace("<", "&lt;")
    page = (
        "<!DOCTYPE html><html><head><title>t</title><style>td{}</style></head><body>"
        "<header>Forum</header><nav>menu</nav><script>var nir='1';</script>"
        f"<article><p>Voici <b>la</b> base :</p><pre>{csv_body}</pre></article>"
        "<div class='post'>Nom: DUPONT<br>Prénom: Jean<br/>Tél: 06 12 34 56 78<br><br>"
        "Nom: MARTIN<br>Prénom: Léa<br>Tél: 07 00 00 00 01</div>"
        "<form><textarea>répondre</textarea></form><footer>mentions</footer></body></html>")
    tables, _ = run(page)
    assert kinds(tables) == ["text", "delimited", "keyvalue"]
    assert tables[0][3] == ["Voici la base :"]
    assert tables[1][2] == tuple(header) and tables[1][3] == rows
    assert [r["Nom"] for r in tables[2][3]] == ["DUPONT", "MARTIN"]
    everything = repr(tables)
    for hidden in ("menu", "mentions", "var nir", "répondre", "Forum", "td{}"):
        assert hidden not in everything


def test_html_fragment_of_a_post_body():
    body = ("Voici un extrait <b>gratuit</b> :<br>Nom: DUPONT<br>Prénom: Jean<br>"
            "Tél: 06 12 34 56 78<br><br>Nom: MARTIN<br>Prénom: Léa<br>Tél: 07 00 00 00 01<br>")
    errors: list[str] = []
    tables = collect(extract_text(body, "post#3", errors))
    assert kinds(tables) == ["text", "keyvalue"]
    assert tables[0][3] == ["Voici un extrait gratuit :"]
    assert tables[1][3][1] == {"Nom": "MARTIN", "Prénom": "Léa", "Tél": "07 00 00 00 01"}
    # a text that merely mentions a tag is not HTML
    assert kinds(collect(extract_text("use <br> for breaks\nok\n", "p"))) == ["text"]


def test_html_pastebin_page_is_read_once(people):
    """A pinnwand page shows the paste twice: highlighted with line numbers, and raw."""
    from pygments import highlight
    from pygments.lexers import TextLexer
    from pygments_better_html import BetterHtmlFormatter

    header, rows = synth.transform(people[:15], columns=COLS)
    raw = synth.csv_text(header, rows, ";")
    code = highlight(raw, TextLexer(), BetterHtmlFormatter(linenos="table", cssclass="source"))
    escaped = raw.replace("&", "&amp;").replace("<", "&lt;")
    page = (f"<html><body><main><div class='file-show'><div class='code'>{code}</div>"
            f"<textarea class='copy-area'>{escaped}</textarea></div></main></body></html>")
    tables, _ = run(page, "paste.html")
    delimited = [t for t in tables if t[0] == "delimited"]
    assert len(delimited) == 1 and delimited[0][3] == rows
    assert not [t for t in tables if t[0] == "html"]


def test_html_table_without_th_and_layout_tables():
    page = ("<html><body><table><tr><td><table>"
            "<tr><td>nom</td><td>email</td><td>tel</td></tr>"
            "<tr><td>DUPONT</td><td>a@b.fr</td><td>0611</td></tr>"
            "<tr><td>MARTIN</td><td>c@d.fr</td><td>0622</td></tr>"
            "</table></td><td>sidebar</td></tr></table></body></html>")
    tables, _ = run(page)
    assert tables[0][0] == "html"
    assert tables[0][2] == ("nom", "email", "tel")
    assert tables[0][3] == [("DUPONT", "a@b.fr", "0611"), ("MARTIN", "c@d.fr", "0622")]
    assert tables[1][0] == "text" and "sidebar" in tables[1][3]


def test_html_page_over_the_limit_is_refused():
    page = "<html><body>" + "<p>bla bla</p>" * 1000 + "</body></html>"
    tables, errors = run(page, "big.html", Limits(max_json_bytes=5000))
    assert tables == []
    assert errors == ["big.html: HTML page larger than max_json_bytes=5000 characters: not parsed "
                      "(raise Limits.max_json_bytes to read it)"]


def test_html_page_over_max_html_bytes_is_refused_before_parsing(people):
    header, rows = synth.transform(people[:40], columns=COLS)
    page = synth.render(header, rows, "html").replace("Voici la base", "Voilà la base")
    size, chars = len(page.encode("utf-8")), len(page)
    assert chars < size                                     # accents: bytes are what is counted
    reason = ("HTML page too large ({}{} bytes > max_html_bytes={}): not parsed, its BeautifulSoup "
              "tree would need 30 to 50 times that in memory (raise Limits.max_html_bytes to read it)")
    tables, errors = run(page, "big.html", Limits(max_html_bytes=chars))
    assert tables == []
    assert errors == ["big.html: " + reason.format("", size, chars)]
    # text already decoded (a post body) is held to the same limit
    errors = []
    assert collect(extract_text(page, "post#1", errors, limits=Limits(max_html_bytes=size - 1))) == []
    assert errors == ["post#1: " + reason.format("", size, size - 1)]
    # a page far above the limit is not read whole: its size is a lower bound
    tables, errors = run(page * 50, "huge.html", Limits(max_html_bytes=1000))
    assert tables == [] and len(errors) == 1
    assert errors[0].startswith("huge.html: HTML page too large (at least ")
    # at the limit the page is read (the [limits] key: tests/dumpwatch/test_engine_settings.py)
    tables, errors = run(page, "big.html", Limits(max_html_bytes=size))
    assert errors == []
    assert tables[0][:4] == ("html", "big.html#table1", tuple(header), [tuple(r) for r in rows])
    assert Limits().max_html_bytes == 32 * 1024**2

def test_extract_text_on_a_post_body(people):
    header, rows = synth.transform(people[:5], english=True)
    body = synth.render(header, rows, "kv")
    errors: list[str] = []
    tables = collect(extract_text(body, "post#12", errors))
    assert kinds(tables) == ["text", "keyvalue"]
    assert len(tables[1][3]) == 5 and tables[1][4] is None and errors == []
    # and JSON or HTML posted as text are recognised too
    assert collect(extract_text(synth.render(header, rows, "json"), "p"))[0][0] == "json"
    assert collect(extract_text(synth.render(header, rows, "html"), "p"))[0][0] == "html"


# -- contract ------------------------------------------------------------------------------

class _FailingStream(io.RawIOBase):
    """Serves ``data`` then fails like a dropped connection."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        chunk = self._data.read(len(b))
        if not chunk:
            raise ConnectionResetError(104, "Connection reset by peer")
        b[:len(chunk)] = chunk
        return len(chunk)


def test_read_error_mid_stream_is_reported_not_raised():
    header, rows = synth.transform(synth.generate(2000, seed=4), columns=COLS)
    data = synth.csv_text(header, rows, ";").encode()
    errors: list[str] = []
    tables = collect(extract(_FailingStream(data), "https://x/raw/1", errors=errors))
    got = only(tables, "delimited")[3]
    assert got[:-1] == rows[:len(got) - 1] and len(got) >= len(rows)   # all rows, last maybe cut
    assert errors == ["https://x/raw/1: read error (ConnectionResetError: Connection reset by peer)"]


def test_tables_left_early_are_skipped_cleanly(people):
    header, rows = synth.transform(people[:6], columns=["nom", "email"])
    text = "intro\n" * 3 + "".join(f"{r[1]}:pw\n" for r in rows) + "fin\n"
    tables = list(extract_bytes(text.encode(), "x"))    # no rows read at all
    assert [t.kind for t in tables] == ["text", "combo", "text"]
    seen = [(t.kind, next(iter(t.rows))) for t in extract_bytes(text.encode(), "x")]  # first row only
    assert seen == [("text", "intro"), ("combo", {"email": rows[0][1], "secret": "pw"}), ("text", "fin")]


def test_limits_validation():
    """The engine checks the limits it is handed; the [limits] table is read by
    dumpwatch.engine_settings (tests/dumpwatch/test_engine_settings.py)."""
    with pytest.raises(SettingsError, match="must be a positive number"):
        Limits(max_depth=-1)
    with pytest.raises(SettingsError, match=r"\[limits.max_ratio\]: must be a positive number"):
        Limits(max_ratio=0)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "json-object", "kv", "html", "chatter"])
def test_every_synth_format_yields_every_record(people, fmt):
    """Each render() shape: all 30 NIRs come out, each exactly once, in some table."""
    header, rows = synth.transform(people[:30], english=True, spaced=True, seed=1)
    nirs = [r[header.index("ssn")] for r in rows]
    tables, errors = run(synth.render(header, rows, fmt, delimiter=";"), f"repost.{fmt}")
    assert errors == []
    cells = []
    for _, _, _, rows_, _ in tables:
        for row in rows_:
            cells.extend(row.values() if isinstance(row, dict) else [row] if isinstance(row, str) else row)
    found = [n for n in nirs for c in cells if n == c or (n in c and fmt == "chatter")]
    assert sorted(found) == sorted(nirs)


def test_unknown_elements_in_a_page_do_not_glue_their_texts_together():
    # XML-ish records pasted into a page: <nom>PICARD</nom><prenom>Susan</prenom> is not "PICARDSusan"
    page = (b"<html><body><x><p><nom>PICARD</nom><prenom>Susan</prenom><tel>0641992192</tel></p></x>"
            b"<p>un <b>mot</b>s <span>li</span>\xc3\xa9s</p></body></html>")
    errors: list[str] = []
    text = " ".join(" ".join(r if isinstance(r, str) else " ".join(r) for r in t.rows)
                    for t in extract_bytes(page, "page.html", errors=errors))
    assert "PICARD Susan 0641992192" in text
    assert "un mots liés" in text  # inline elements still run on
