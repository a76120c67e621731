"""Excel workbooks (xlsx/xlsm) → one ``delimited`` table per sheet, read with openpyxl.

A workbook is a zip; read as plain members its cells would be scattered (strings in one shared
table, numbers in each sheet). openpyxl's read-only mode streams the rows of each sheet instead.
Before openpyxl opens anything, every member's declared size and ratio pass the same bomb checks
as any zip member; a refused member makes the caller read the workbook as a plain zip (which
reports it). Numbers come back as written (a NIR typed as a number, ``1.85057800608436E14``,
is ``185057800608436``), dates as ``YYYY-MM-DD``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from matchers.extract.archives import zip_refusal
from matchers.extract.delimited import looks_like_header
from matchers.extract.model import Context, Table

WORKBOOK = "xl/workbook.xml"


def is_workbook(fileobj: IO[bytes]) -> bool:
    try:
        with zipfile.ZipFile(fileobj) as zf:
            return WORKBOOK in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    finally:
        fileobj.seek(0)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def xlsx_tables(fileobj: IO[bytes], source: str, ctx: Context) -> Iterator[Table] | None:
    """Tables of a workbook, or ``None`` when it must be read as a plain zip instead."""
    with zipfile.ZipFile(fileobj) as zf:
        if any(zip_refusal(info, ctx) for info in zf.infolist()):
            fileobj.seek(0)
            return None
    fileobj.seek(0)
    import openpyxl  # imported with the first workbook

    try:
        book = openpyxl.load_workbook(fileobj, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — a damaged workbook is read as a plain zip
        ctx.report(source, f"workbook unreadable ({type(exc).__name__}); read as a plain zip")
        fileobj.seek(0)
        return None
    return _sheets(book, source)


def _sheets(book: Any, source: str) -> Iterator[Table]:
    try:
        for sheet in book.worksheets:
            rows = ([_cell(v) for v in row] for row in sheet.iter_rows(values_only=True))
            rows = (r for r in rows if any(r))
            head = list(itertools.islice(rows, 20))
            if not head:
                continue
            header = None
            if len(head) > 1 and looks_like_header(head[0], head[1:]):
                header, head = tuple(head[0]), head[1:]
            yield Table(f"{source}!{sheet.title}", "delimited", header, itertools.chain(head, rows))
    finally:
        book.close()
