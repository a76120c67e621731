"""Matching: the tables of one input → records → the enrolled records they prove, into a Tally.

:class:`Matcher` is the scanner's working part (:mod:`matchers.scan` owns the entry points and
the verdict; :mod:`matchers.parallel` calls :meth:`Matcher.match_rows` on each byte range). Each
table takes one of three paths, chosen from its profile (:mod:`matchers.profiles`):

* the **batch path** (:meth:`Matcher.match_rows`): sequence rows with mapped strong columns, a
  batch of :data:`BATCH` rows at a time: the strong columns are fingerprinted and looked up with
  numpy (:mod:`matchers.columns`), and rows whose fields agree on one enrolled record are
  confirmed without further work; rows whose one strong field found a record are verified
  together (:mod:`matchers.verify`), and only rows with conflicting or shared hits go on to the
  per-record verification;
* flat JSON records with the same keys: as columns, on the batch path (:mod:`matchers.flatrecords`);
* the **generic path** (:mod:`matchers.generic`): other dict rows (JSON, key-value blocks, combos)
  and tables without strong columns, one :class:`matchers.records.Fields` per record, the values of
  a table without strong columns read for identifiers only where a bytes-level pre-filter says one
  may be there (its records are counted all the same);
* the **proximity path**: free text, and tables whose parse misses identifiers, read as windows
  of text around each strong identifier (:mod:`matchers.proximity`).

The **per-record verification** (:meth:`Matcher._verify`) takes the candidates a record's strong
fields (or its name and birth date) find in the index and checks its secondary fields against
each with that record's salted fingerprints: birth date, postcode, and the name, exact, by one
part, or typo-tolerant (:func:`matchers.verify.name_proof`). What it proves goes to the evidence
model (:mod:`matchers.evidence`), which decides once the whole input is read. A batch or a record that
raises is counted in the tally (never quoted) and the matching goes on.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from matchers import evidence as ev
from matchers import flatrecords as flat
from matchers import identifiers as ids
from matchers import proximity as prox
from matchers import schema as sch
from matchers import verify
from matchers.columns import (SHORT, batched, column, email_digests, nir_column, phone_column, pick,
                              young_generation)
from matchers.extract import Table
from matchers.extract.delimited import DelimitedRows
from matchers.fingerprint import STRONG_KINDS, Fingerprinter, nir_int
from matchers.index import LeakIndex
from matchers.profiles import PROFILE_ROWS, health_in_rows, hidden_identifiers, score_schema
from matchers.generic import BATCH, guarded, match_generic
from matchers.records import Fields, from_identifier, from_mapped, from_window
from matchers.tally import SAMPLE_SIZE, LeakHits, Tally



class Matcher:
    """Matches tables against the enrolled leaks it was given, into the caller's :class:`Tally`."""

    def __init__(self, indexes: Sequence[LeakIndex], fpr: Fingerprinter):
        self.indexes = list(indexes)
        self.fpr = fpr
        self._hash = {k: fpr.hasher(k) for k in STRONG_KINDS}
        self._norm = verify.Normal()

    # -- tables ------------------------------------------------------------------------------------
    def match_table(self, table: Table, t: Tally) -> None:
        """Every record of ``table`` into ``t``, by the path its shape calls for (module docstring)."""
        if table.kind == "text":
            self._match_text(table.rows, t)
            return
        rows = iter(table.rows)
        sample = list(itertools.islice(rows, PROFILE_ROWS))
        if not sample:
            return
        if len(sample) < PROFILE_ROWS:  # the whole table is read: no batch will follow
            self._match_records(table, sample, rows, t)
            return
        with young_generation(_YOUNG):
            self._match_records(table, sample, rows, t)

    def _match_records(self, table: Table, sample: list, rows: Iterator, t: Tally) -> None:
        """The records of a table (rows, dicts), by their path: profile (``sample``, its first rows;
        ``rows``, the rest), mapping, then batches."""
        mapping = sch.map_columns(table.header, sample)
        score_schema(mapping, len(sample), self.indexes, t)
        all_rows = itertools.chain(sample, rows)
        if hidden_identifiers(sample, mapping):
            # The parse misses identifiers the rows' text holds (cells with whole rows, a line
            # number or quote glued to a cell, keys the parser does not know): proximity.
            self._match_proximity(map(prox.row_text, all_rows), t)
        elif not isinstance(sample[0], dict) and mapping.kinds & {"nir", "email", "phone"}:
            self.match_rows(all_rows, mapping, t)
        elif (columnar := flat.columnar(sample, mapping)) is not None:
            flat.match_records(self, all_rows, mapping, columnar, t, BATCH)
        else:
            match_generic(all_rows, mapping, t, self._resolve, taken=len(sample),
                          raw=table.rows if isinstance(table.rows, DelimitedRows) else None)

    # -- fast path: sequence rows with mapped strong columns -----------------------------------------
    def match_rows(self, rows: Iterable, mapping: sch.Mapping, t: Tally) -> None:
        """Sequence rows with mapped strong columns, a vectorised batch at a time (fault-isolated)."""

        def one(row: Sequence[str]) -> None:
            t.records_seen += 1
            self._resolve([from_mapped(row, mapping)], t)

        with young_generation(_YOUNG):  # also when matchers.parallel calls this on a byte range
            guarded(batched(rows, BATCH), lambda b: self._seq_batch(b, mapping, t), one, t)

    def _seq_batch(self, rows: Iterable, mapping: sch.Mapping, t: Tally) -> None:
        """Vectorised matching of a batch of rows: numeric identifiers first, emails only if needed."""
        numeric_cols = [(c, k) for k in ("nir", "phone") for c in mapping.cols(k)]
        email_cols = mapping.cols("email")
        namedob = "birth_date" in mapping.kinds and bool(mapping.kinds & set(sch.NAME_KINDS) or mapping.name_parts)
        health_kinds = t.kinds & {"treatment", "pathology", "comment", "blood_group"}
        vector = len(t.leaks) == 1 and verify.eligible(mapping)
        for batch in batched(rows, BATCH):
            n = len(batch)
            t.records_seen += n
            # One fingerprint column per strong column: (kind, uint64 fingerprints, 0 = absent).
            columns: list[tuple[str, np.ndarray]] = []
            for c, k in numeric_cols:
                cells = column(batch, c)
                ints, keyed = nir_column(cells) if k == "nir" else phone_column(cells)
                t.count(k, int(np.count_nonzero(ints)))
                if k == "nir":
                    t.nir_keyed += int(np.count_nonzero(keyed))
                    t.nir_shaped += len(cells) - sum(map(SHORT.__contains__, map(len, cells)))
                columns.append((k, self.fpr.numeric(k, ints)))
            need = np.ones(n, dtype=bool)  # rows not yet confirmed by numeric identifiers in any leak
            per_leak = [self._confirm(h.index, columns, n) for h in t.leaks]
            for best, *_ in per_leak:
                need &= best < 0
            if email_cols:
                emails = [column(batch, c) for c in email_cols]
                for cells in emails:
                    t.count("email", len(cells) - cells.count(""))
                todo = np.flatnonzero(need)
                if len(todo):
                    h = self._hash["email"]
                    for cells in emails:
                        fps = np.zeros(n, dtype=np.uint64)
                        fps[todo] = np.frombuffer(email_digests(pick(cells, todo), h), dtype="<u8")
                        columns.append(("email", fps))
                    per_leak = [self._confirm(h_.index, columns, n, p) for h_, p in zip(t.leaks, per_leak)]
            slow = np.zeros(n, dtype=bool)
            single = np.zeros(n, dtype=bool)  # one strong field hits, alone: verified as a batch
            for hits, (best, any_hit, found, shared) in zip(t.leaks, per_leak):
                # Rows with a lone or conflicting hit are verified (those with one strong field
                # that hits, as a batch: matchers/verify.py); so are rows that found nothing
                # strong when a name and a birth date may still find them.
                slow |= any_hit & (best < 0)
                if namedob:
                    slow |= ~any_hit
                if vector:
                    single = (best < 0) & (sum(r >= 0 for _, r in found) == 1)
                slow |= shared  # a fingerprint more than one record holds: each is a candidate
                single &= ~shared
                new = (best >= 0) & ~slow
                if new.any():
                    hits.add(best[new])
                    for i in np.flatnonzero(new)[:SAMPLE_SIZE - len(t.sample)].tolist():
                        t.add_sample(from_mapped(batch[i], mapping))
            if health_kinds and not t.health:
                t.health = any((g := from_mapped(r, mapping)).health or g.blood for r in batch[:PROFILE_ROWS])
            if not t.health:  # medical words in any value, whatever the column's header
                t.health = health_in_rows(batch)
            confirmed: list[int] = []
            if single.any():
                confirmed = self._verify_single(batch, np.flatnonzero(single), per_leak[0][2], mapping, t)
                slow &= ~single
            self._resolve_rows(batch, np.flatnonzero(slow).tolist(), confirmed, mapping, t)

    def _verify_single(self, batch: list, rows: np.ndarray, found: list[tuple[str, np.ndarray]],
                       mapping: sch.Mapping, t: Tally) -> list[int]:
        """Rows (of ``batch``) whose one strong field found a record, verified together against the
        one leak (matchers/verify.py); returns the rows confirmed."""
        hits = t.leaks[0]
        recs = np.full(len(rows), -1, dtype=np.int64)
        kinds = [""] * len(rows)
        for k, r in found:
            r = r[rows]
            recs = np.maximum(recs, r)
            for i in np.flatnonzero(r >= 0).tolist():
                kinds[i] = k
        ok = verify.verify_single(self.fpr, self._norm, [batch[i] for i in rows.tolist()], mapping, recs,
                                  kinds, hits.index, t.evidence_of(hits.index))
        return rows[ok].tolist()

    def _resolve_rows(self, batch: list, slow: list[int], confirmed: list[int], mapping: sch.Mapping,
                      t: Tally) -> None:
        """The ``slow`` rows of ``batch`` verified one by one; the redacted sample takes the rows
        ``confirmed`` by the batch verification in row order among them, as the per-record
        verification of all of them would."""
        done = 0
        for i in confirmed:
            if len(t.sample) >= SAMPLE_SIZE:
                break
            upto = bisect.bisect_left(slow, i, done)
            if upto > done:
                self._resolve([from_mapped(batch[j], mapping) for j in slow[done:upto]], t, count=False)
                done = upto
            t.add_sample(from_mapped(batch[i], mapping))
        if done < len(slow):
            self._resolve([from_mapped(batch[j], mapping) for j in slow[done:]], t, count=False)

    @staticmethod
    def _confirm(idx: LeakIndex, columns: list[tuple[str, np.ndarray]], n: int,
                 before: tuple = ()) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
        """Per row: the enrolled record two strong fields of different kinds agree on (-1: none),
        whether any strong field hit at all, per column (kind, the record each row's field found),
        and whether any of its fields holds a fingerprint shared by several enrolled records.
        ``before``: what this returned for the first columns, already looked up (the numeric ones)."""
        # One sorted lookup for the columns not yet looked up: the index is walked once per batch.
        new = columns[len(before[2]) if before else 0:]
        if new:
            found, dup = idx.lookup(np.concatenate([fps for _, fps in new]), shared=True)
        else:
            found, dup = np.empty(0, np.int64), np.empty(0, bool)
        recs = (list(before[2]) if before else []) + [(k, found[i * n:(i + 1) * n]) for i, (k, _) in enumerate(new)]
        shared = before[3].copy() if before else np.zeros(n, dtype=bool)
        for i in range(len(new)):
            shared |= dup[i * n:(i + 1) * n]
        best = np.full(n, -1, dtype=np.int64)
        any_hit = np.zeros(n, dtype=bool)
        for k, r in recs:
            any_hit |= r >= 0
        for (ka, ra), (kb, rb) in itertools.combinations(recs, 2):
            if ka != kb:
                agree = (ra >= 0) & (ra == rb) & (best < 0)
                best[agree] = ra[agree]
        return best, any_hit, recs, shared

    def _match_text(self, lines: Iterable[str], t: Tally) -> None:
        self._match_proximity(lines, t)

    def _match_proximity(self, pieces: Iterable[str], t: Tally) -> None:
        """Records as the text around each strong identifier (matchers/proximity.py): the anchor's
        own enrolled records are the candidates, the window gives the second proof."""
        per_kind = dict.fromkeys(prox.STRONG, 0)
        for block in prox.blocks(pieces):
            lo, hi = block.new
            if not t.health:
                t.health = bool(ids.health_terms(block.text[lo:hi][:1 << 20]))
            t.count("blood_group", len(ids.BLOOD_IN_TEXT.findall(block.text, lo, hi)))
            t.nir_shaped += block.shaped
            anchors = block.anchors
            last = dict.fromkeys(prox.STRONG, -prox.SAME_RECORD)
            for i in block.own:
                a = anchors[i]
                if a.start - last[a.kind] >= prox.SAME_RECORD:
                    per_kind[a.kind] += 1
                last[a.kind] = a.start
                t.count(a.kind)
                t.kinds.add(a.kind)
                t.nir_keyed += a.keyed
            if not block.own:
                continue
            alone = [from_identifier(a.kind, a.value) for a in anchors]
            lost: set[int] = set()
            for hits in t.leaks:
                weigh = t.evidence_of(hits.index)
                found = self._lookup_strong(alone, hits.index)
                for i in block.own:
                    try:
                        self._verify_window(block, i, alone, found, hits, weigh, t)
                    except Exception as exc:  # counted, never quoted; the next window goes on
                        if i not in lost:
                            lost.add(i)
                            t.fail(exc, 1, "a text window")
        # A record holds one identifier of each kind it has (two of a kind closer than SAME_RECORD
        # characters are one record's): the most frequent kind counts.
        t.records_seen += max(per_kind.values())

    def _verify_window(self, block: "prox.Block", i: int, alone: list[Fields], found: list[dict[int, set[str]]],
                       hits: LeakHits, weigh: ev.Evidence, t: Tally) -> None:
        """The window around anchor ``i`` against the enrolled records its identifier finds; what it
        proves goes to the evidence model (decided once the whole input is read)."""
        idx, budget, anchors = hits.index, t.proximity, block.anchors
        cands = [r for r in found[i] if r not in hits
                 and budget.tries.get((idx.name, r), 0) < prox.MAX_TRIES]
        if not cands or not budget.allow():
            return
        lo_w, hi_w = block.window(i)
        proofs = {r: {anchors[i].kind} for r in cands}
        for j in block.neighbours(i):
            for r in cands:
                if r in found[j]:
                    proofs[r].add(anchors[j].kind)
        f = from_window(block.text, lo_w, hi_w, (anchors[i].start, anchors[i].end))
        rec, fields_ = self._verify(f, proofs, idx)
        if rec is None:
            for r in cands:
                budget.tries[(idx.name, r)] = budget.tries.get((idx.name, r), 0) + 1
            weigh.candidate({a for ks in proofs.values() for a in ev.anchors_of(ks)})
            return
        weigh.confirm(rec, ev.anchors_of(proofs[rec]), fields_)
        t.add_sample(alone[i])
        t.kinds |= {_FOUND_KIND[k] for k in fields_ if k in _FOUND_KIND}

    # -- per-record verification -------------------------------------------------------------------
    def _resolve(self, fields: list[Fields], t: Tally, *, count: bool = True) -> None:
        """Confirm records one by one: candidates from strong fields, then secondary fields."""
        if count:
            for f in fields:
                if f.has_strong():
                    t.count("nir", len(f.nirs))
                    t.count("email", len(f.emails))
                    t.count("phone", len(f.phones))
                t.count("blood_group", f.blood)
                t.nir_keyed += f.nir_keyed
                t.nir_shaped += f.nir_shaped
                if f.health:
                    t.health = True
        if not any(f.has_strong() or (f.dobs and f.names) for f in fields):
            return
        lost: set[int] = set()  # records an internal error kept from being checked (counted once)
        for hits in t.leaks:
            weigh = t.evidence_of(hits.index)
            lookups = self._lookup_strong(fields, hits.index)
            namedob = self._lookup_namedob(fields, lookups, hits.index)
            for i, f in enumerate(fields):
                try:
                    self._resolve_one(i, fields, lookups, namedob, hits.index, weigh, t)
                except Exception as exc:
                    if i not in lost:
                        lost.add(i)
                        t.fail(exc, 1, "a record")

    def _resolve_one(self, i: int, fields: list[Fields], lookups: list[dict[int, set[str]]],
                     namedob: dict[int, dict[int, set[str]] | Exception], idx: LeakIndex,
                     weigh: ev.Evidence, t: Tally) -> None:
        """Verify record ``i`` of ``fields`` against one leak and hand what it proves to the
        evidence model, which decides once the whole input is read."""
        f = fields[i]
        cands = lookups[i]
        if not cands and f.dobs and f.names:
            weigh.namedob_keys += min(len(f.names), 40) * min(len(f.dobs), 3)
            cands = namedob[i]  # looked up with the other records' (_lookup_namedob)
            if isinstance(cands, Exception):
                raise cands
        if not cands:
            return
        rec, fields_ = self._verify(f, cands, idx)
        if rec is None:
            # A candidate no second proof supports: what chance hits look like. Their number
            # estimates the input's chance candidates (C) of each anchor (docs/evidence.md).
            weigh.candidate({a for ks in cands.values() for a in ev.anchors_of(ks)})
            return
        weigh.confirm(rec, ev.anchors_of(cands[rec]), fields_)
        t.add_sample(f)

    def _lookup_strong(self, fields: list[Fields], idx: LeakIndex) -> list[dict[int, set[str]]]:
        """Per record: enrolled candidates and which strong kinds found each."""
        owners: list[tuple[int, str]] = []
        fps: list[np.ndarray] = []
        for kind, values_of, to_int in (("nir", lambda f: f.nirs, nir_int), ("phone", lambda f: f.phones, int)):
            ints = []
            for i, f in enumerate(fields):
                for v in values_of(f):
                    ints.append(to_int(v))
                    owners.append((i, kind))
            fps.append(self.fpr.numeric(kind, np.array(ints, dtype=np.uint64)))
        digests = []
        h = self._hash["email"]
        for i, f in enumerate(fields):
            for e in f.emails:
                digests.append(h(e))
                owners.append((i, "email"))
        fps.append(np.frombuffer(b"".join(digests), dtype="<u8"))
        out: list[dict[int, set[str]]] = [{} for _ in fields]
        if not owners:
            return out
        q = np.concatenate(fps)
        recs, shared = idx.lookup(q, shared=True)
        for (i, kind), fp, rec, dup in zip(owners, q.tolist(), recs.tolist(), shared.tolist()):
            if rec < 0:
                continue
            for r in (idx.all_records(fp) if dup else (rec,)):
                out[i].setdefault(r, set()).add(kind)
        return out

    def _lookup_namedob(self, fields: list[Fields], strong: list[dict[int, set[str]]],
                        idx: LeakIndex) -> dict[int, dict[int, set[str]] | Exception]:
        """Per record with a name and a birth date and no strong candidate: the enrolled records
        its names × birth dates (40 × 3 at most) find, looked up together, at most
        :data:`_NAMEDOB_LOOKUP` fingerprints a lookup; a record whose fingerprints raise gets the
        exception, raised again where that record is verified (counted as that record's failure)."""
        out: dict[int, dict[int, set[str]] | Exception] = {}
        h = self._hash["namedob"]
        owners: list[int] = []
        digests: list[bytes] = []

        def flush() -> None:
            q = np.frombuffer(b"".join(digests), dtype="<u8")
            recs, shared = idx.lookup(q, shared=True)
            for i, fp, rec, dup in zip(owners, q.tolist(), recs.tolist(), shared.tolist()):
                if rec >= 0:
                    found = out[i]
                    for r in (idx.all_records(fp) if dup else (rec,)):
                        found.setdefault(r, set()).update(("name", "dob"))  # type: ignore[union-attr]
            owners.clear()
            digests.clear()

        for i, f in enumerate(fields):
            if strong[i] or not (f.dobs and f.names):
                continue
            try:
                mine = [h(f"{name}|{dob}") for name in f.names[:40] for dob in f.dobs[:3]]
            except Exception as exc:  # noqa: BLE001 - the record's own failure, raised at its turn
                out[i] = exc
                continue
            out[i] = {}
            owners.extend([i] * len(mine))
            digests.extend(mine)
            if len(digests) >= _NAMEDOB_LOOKUP:
                flush()
        if digests:
            flush()
        return out

    def _verify(self, f: Fields, cands: dict[int, set[str]], idx: LeakIndex) -> tuple[int | None, dict[str, int]]:
        """The enrolled record (among ``cands``) that ≥ 2 independent fields of ``f`` match, if any,
        and its proofs (kind → how many candidate values were tried): the strongest candidate wins."""
        best, best_q, best_proofs = None, 2.0, {}
        for rec, found in cands.items():
            proofs = dict.fromkeys(found, 1)
            salt = int(idx.salt[rec])
            if "dob" not in proofs and f.dobs and idx.dob[rec]:
                stored, tried = int(idx.dob[rec]), f.dobs[:6]
                if any(self.fpr.salted(salt, "dob", d) == stored for d in tried):
                    proofs["dob"] = len(tried)
            if "postcode" not in proofs and f.postcodes and idx.postcode[rec]:
                stored, tried = int(idx.postcode[rec]), f.postcodes[:6]
                if any(self.fpr.salted(salt, "postcode", p) == stored for p in tried):
                    proofs["postcode"] = len(tried)
            strong = sum(k in ev.STRONG for k in proofs)
            if "name" not in proofs and strong < 2:
                hit = verify.name_proof(self.fpr, f, rec, salt, idx)
                # An email that spells the name is one proof, not two (jean.dupont@…).
                if hit and not ("email" in proofs and strong == 1
                                and any(ids.email_spells_name(e, hit[2]) for e in f.emails)):
                    proofs[hit[0]] = hit[1]
            if len(proofs) >= 2:
                q = ev.strength(proofs)
                if q < best_q:
                    best, best_q, best_proofs = rec, q, proofs
        return best, best_proofs


_NAMEDOB_LOOKUP = 8192  # name × birth date fingerprints a lookup at most (bounded memory)
_YOUNG = 3 * BATCH  # objects the collector's young generation may hold (columns.young_generation)
_FOUND_KIND = {"name": "full_name", "name~": "full_name", "surname": "last_name", "first_name": "first_name",
               "name_part": "last_name",
               "dob": "birth_date", "postcode": "postcode"}
