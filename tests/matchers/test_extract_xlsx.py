"""Excel workbooks: one table per sheet, numbers and dates as a reposter's spreadsheet has them."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from dumpwatch.devkit import synth
from matchers.extract import Limits, extract_bytes

openpyxl = pytest.importorskip("openpyxl")


def workbook(people, *, nir_as_number: bool = False) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "patients"
    sheet.append(["Nom", "Prénom", "N° SS", "Téléphone", "Date de naissance"])
    for p in people:
        d, m, y = (int(x) for x in p["date_naissance"].split("/"))
        sheet.append([p["nom"], p["prenom"], int(p["nir"]) if nir_as_number and p["nir"].isdigit() else p["nir"], p["telephone"],
                      dt.datetime(y, m, d)])
    book.create_sheet("vide")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_sheets_become_tables(people):
    data = workbook(people[:30], nir_as_number=True)
    errors: list[str] = []
    tables = list(extract_bytes(data, "export.xlsx", errors=errors))
    assert not errors
    assert len(tables) == 1
    t = tables[0]
    assert (t.source, t.kind, t.header) == ("export.xlsx!patients", "delimited",
                                            ("Nom", "Prénom", "N° SS", "Téléphone", "Date de naissance"))
    rows = list(t.rows)
    p = people[0]
    d, m, y = p["date_naissance"].split("/")
    assert rows[0] == [p["nom"], p["prenom"], p["nir"], p["telephone"], f"{y}-{m}-{d}"]
    assert len(rows) == 30


def test_workbook_reposts_are_found(people):
    from matchers.enroll import enroll_stream
    from matchers.scan import Scanner

    key = bytes(32)
    index, _ = enroll_stream(io.BytesIO(synth.csv_text(*synth.transform(people)).encode()), "l.csv",
                             leak="labos", key=key)
    f = Scanner([index], key).scan_bytes(workbook(people[:40], nir_as_number=True), "base.xlsx")
    assert (f.verdict, f.matched_records) == ("repost", 40)


def test_a_workbook_bomb_is_not_opened_by_openpyxl(people):
    data = workbook(people[:3])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("xl/media/zeros.bin", b"\0" * (64 * 1024 * 1024))
    errors: list[str] = []
    list(extract_bytes(buf.getvalue(), "bomb.xlsx", Limits(max_ratio=100), errors))
    assert any("bomb" in e for e in errors), errors
