"""matchers.extract on containers: gzip, zip (nested), tar, bzip2, xz; bombs, corruption, limits.

Bombs are built on the fly in a few hundred milliseconds: a deflate stream flushed with
Z_FULL_FLUSH repeats byte for byte, so 1 GiB of zeros is one 1 KiB unit written 1024 times.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib

import pytest

from dumpwatch.devkit import synth
from matchers.extract import Limits, extract, extract_bytes

COLS = ["nom", "prenom", "email", "nir", "telephone"]
MiB = 1024 * 1024


def collect(tables):
    return [(t.kind, t.source, t.header, list(t.rows)) for t in tables]


def run(data: bytes, name: str, limits: Limits = Limits()):
    errors: list[str] = []
    return collect(extract_bytes(data, name, limits, errors)), errors


class Pipe(io.RawIOBase):
    """A non-seekable stream (like a socket) that counts the bytes it delivered."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)
        self.delivered = 0

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, b):
        chunk = self._data.read(min(len(b), 8192))
        b[:len(chunk)] = chunk
        self.delivered += len(chunk)
        return len(chunk)


class CountingFile(io.BytesIO):
    """A seekable stream that counts the bytes read from it."""

    delivered = 0

    def read(self, n=-1):
        data = super().read(n)
        self.delivered += len(data)
        return data

    def readinto(self, b):
        n = super().readinto(b)
        self.delivered += n
        return n


@pytest.fixture(scope="module")
def csv_bytes(people):
    header, rows = synth.transform(people[:50], columns=COLS)
    return synth.csv_text(header, rows, ";").encode(), rows


def deflate_repeat(unit: bytes, times: int) -> tuple[bytes, int, int]:
    """(raw deflate stream, crc32, size) of ``unit`` repeated ``times``, built in O(len(unit))."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH) == again
    end = comp.flush()
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(unit, crc)
    return first + again * (times - 1) + end, crc, len(unit) * times


def gzip_of(raw: bytes, crc: int, size: int) -> bytes:
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<II", crc, size & 0xFFFFFFFF)


def zip_of(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip of (name, compressed data, crc, declared size, method) written byte by byte."""
    out = io.BytesIO()
    central = []
    for name, data, crc, size, method in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                              len(data), size, len(encoded), 0) + encoded + data)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0,
                                   0x21, crc, len(data), size, len(encoded), 0, 0, 0, 0, 0,
                                   offset) + encoded)
    start = out.tell()
    for entry in central:
        out.write(entry)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central),
                          out.tell() - start, start, 0))
    return out.getvalue()


@pytest.fixture(scope="module")
def gigabyte_of_zeros():
    return deflate_repeat(bytes(MiB), 1024)


@pytest.fixture(scope="module")
def gigabyte_of_lines():
    return deflate_repeat((b"x" * 1023 + b"\n") * 1024, 1024)


# -- gzip -----------------------------------------------------------------------------------

def test_gzip_detected_by_magic_whatever_the_name(csv_bytes):
    data, rows = csv_bytes
    for name in ("dump.csv.gz", "dump.txt", "https://paste.example/raw/Ab12"):
        tables, errors = run(gzip.compress(data), name)
        assert errors == []
        assert tables == [("delimited", tables[0][1], tuple(COLS), rows)]
    assert run(gzip.compress(data), "dump.csv.gz")[0][0][1] == "dump.csv.gz!dump.csv"


def test_gzip_original_name_from_header_and_multi_member(csv_bytes):
    data, rows = csv_bytes
    buf = io.BytesIO()
    with gzip.GzipFile("export.csv", "wb", fileobj=buf) as gz:
        gz.write(data[: len(data) // 2])
    with gzip.GzipFile("export.csv", "wb", fileobj=buf) as gz:   # a second member
        gz.write(data[len(data) // 2:])
    tables, errors = run(buf.getvalue() + bytes(512), "blob")   # NUL padding after the stream
    assert errors == []
    assert tables == [("delimited", "blob!export.csv", tuple(COLS), rows)]


def test_truncated_gzip_gives_rows_so_far_and_an_error(people):
    header, rows = synth.transform(synth.generate(3000, seed=5), columns=COLS)
    packed = gzip.compress(synth.csv_text(header, rows, ";").encode())
    tables, errors = run(packed[: len(packed) * 2 // 3], "cut.csv.gz")
    got = tables[0][3]
    assert 500 < len(got) < len(rows)
    assert got[:-1] == rows[: len(got) - 1]
    assert errors == ["cut.csv.gz!cut.csv: truncated gzip stream (ends before its end marker)"]


def test_gzip_with_bad_crc_is_reported(csv_bytes):
    data, rows = csv_bytes
    packed = bytearray(gzip.compress(data))
    packed[-8] ^= 0xFF                                            # CRC32 trailer
    tables, errors = run(bytes(packed), "x.gz")
    assert tables[0][3] == rows                                   # content delivered, then flagged
    assert errors == ["x.gz!x: gzip CRC or length check failed: the content read is corrupt or "
                      "incomplete"]


def test_gzip_bomb_refused_from_its_trailer_without_inflating(gigabyte_of_zeros):
    raw, crc, size = gigabyte_of_zeros
    bomb = gzip_of(raw, crc, size)
    stream = CountingFile(bomb)
    errors: list[str] = []
    assert list(extract(stream, "zeros.gz", errors=errors)) == []
    assert len(errors) == 1 and "decompression bomb" in errors[0] and "not expanded" in errors[0]
    assert stream.delivered < 150_000                             # head, trailer, first blocks


def test_gzip_bomb_with_a_lying_trailer_is_stopped_while_reading(gigabyte_of_lines):
    """Text lines (not NULs, so not stopped as binary), ISIZE patched to look harmless."""
    raw, crc, size = gigabyte_of_lines
    bomb = gzip_of(raw, crc, 3 * MiB)
    for stream in (CountingFile(bomb), Pipe(bomb)):
        errors: list[str] = []
        lines = sum(len(list(t.rows)) for t in extract(stream, "lines.gz", errors=errors))
        assert len(errors) == 1 and "decompression bomb" in errors[0], errors
        assert lines * 1024 < 16 * MiB                            # stopped after a few MiB of 1 GiB
        assert stream.delivered < len(bomb) // 10


def test_max_bytes_bounds_a_plain_stream(csv_bytes):
    data, rows = csv_bytes
    errors: list[str] = []
    tables = collect(extract(Pipe(data * 40), "big.csv", Limits(max_bytes=len(data) * 3), errors))
    got = tables[0][3]
    assert 2 * len(rows) < len(got) <= 3 * (len(rows) + 1)        # data holds its header line
    assert len(errors) == 1 and "more than max_bytes=" in errors[0]


def test_bzip2_and_xz_streams(csv_bytes):
    data, rows = csv_bytes
    for packed, suffix in ((bz2.compress(data), "bz2"), (lzma.compress(data), "xz")):
        tables, errors = run(packed, f"dump.csv.{suffix}")
        assert errors == [] and tables == [("delimited", "dump.csv." + suffix + "!dump.csv",
                                            tuple(COLS), rows)]


# -- zip ------------------------------------------------------------------------------------

def zip_bytes(files: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_synth_zip_with_nested_folders(people, tmp_path):
    path = synth.write_repost(people[:40], tmp_path / "base.json", fmt="json", compress="zip",
                              english=True)
    with open(path, "rb") as fh:
        errors: list[str] = []
        tables = collect(extract(fh, str(path), errors=errors))
    assert errors == []
    assert [(t[0], t[1]) for t in tables] == [("text", f"{path}!README.txt"),
                                              ("json", f"{path}!export/2021/base.json")]
    assert len(tables[1][3]) == 40


def test_zip_in_zip_in_zip_and_gzip_inside(csv_bytes):
    data, rows = csv_bytes
    inner = zip_bytes({"c/patients.csv": data, "c/deeper.csv.gz": gzip.compress(data)})
    middle = zip_bytes({"b.zip": inner, "p.csv.gz": gzip.compress(data), "notes.txt": b"rien\n"},
                       zipfile.ZIP_STORED)
    outer = zip_bytes({"a/b/middle.zip": middle})
    for stream in (io.BytesIO(outer), Pipe(outer)):
        errors: list[str] = []
        tables = collect(extract(stream, "outer.zip", errors=errors))
        sources = [t[1] for t in tables]
        assert sources == ["outer.zip!a/b/middle.zip!b.zip!c/patients.csv",
                           "outer.zip!a/b/middle.zip!p.csv.gz!p.csv",
                           "outer.zip!a/b/middle.zip!notes.txt"]
        assert tables[0][3] == rows and tables[1][3] == rows
        assert errors == ["outer.zip!a/b/middle.zip!b.zip!c/deeper.csv.gz: gzip archive nested "
                          "deeper than max_depth=3: not opened (raise Limits.max_depth to read it)"]


def test_nesting_deeper_than_max_depth_is_refused(csv_bytes):
    data, rows = csv_bytes
    nested = data
    for level in range(4):
        nested = zip_bytes({f"level{level}.bin": nested})
    tables, errors = run(nested, "deep.zip")                      # 4 zips, max_depth 3
    assert tables == []
    assert errors == ["deep.zip!level3.bin!level2.bin!level1.bin: zip archive nested deeper than "
                      "max_depth=3: not opened (raise Limits.max_depth to read it)"]
    tables, errors = run(nested, "deep.zip", Limits(max_depth=4))
    assert errors == [] and tables[0][3] == rows


def test_zip_bomb_refused_from_declared_sizes(gigabyte_of_zeros, csv_bytes):
    raw, crc, size = gigabyte_of_zeros
    data, rows = csv_bytes
    ok = zlib.compressobj(6, zlib.DEFLATED, -15)
    ok_raw = ok.compress(data) + ok.flush()
    archive = zip_of([("zeros.bin", raw, crc, size, 8), ("ok.csv", ok_raw, zlib.crc32(data), len(data), 8)])
    stream = CountingFile(archive)
    errors: list[str] = []
    tables = collect(extract(stream, "bomb.zip", errors=errors))
    assert [t[1] for t in tables] == ["bomb.zip!ok.csv"] and tables[0][3] == rows
    assert len(errors) == 1 and errors[0].startswith("bomb.zip!zeros.bin: refused: declares")
    assert "decompression bomb" in errors[0]
    assert stream.delivered < 200_000                             # the 1 MiB bomb body was not read


def test_zip_member_over_max_bytes_refused_by_declared_size(csv_bytes):
    data, rows = csv_bytes
    archive = zip_bytes({"big.csv": data * 20, "small.csv": data})
    tables, errors = run(archive, "z.zip", Limits(max_bytes=len(data) * 10))
    assert [t[1] for t in tables] == ["z.zip!small.csv"]
    assert len(errors) == 1 and errors[0].startswith("z.zip!big.csv: refused: declares")


def test_zip_member_lying_about_its_size_is_stopped(gigabyte_of_lines, csv_bytes):
    """Central directory claims 2 MiB; the data inflates to 1 GiB: never more than declared."""
    raw, crc, _size = gigabyte_of_lines
    data, rows = csv_bytes
    archive = zip_of([("liar.txt", raw, crc, 2 * MiB, 8),
                      ("ok.csv", data, zlib.crc32(data), len(data), 0)])
    errors: list[str] = []
    tables = collect(extract(io.BytesIO(archive), "liar.zip", Limits(max_ratio=100_000), errors))
    liar = [t for t in tables if t[1] == "liar.zip!liar.txt"]
    assert sum(len(r) + 1 for t in liar for r in t[3]) <= 2 * MiB
    assert tables[-1][1] == "liar.zip!ok.csv" and tables[-1][3] == rows
    assert len(errors) == 1 and errors[0].startswith("liar.zip!liar.txt: corrupt zip member")


def test_encrypted_and_unsupported_members_are_skipped(csv_bytes):
    data, rows = csv_bytes
    archive = bytearray(zip_bytes({"secret.csv": data, "odd.csv": data, "plain.csv": data}))
    # zipfile cannot encrypt: set the "encrypted" flag of secret.csv and an unknown method
    # (deflate64, 9) for odd.csv, in their local headers and central directory entries
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = 0
        while (pos := archive.find(sig, pos)) >= 0:
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if archive[name_at:name_at + 10] == b"secret.csv":
                archive[pos + flag_at] |= 0x1
            if archive[name_at:name_at + 7] == b"odd.csv":
                archive[pos + flag_at + 2] = 9
            pos += 4
    tables, errors = run(bytes(archive), "mixed.zip")
    assert [t[1] for t in tables] == ["mixed.zip!plain.csv"] and tables[0][3] == rows
    assert errors == ["mixed.zip!secret.csv: encrypted member skipped (no password)",
                      "mixed.zip!odd.csv: compression method 9 not supported, member skipped"]


def test_bad_crc_member_reported_others_read(csv_bytes):
    data, rows = csv_bytes
    archive = bytearray(zip_bytes({"a.csv": data, "b.csv": data}, zipfile.ZIP_STORED))
    pos = archive.index(data[:200]) + 100                          # inside a.csv's stored data
    archive[pos] = ord("#")
    tables, errors = run(bytes(archive), "crc.zip")
    assert [t[1] for t in tables] == ["crc.zip!a.csv", "crc.zip!b.csv"]
    assert tables[1][3] == rows
    assert len(errors) == 1 and errors[0].startswith("crc.zip!a.csv: corrupt zip member (Bad CRC-32")


def test_truncated_zip_is_salvaged_from_local_headers(csv_bytes):
    data, rows = csv_bytes
    archive = zip_bytes({"one.csv": data, "two.csv": data, "three.csv": data * 20})
    cut = archive[: archive.index(b"three.csv") + 2000]           # central directory lost
    for stream in (io.BytesIO(cut), Pipe(cut)):
        errors: list[str] = []
        tables = collect(extract(stream, "cut.zip", errors=errors))
        assert [t[1] for t in tables][:2] == ["cut.zip!one.csv", "cut.zip!two.csv"]
        assert tables[0][3] == rows and tables[1][3] == rows
        assert errors[0].startswith("cut.zip: zip central directory unreadable")
        assert errors[-1].startswith("cut.zip!three.csv: truncated deflate stream")


def test_salvage_follows_data_descriptors(csv_bytes):
    """Streamed zips (sizes after the data) are salvaged by inflating to the end of each member."""
    data, rows = csv_bytes

    class NoSeek(io.RawIOBase):
        def __init__(self):
            self.buf = io.BytesIO()

        def writable(self):
            return True

        def write(self, b):
            return self.buf.write(b)

    sink = NoSeek()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:   # unseekable: data descriptors
        zf.writestr("a.csv", data)
        zf.writestr("b.csv", data)
    archive = sink.buf.getvalue()
    cut = archive[: archive.index(b"PK\x01\x02")]                 # drop the central directory
    tables, errors = run(cut, "stream.zip")
    assert [t[1] for t in tables] == ["stream.zip!a.csv", "stream.zip!b.csv"]
    assert tables[1][3] == rows and len(errors) == 1


def test_corrupt_zip_garbage_after_magic():
    tables, errors = run(b"PK\x03\x04" + b"\x00" * 20 + b"garbage" * 10, "junk.zip")
    assert tables == [] and errors and errors[0].startswith("junk.zip: ")


def test_max_members(csv_bytes):
    data, _rows = csv_bytes
    archive = zip_bytes({f"m{i}.csv": data for i in range(12)})
    tables, errors = run(archive, "many.zip", Limits(max_members=5))
    assert len(tables) == 5
    assert errors == ["many.zip: 12 members, more than max_members=5: only the first 5 were read"]


def test_binary_members_and_empty_members(csv_bytes):
    data, rows = csv_bytes
    archive = zip_bytes({"logo.png": b"\x89PNG\r\n\x1a\n" + bytes(300), "empty.txt": b"",
                         "d/": b"", "p.csv": data})
    tables, errors = run(archive, "x.zip")
    assert [t[1] for t in tables] == ["x.zip!p.csv"]
    assert errors == ["x.zip!logo.png: binary content (PNG image), skipped"]  # empty: read, nothing in it


# -- tar ------------------------------------------------------------------------------------

def test_tar_gz_members(csv_bytes, people):
    data, rows = csv_bytes
    header, jrows = synth.transform(people[:7])
    js = synth.render(header, jrows, "json").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, payload in (("dump/p.csv", data), ("dump/p.json", js)):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    for stream in (io.BytesIO(buf.getvalue()), Pipe(buf.getvalue())):
        errors: list[str] = []
        tables = collect(extract(stream, "dump.tgz", errors=errors))
        assert errors == []
        assert [t[1] for t in tables] == ["dump.tgz!dump.tar!dump/p.csv", "dump.tgz!dump.tar!dump/p.json"]
        assert tables[0][3] == rows and len(tables[1][3]) == 7


def test_office_file_strings_come_out_as_lines(people):
    """An xlsx is a zip of XML parts: its shared strings are read as text lines, one per cell."""
    header, rows = synth.transform(people[:5], columns=["nom", "email", "nir"])
    cells = [c for r in [header, *rows] for c in r]
    shared = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
              + "".join(f"<si><t>{c}</t></si>" for c in cells) + "</sst>")
    archive = zip_bytes({"[Content_Types].xml": b'<?xml version="1.0"?><Types></Types>',
                         "xl/sharedStrings.xml": shared.encode()})
    tables, errors = run(archive, "patients.xlsx")
    assert errors == []
    lines = [line for t in tables if t[1] == "patients.xlsx!xl/sharedStrings.xml" for line in t[3]]
    assert [line for line in lines if line] == cells


def test_abandoning_an_extraction_midway_leaves_nothing_open(csv_bytes):
    """A consumer may stop anywhere: spooled files and members are closed (warnings are errors)."""
    import gc

    data, rows = csv_bytes
    archive = zip_bytes({"a.csv": data, "in.zip": zip_bytes({"b.csv": data}), "c.csv.gz": gzip.compress(data)})
    for stream in (Pipe(archive), io.BytesIO(archive)):
        tables = extract(stream, "x.zip")
        first = next(tables)
        assert next(iter(first.rows)) == rows[0]
        del tables, first
        gc.collect()
