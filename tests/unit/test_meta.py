"""Milvus 1.1 metadata tables on sqlite: columns, ids, file rows."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m


@pytest.fixture
def meta(tmp_path):
    md = m.Meta("sqlite://:@:/", tmp_path)
    md.create_schema()
    try:
        yield md
    finally:
        md.close()


def test_schema_has_the_1_1_tables_and_columns(meta, tmp_path):
    conn = sqlite3.connect(tmp_path / "db" / "meta.sqlite")
    try:
        cols = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]
                for t in ("Tables", "TableFiles", "Environment", "Fields")}
    finally:
        conn.close()
    assert cols["Tables"] == ["id", "table_id", "state", "dimension", "created_on", "flag", "index_file_size",
                              "engine_type", "index_params", "metric_type", "owner_table", "partition_tag",
                              "version", "flush_lsn"]
    assert cols["TableFiles"] == ["id", "table_id", "segment_id", "engine_type", "file_id", "file_type",
                                  "file_size", "row_count", "updated_time", "created_on", "date", "flush_lsn"]
    assert cols["Environment"] == ["global_lsn"]
    assert cols["Fields"] == ["collection_id", "field_name", "field_type", "field_params"]
    meta.create_schema()  # idempotent, one Environment row
    assert meta.global_lsn() == 0


def test_ids_are_microseconds_times_1000_and_unique():
    first = m.ids.take(5)
    assert abs(first // 1000 - m.now_us()) < 10_000_000
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.extend(m.ids.take() for _ in range(200)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 800 and min(got) > first + 4


def test_tables_and_files(meta):
    meta.insert_table(table_id="c", dimension=8, index_file_size=1 << 20, metric_type=2)
    with pytest.raises(MilvusError) as err:
        meta.insert_table(table_id="c", dimension=8, index_file_size=1 << 20)
    assert err.value.code == Code.ILLEGAL_COLLECTION_NAME
    meta.insert_table(table_id="999", dimension=8, index_file_size=1 << 20, owner_table="c",
                      partition_tag="p")
    assert [r["table_id"] for r in meta.collections()] == ["c"]
    assert [r["partition_tag"] for r in meta.partitions("c")] == ["p"]
    row = meta.table("c")
    assert row["metric_type"] == 2 and row["engine_type"] == 1 and row["index_params"] == "{}"

    fid = meta.insert_file(table_id="c", file_id="5", file_type=m.RAW, file_size=10, row_count=3)
    meta.insert_file(table_id="999", file_id="6", file_type=m.NEW_MERGE)
    (f,) = meta.files(["c", "999"])
    assert f["id"] == fid and f["segment_id"] == "5" and f["date"] == -1
    before = f["updated_time"]
    meta.update_files([fid], file_type=m.INDEX)
    (f,) = meta.files_by_id([fid])
    assert f["file_type"] == m.INDEX and f["updated_time"] >= before
    assert len(meta.files_of_type([m.NEW_MERGE])) == 1
    meta.delete_files([fid])
    meta.delete_tables(["c", "999"])
    assert meta.table("c") is None and meta.files(["c"]) == []
    meta.set_global_lsn(42)
    assert meta.global_lsn() == 42


def test_bad_meta_uri():
    with pytest.raises(MilvusError) as err:
        m.Meta("postgres://x", "/tmp")
    assert err.value.code == Code.META_FAILED


def test_set_file_types_in_one_statement(meta):
    a = meta.insert_file(table_id="c", file_id="1", file_type=m.NEW_INDEX)
    b = meta.insert_file(table_id="c", file_id="2", file_type=m.TO_INDEX)
    meta.set_file_types({a: m.INDEX, b: m.BACKUP})
    rows = {r["id"]: r for r in meta.files_by_id([a, b])}
    assert (rows[a]["file_type"], rows[b]["file_type"]) == (m.INDEX, m.BACKUP)
    assert rows[a]["updated_time"] == rows[b]["updated_time"]
