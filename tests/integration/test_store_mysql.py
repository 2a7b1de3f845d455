"""Store on real MariaDB metadata and two JuiceFS clients: a rw writer and a ro reader.

The reader (its own mount, its own MySQL connection) sees flushed segments without a restart,
applies deletes to cached segments only after reload_segments, and loads index files.
"""

from __future__ import annotations

import uuid

import numpy as np
import pymysql
import pytest

from labkit.node import meta as m

pytestmark = pytest.mark.integration
DIM = 16


@pytest.fixture
def pair(lab, fresh_database, store_pair):
    """(writer, reader, mysql params): rw Store on mount A, ro Store on mount B, one fresh database."""
    db = "store_" + uuid.uuid4().hex[:8]
    params = fresh_database(db)
    with store_pair(lab.meta_uri(db), "storew", "storer") as (w, r):
        yield w, r, params


def _rand(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def test_mysql_schema_is_milvus_1_1(pair):
    _, _, params = pair
    conn = pymysql.connect(**params)
    try:
        with conn.cursor() as cur:
            cur.execute("DESC Tables")
            tables = {r[0]: r[1] for r in cur.fetchall()}
            cur.execute("DESC TableFiles")
            files = {r[0]: r[1] for r in cur.fetchall()}
            cur.execute("SELECT global_lsn FROM Environment")
            assert cur.fetchall() == ((0,),)
            cur.execute("DESC Fields")
            assert [r[0] for r in cur.fetchall()] == ["collection_id", "field_name", "field_type",
                                                      "field_params"]
    finally:
        conn.close()
    assert tables["dimension"].startswith("smallint") and tables["index_params"] == "varchar(512)"
    assert tables["table_id"] == "varchar(255)" and tables["flush_lsn"].startswith("bigint")
    assert list(files) == ["id", "table_id", "segment_id", "engine_type", "file_id", "file_type", "file_size",
                           "row_count", "updated_time", "created_on", "date", "flush_lsn"]


def test_reader_on_other_mount_sees_flushes_deletes_after_reload_and_indexes(pair):
    w, r, params = pair
    w.create_collection("c", DIM, 1, 1)
    x = _rand(5000)
    ids = w.insert("c", "", x, None)
    assert r.count("c") == 0
    w.flush()
    assert r.count("c") == 5000
    (f,) = r.meta.files(["c"])
    seg_file = r.storage / "db" / "tables" / "c" / f["segment_id"] / f"{f['segment_id']}.rv"
    assert seg_file.stat().st_size == 8 + x.nbytes  # written through mount A, read through mount B
    _, got = r.search("c", [], x[:2], 1, {})
    assert got[:, 0].tolist() == ids[:2].tolist()

    w.delete("c", ids[:1])
    _, got = r.search("c", [], x[:1], 1, {})
    assert got[0, 0] == ids[0]  # cached on the reader: not yet
    r.reload_segments("c", [f["id"]])
    _, got = r.search("c", [], x[:1], 1, {})
    assert got[0, 0] != ids[0]

    w.create_index("c", 2, {"nlist": 32})
    (idx,) = r.meta.files(["c"])
    assert idx["file_type"] == m.INDEX
    _, got = r.search_in_files("c", [idx["id"]], x[5:8], 1, {"nprobe": 32})
    assert got[:, 0].tolist() == ids[5:8].tolist()
    assert any(s["file_type"] == m.INDEX for s in r.cache_info()["segments"])

    conn = pymysql.connect(**params)  # what Mishards reads
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT file_type, COUNT(*) FROM TableFiles WHERE table_id = 'c' GROUP BY file_type")
            assert dict(cur.fetchall()) == {m.INDEX: 1, m.BACKUP: 1}
    finally:
        conn.close()
