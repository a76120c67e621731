"""One shape of a findings row, Python values until the store writes it (JSON only at the SQLite door)."""

from __future__ import annotations

import pytest

from dumpwatch import store
from matchers.finding import Finding


def _finding() -> Finding:
    return Finding(input="https://p.example/1", verdict="repost", leak="labos", matched_records=3, records_seen=9,
                   schema_score=0.91234, identifiers={"nir": 3}, labs={"Biolab Vannes": 3},
                   categories=("identity", "nir"), sample=("1 85 05 ** *** *** **",), sha256="a" * 64, size=10)


def test_a_document_finding_and_a_health_finding_have_the_same_columns():
    row = store.finding_row(_finding(), source="pastes", detail={"n": 1})
    health = store.health_row(source="forum", problem="failing", at="2021-02-23T10:00:00+00:00")
    assert set(row) == set(health)
    assert row["labs"] == {"Biolab Vannes": 3} and row["categories"] == ["identity", "nir"]  # not JSON text
    assert health["detail"] == {"problem": "failing"} and health["dedup_key"] == "source-health:forum:failing:2021-02-23"
    with pytest.raises(TypeError, match="not a column of findings: colour"):
        store._finding_shape(dedup_key="k", verdict="repost", first_seen="t", detected_at="t", colour="red")


def test_the_store_writes_json_and_reads_back_the_same_values():
    db = store.open_db(None)
    row = store.finding_row(_finding(), source="pastes", detail={"é": 1})
    fid = store.insert_finding(db, row)
    raw = db["findings"].get(fid)
    assert raw["labs"] == '{"Biolab Vannes": 3}' and raw["detail"] == '{"é": 1}'  # UTF-8, sorted keys
    back = store.get_finding(db, fid)
    assert {k: back[k] for k in store.FINDING_JSON} == {k: row[k] for k in store.FINDING_JSON}
    assert store.insert_finding(db, row) is None  # the same copy
    assert store.finding_counts(db) == {"repost": 1}
