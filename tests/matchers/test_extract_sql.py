"""SQL dumps: mysqldump extended inserts, per-row INSERTs, pg_dump COPY blocks."""

from __future__ import annotations

import random

from dumpwatch.devkit import synth
from matchers.extract import extract_bytes

COLUMNS = ["nom", "prenom", "nir", "telephone", "email", "date_naissance"]


def q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def mysqldump(rows: list[list[str]]) -> str:
    tuples = ["(" + ",".join(q(v) for v in r) + ",NULL,42)" for r in rows]
    half = len(tuples) // 2
    return ("-- MySQL dump 10.13  Distrib 8.0\nSET NAMES utf8mb4;\nDROP TABLE IF EXISTS `patients`;\n"
            "CREATE TABLE `patients` (\n  `nom` varchar(64) NOT NULL,\n  `prenom` varchar(64),\n"
            "  `nir` varchar(15),\n  `tel` varchar(20),\n  `email` varchar(128),\n  `ddn` varchar(10),\n"
            "  `note` text,\n  `id` int,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
            "LOCK TABLES `patients` WRITE;\n"
            f"INSERT INTO `patients` VALUES {','.join(tuples[:half])};\n"
            f"INSERT INTO `patients` VALUES {','.join(tuples[half:])};\n"
            "UNLOCK TABLES;\n")


def tables(text: str):
    errors: list[str] = []
    out = [(t.kind, t.source, t.header, [list(r) if not isinstance(r, str) else r for r in t.rows])
           for t in extract_bytes(text.encode(), "dump.sql", errors=errors)]
    assert not errors
    return out


def test_mysqldump_extended_inserts_give_one_row_per_tuple(people):
    header, rows = synth.transform(people[:50], columns=COLUMNS)
    rows[0][0] = "O'Brien (née Le Goff)"  # quotes and parentheses inside a value
    found = tables(mysqldump(rows))
    data = [t for t in found if t[0] == "delimited"]
    assert len(data) == 1
    kind, source, head, got = data[0]
    assert source == "dump.sql#patients"
    assert head == ("nom", "prenom", "nir", "tel", "email", "ddn", "note", "id")
    assert got == [r + ["", "42"] for r in rows]
    # every other line is kept, as text
    text_lines = [line for t in found if t[0] == "text" for line in t[3]]
    assert any(line.startswith("SET NAMES") for line in text_lines)


def test_per_row_inserts_with_columns_and_pg_copy(people):
    header, rows = synth.transform(people[:20], columns=COLUMNS)
    per_row = "".join(f"INSERT INTO public.patients ({', '.join(COLUMNS)}) VALUES ("
                      + ", ".join(q(v) for v in r) + ");\n" for r in rows)
    (kind, source, head, got), = tables(per_row)
    assert head == tuple(COLUMNS) and got == rows
    copy = (f"COPY public.patients ({', '.join(COLUMNS)}) FROM stdin;\n"
            + "".join("\t".join(r[:-1] + ["\\N"]) + "\n" for r in rows) + "\\.\n-- done\n")
    found = tables(copy)
    assert found[0][2] == tuple(COLUMNS) and found[0][3] == [r[:-1] + [""] for r in rows]
    assert found[1][0] == "text" and found[1][3] == ["-- done"]


def test_sql_reposts_are_recognised(people):
    from matchers.enroll import enroll_stream
    from matchers.scan import Scanner
    import io

    key = bytes(32)
    index, _ = enroll_stream(io.BytesIO(synth.csv_text(*synth.transform(people)).encode()), "l.csv",
                             leak="labos", key=key)
    scanner = Scanner([index], key)
    sample = random.Random(2).sample(people, 60)
    header, rows = synth.transform(sample, columns=COLUMNS, spaced=True)
    f = scanner.scan_bytes(mysqldump(rows).encode(), "dump.sql")
    assert (f.verdict, f.matched_records, f.records_seen) == ("repost", 60, 60)


def test_an_unbalanced_quote_in_a_long_insert_does_not_hang():
    # 'd'Émeraude' unescaped: the tuple search once backtracked exponentially (8 tuples: > 20 s)
    row = "(1,'MARTIN','Jeanne','LBM Côte d'Émeraude','06 12 34 56 78','{}','x','y','z','w')"
    line = "INSERT INTO p VALUES " + ",".join(row.format(i) for i in range(400)) + ";\n"
    errors: list[str] = []
    found = [list(t.rows) for t in extract_bytes(line.encode(), "dump.sql", errors=errors)]
    assert sum(len(rows) for rows in found) <= 400  # garbage in, bounded garbage out, and quickly
