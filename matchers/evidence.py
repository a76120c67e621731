"""Evidence weighed by how often it happens by chance (see docs/evidence.md).

Two fields of an input record that match one enrolled record prove that record was copied only if
a stranger is unlikely to match both by chance, *over the whole input*: a phone collides with one
of 50,000 enrolled phones once in 2,000 random mobiles, and a common surname is shared by one
person in 250, so among the few hundred chance phone hits of a million-row customer export some
also share a surname. The model:

- Each proof kind has a bound on the probability that a random stranger's value equals one given
  enrolled record's value (:data:`CHANCE`). Names cannot be counted in the index (it is salted, on
  purpose: no frequencies), so the bounds are the frequencies of the most common French names. A
  proof tried with several candidate values (the words of a text line) counts ``tries × p``.
- A record's *anchor* is the kind that found it as a candidate (a strong identifier looked up in
  the index, or the name + birth date key). The input's *chance candidates* for an anchor, ``C``,
  bound how many candidates of that kind a file of strangers of this size would give: for phones,
  the phone candidates no second proof supports (chance hits almost never bring one; phones are
  recycled, shared and faked, so they are counted where they show rather than trusted to a uniform
  model), and never fewer than ``phones × enrolled phones / 10^8``; for NIRs (with their key),
  emails and name + birth date, the modelled number (the observed ones are true copies).
- A record is confirmed when, for one of its anchors, ``C × q ≤`` :data:`EXPECTED_FALSE_MAX`,
  ``q`` being the product of the chance probabilities of its other matched proofs: a larger input
  needs stronger proofs. Two strong identifiers of different kinds that agree on one record need
  nothing more (``q`` ≤ 10⁻⁶).
- The input's expected number of false confirmations ``λ`` sums ``C × q`` over the kinds of
  evidence accepted; the verdict ``repost`` needs ``P(Poisson(λ) ≥ confirmed) <``
  :data:`FALSE_ALARM` on top of the configured threshold.

Everything here is counts and probabilities: no identifier, no fingerprint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

# P(a random stranger's value equals one given enrolled record's value): stated upper bounds.
CHANCE: dict[str, float] = {
    "nir": 1 / 2.3e11,  # well-formed NIR bodies: 2 sexes × 100 years × 12 months × 96 depts × 990 × 999
    "email": 1e-9,  # a mailbox has one holder; shared family mailboxes are enrolled as such
    "phone": 1e-6,  # 1/10^8 numbers, ×100 for recycled and shared numbers
    "name": 1e-4,  # exact full name: the most common French full name is held by < 0.01 % of people
    "name~": 0.05,  # typo-tolerant full name (Dice ≥ 0.72): 1.5 % measured on the commonest names, ×3
    "surname": 0.005,  # the commonest French surname (Martin) covers ~0.4 % of people
    "first_name": 0.03,  # the commonest first names (Marie, Jean) cover ~1–2 %, ×1.5
    "name_part": 0.035,  # a word tried both as a surname and as a first name
    "dob": 1 / 36_500,  # one day in a hundred years
    "postcode": 0.004,  # the most populous postcodes hold ~0.35 % of people (Paris 15e)
}
# How many distinct values a stranger's identifier is drawn from (chance hits of a lookup).
SPACE: dict[str, float] = {"nir": 2.3e11, "phone": 1e8, "email": 1e13}
STRONG = ("nir", "email", "phone")
ANCHORS = ("nir", "email", "phone", "namedob")
EXPECTED_FALSE_MAX = 0.5  # expected false records allowed per kind of evidence in one input
FALSE_ALARM = 1e-6  # P(a file of strangers is called a repost)


def chance(proofs: Mapping[str, int], anchor: str) -> float:
    """``q``: the probability that a chance candidate found by ``anchor`` also matches ``proofs``.

    ``proofs`` maps each matched proof kind to how many candidate values were tried for it.
    """
    covered = ("name", "dob") if anchor == "namedob" else (anchor,)
    q = 1.0
    for kind, tries in proofs.items():
        if kind not in covered:
            q *= min(1.0, max(1, tries) * CHANCE[kind])
    return q


def strength(proofs: Mapping[str, int]) -> float:
    """The chance probability of all ``proofs`` together (lower is stronger): ranks candidates."""
    q = 1.0
    for kind, tries in proofs.items():
        q *= min(1.0, max(1, tries) * CHANCE[kind])
    return q


def anchors_of(found: Iterable[str]) -> list[str]:
    """The anchors of a candidate from the kinds that found it (``name`` and ``dob``: the name + birth date key)."""
    found = set(found)
    out = [k for k in STRONG if k in found]
    if {"name", "dob"} <= found:
        out.append("namedob")
    return out


def poisson_tail(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if lam < k:  # sum the tail upward: exact for small lam, where 1 - cdf would lose every digit
        term = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1))
        total, i = 0.0, k
        while term > total * 1e-17 and i < k + 10_000:
            total += term
            i += 1
            term *= lam / i
        return min(1.0, total)
    cdf, term = 0.0, math.exp(-lam)
    for i in range(k):
        cdf += term
        term *= lam / (i + 1)
    return max(0.0, 1.0 - cdf)


@dataclass
class Evidence:
    """What one input gathered against one enrolled leak, decided once the whole input is read.

    Per anchor, (record, ``q``) pairs: ``q`` the chance probability of an input record confirming
    that enrolled record via that anchor; a record's lowest ``q`` counts. Only the records the
    input touched are held (memory proportional to the input, not to the index): pairs are
    gathered in blocks and folded to one (record, lowest ``q``) pair per record, sorted by record,
    whenever the blocks outgrow what was folded (:meth:`pairs`). ``candidates``: verified
    candidates per anchor (observed).
    """

    size: int
    candidates: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ANCHORS, 0))
    namedob_keys: int = 0  # name + birth date keys looked up (the model of chance namedob hits)
    # anchor -> (records int64, sorted, unique; their lowest q float32): the blocks folded so far
    folded: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # anchor -> blocks of (records, q) not folded yet
    blocks: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    # anchor -> records and q of single confirmations, not yet made a block
    pending: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    order: dict[str, None] = field(default_factory=dict)  # anchors in the order first confirmed

    def candidate(self, anchors: Iterable[str]) -> None:
        for a in anchors:
            self.candidates[a] += 1

    def confirm(self, rec: int, anchors: Iterable[str], proofs: Mapping[str, int]) -> None:
        for a in anchors:
            self.order.setdefault(a)
            recs, qs = self.pending.setdefault(a, ([], []))
            recs.append(rec)
            qs.append(chance(proofs, a))
            if len(recs) >= _PENDING:
                self._flush(a)

    def confirm_many(self, anchor: str, recs: np.ndarray, qs: np.ndarray) -> None:
        """:meth:`confirm` of many records via one anchor, ``qs`` their chance probabilities."""
        if len(recs):
            self._add(anchor, np.asarray(recs, dtype=np.int64), np.asarray(qs, dtype=np.float32))

    def _flush(self, a: str) -> None:
        recs, qs = self.pending.pop(a, ([], []))
        if recs:
            self._add(a, np.array(recs, dtype=np.int64), np.array(qs, dtype=np.float32))

    def _add(self, a: str, recs: np.ndarray, qs: np.ndarray) -> None:
        self.order.setdefault(a)
        blocks = self.blocks.setdefault(a, [])
        blocks.append((recs, qs))
        # Folded once the blocks outgrow what was folded: memory stays within twice the records touched.
        if sum(len(r) for r, _ in blocks) > max(len(self.folded.get(a, ((),))[0]), _PENDING):
            self._fold(a)

    def _fold(self, a: str) -> None:
        parts = ([self.folded[a]] if a in self.folded else []) + self.blocks.pop(a, [])
        recs = np.concatenate([r for r, _ in parts])
        qs = np.concatenate([q for _, q in parts])
        order = np.lexsort((qs, recs))  # by record, then q: the first of each record is its lowest
        recs, qs = recs[order], qs[order]
        first = np.ones(len(recs), dtype=bool)
        first[1:] = recs[1:] != recs[:-1]
        self.folded[a] = (recs[first], qs[first])

    def pairs(self, anchor: str) -> tuple[np.ndarray, np.ndarray]:
        """The records confirmed via ``anchor`` (sorted, int64) and each one's lowest ``q`` (float32)."""
        self._flush(anchor)
        if self.blocks.get(anchor):
            self._fold(anchor)
        return self.folded.get(anchor, (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)))

    def anchors(self) -> list[str]:
        """The anchors some record was confirmed by, in the order they first were."""
        return list(self.order)

    def merge(self, other: "Evidence") -> None:
        """Add what another part of the same input (a range scanned by another process) gathered."""
        for a, n in other.candidates.items():
            self.candidates[a] = self.candidates.get(a, 0) + n
        self.namedob_keys += other.namedob_keys
        for a in other.anchors():
            self._add(a, *other.pairs(a))

    def chance_candidates(self, enrolled: Mapping[str, int], identifiers: Mapping[str, int]) -> dict[str, float]:
        """``C`` per anchor: how many candidates of that kind strangers would give in this input."""
        modelled = {k: identifiers.get(k, 0) * enrolled.get(k, 0) / SPACE[k] for k in STRONG}
        return {
            "nir": modelled["nir"],
            "email": modelled["email"],
            "phone": max(float(self.candidates.get("phone", 0)), modelled["phone"]),
            "namedob": self.namedob_keys * enrolled.get("records", 0) * CHANCE["name"] * CHANCE["dob"],
        }

    def decide(self, enrolled: Mapping[str, int], identifiers: Mapping[str, int]) -> tuple[np.ndarray, float]:
        """Records confirmed (sorted record numbers, int64) and ``λ``, the expected false ones among them."""
        c = self.chance_candidates(enrolled, identifiers)
        accepted = [np.empty(0, dtype=np.int64)]
        lam = 0.0
        for a in self.anchors():
            recs, q = self.pairs(a)
            ok = c[a] * q <= EXPECTED_FALSE_MAX
            if ok.any():
                accepted.append(recs[ok])
                # Each kind of evidence accepted (one q value) may confirm C × q strangers.
                lam += c[a] * float(sorted_unique(q[ok]).sum())
        return sorted_unique(np.concatenate(accepted), stable=True), lam


_PENDING = 1 << 16  # single confirmations gathered before they become a block


def sorted_unique(a: np.ndarray, *, stable: bool = False) -> np.ndarray:
    """``np.unique(a)`` by a sort and a mask (numpy's hashing unique is many times slower on
    hundreds of thousands of record numbers); ``stable``: a merge sort, linear on sorted runs."""
    a = np.sort(a, kind="stable" if stable else None)
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def strong_pair_lambda(enrolled: Mapping[str, int], identifiers: Mapping[str, int], candidates: float) -> float:
    """``λ`` of records confirmed by two strong identifiers of different kinds (negligible, stated)."""
    modelled = sum(identifiers.get(k, 0) * enrolled.get(k, 0) / SPACE[k] for k in STRONG)
    return (modelled + candidates) * max(CHANCE[k] for k in STRONG)
