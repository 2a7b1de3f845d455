"""Segment files in the 1.1 layout: headers, atomic writes, deleted_docs, index container."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from labkit.node import segments as seg


def test_no_segment_is_written_into_a_bare_mountpoint(tmp_path):
    """Without db/tables (a dead mount's path leads into the empty mountpoint) nothing is created."""
    d = seg.segment_dir(tmp_path / "jfs" / "milvus", "coll", "123")
    with pytest.raises(FileNotFoundError, match="storage is not available"):
        seg.write_raw(d, "123", np.zeros((1, 8), np.float32), np.arange(1, dtype=np.int64))
    assert not (tmp_path / "jfs").exists()


def test_raw_files_have_the_1_1_layout(tmp_path):
    seg.tables_dir(tmp_path).mkdir(parents=True)  # made by Store.start
    d = seg.segment_dir(tmp_path, "coll", "123")
    v = np.random.default_rng(0).random((10, 8), dtype=np.float32)
    ids = np.arange(100, 110, dtype=np.int64)
    assert seg.write_raw(d, "123", v, ids) == v.nbytes
    assert d == tmp_path / "db" / "tables" / "coll" / "123"
    rv = (d / "123.rv").read_bytes()
    assert struct.unpack("<Q", rv[:8])[0] == v.nbytes and rv[8:] == v.tobytes()
    uid = (d / "123.uid").read_bytes()
    assert struct.unpack("<Q", uid[:8])[0] == 80 and uid[8:] == ids.tobytes()
    assert np.array_equal(seg.read_vectors(d, "123", 8, binary=False), v)
    assert np.array_equal(seg.read_ids(d, "123"), ids)
    assert np.array_equal(seg.read_vector_rows(d, "123", 8, False, np.array([7, 2])), v[[7, 2]])
    assert sorted(p.name for p in d.iterdir()) == ["123.rv", "123.uid"]  # no temp files left


def test_binary_vectors_are_uint8(tmp_path):
    d = tmp_path / "s"
    v = np.arange(12, dtype=np.uint8).reshape(3, 4)
    seg.write_raw(d, "1", v, np.arange(3))
    out = seg.read_vectors(d, "1", 4, binary=True)
    assert out.dtype == np.uint8 and np.array_equal(out, v)


def test_truncated_file_is_refused(tmp_path):
    d = tmp_path / "s"
    seg.write_raw(d, "1", np.ones((4, 2), np.float32), np.arange(4))
    p = d / "1.rv"
    p.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(ValueError, match="header says"):
        seg.read_vectors(d, "1", 2, False)


def test_deleted_docs(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    assert seg.read_deleted(d).size == 0
    seg.write_deleted(d, np.array([5, 1, 5], dtype=np.int32))
    raw = (d / "deleted_docs").read_bytes()
    assert struct.unpack("<Q", raw[:8])[0] == 8
    assert seg.read_deleted(d).tolist() == [1, 5]
    assert not (d / "temp_del").exists()
    mask = seg.deleted_mask(seg.read_deleted(d), 7)
    assert mask.tolist() == [False, True, False, False, False, True, False]
    assert seg.deleted_mask(np.empty(0, np.int32), 3) is None


def test_index_file_container(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    size = seg.write_index(d, "77", 2, b"payload")
    data = (d / "77").read_bytes()
    assert len(data) == size and struct.unpack("<i", data[:4])[0] == 2
    itype, blob, at = seg.read_index(d, "77")
    assert (itype, bytes(blob)) == (2, b"payload") and data[at:at + 7] == b"payload"
    seg.remove_index(d, "77")
    assert not (d / "77").exists()


def test_remove_segment_removes_empty_table_dir(tmp_path):
    seg.tables_dir(tmp_path).mkdir(parents=True)
    d = seg.segment_dir(tmp_path, "t", "1")
    seg.write_raw(d, "1", np.ones((1, 2), np.float32), np.arange(1))
    seg.remove_segment(d)
    assert not d.exists() and not d.parent.exists()


def test_read_whole_in_parallel_chunks_is_byte_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(seg, "READ_CHUNK", 1000)  # many chunks on the read pool
    data = np.random.default_rng(3).integers(0, 256, 10_500, dtype=np.uint8)
    path = tmp_path / "blob"
    path.write_bytes(data.tobytes())
    assert np.array_equal(seg.read_whole(path), data)
    nested = seg.submit_read(lambda: seg.read_whole(path)).result()  # on the pool: reads alone
    assert np.array_equal(nested, data)


def test_sized_arrays_are_views_of_one_read_and_reject_truncation(tmp_path):
    d = tmp_path / "s"
    vectors = np.random.default_rng(0).random((50, 4), dtype=np.float32)
    ids = np.arange(50, dtype=np.int64) * 7
    seg.write_raw(d, "9", vectors, ids)
    assert np.array_equal(seg.read_vectors(d, "9", 4, False), vectors)
    assert np.array_equal(seg.read_ids(d, "9"), ids)
    raw = (d / "9.uid").read_bytes()
    (d / "9.uid").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="header says"):
        seg.read_ids(d, "9")


def test_an_index_is_read_in_place_and_keeps_its_buffer(tmp_path):
    import gc

    from labkit.node.engine import SegmentIndex

    x = np.random.default_rng(1).random((2000, 16), dtype=np.float32)
    built = SegmentIndex.build(x, 2, 1, {"nlist": 16})  # IVF_FLAT, L2
    d = tmp_path / "s"
    d.mkdir()
    seg.write_index(d, "5", 2, built.to_bytes())
    _, blob, _ = seg.read_index(d, "5")
    buffer = np.frombuffer(blob.obj, dtype=np.uint8)
    index = SegmentIndex.from_bytes(blob)
    assert np.shares_memory(index._blob, buffer)  # the vectors were not copied out of the file's buffer
    del blob, buffer
    gc.collect()  # the index alone keeps the buffer alive
    q = x[:5]
    for a, b in zip(index.search(q, 3, {"nprobe": 16}), built.search(q, 3, {"nprobe": 16}), strict=True):
        assert np.array_equal(a, b)
    assert index.search(q, 1, {"nprobe": 16})[1][:, 0].tolist() == list(range(5))
