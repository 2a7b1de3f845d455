"""The write-ahead log: records round-trip, a torn tail is cut, truncation drops flushed files."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.node.wal import DELETE, INSERT, Wal


def _vecs(n: int, dim: int = 4) -> np.ndarray:
    return np.arange(n * dim, dtype=np.float32).reshape(n, dim)


def test_records_round_trip(tmp_path):
    w = Wal(tmp_path)
    assert list(w.replay()) == []
    l1 = w.append_insert("c", "c", np.array([1, 2], dtype=np.int64), _vecs(2))
    l2 = w.append_delete("c", "", np.array([2], dtype=np.int64))
    l3 = w.append_insert("c", "p", np.array([9], dtype=np.int64), np.full((1, 2), 7, dtype=np.uint8))
    w.close()
    assert (l1, l2, l3) == (1, 2, 3)

    recs = list(Wal(tmp_path).replay())
    assert [r.kind for r in recs] == [INSERT, DELETE, INSERT]
    assert recs[0].ids.tolist() == [1, 2] and np.array_equal(recs[0].vectors, _vecs(2))
    assert recs[1].vectors is None and recs[1].ids.tolist() == [2]
    assert recs[2].tag == "p" and recs[2].vectors.dtype == np.uint8 and recs[2].vectors.shape == (1, 2)


def test_replay_skips_flushed_and_continues_lsn(tmp_path):
    w = Wal(tmp_path)
    for i in range(5):
        w.append_insert("c", "c", np.array([i]), _vecs(1))
    w.close()
    w2 = Wal(tmp_path)
    assert [r.lsn for r in w2.replay(after_lsn=3)] == [4, 5]
    assert w2.append_delete("c", "", np.array([1])) == 6


def test_torn_tail_is_cut(tmp_path):
    w = Wal(tmp_path)
    w.append_insert("c", "c", np.array([1]), _vecs(1))
    w.append_insert("c", "c", np.array([2]), _vecs(1))
    w.close()
    (f,) = tmp_path.glob("*.wal")
    data = f.read_bytes()
    f.write_bytes(data[:-5])  # crash in the middle of the second record
    w2 = Wal(tmp_path)
    assert [r.ids.tolist() for r in w2.replay()] == [[1]]
    assert w2.append_insert("c", "c", np.array([3]), _vecs(1)) == 2
    w2.close()
    assert [r.ids.tolist() for r in Wal(tmp_path).replay()] == [[1], [3]]


def test_corruption_in_an_older_file_is_an_error(tmp_path):
    w = Wal(tmp_path, file_size=64)  # every record rotates to a new file
    for i in range(3):
        w.append_insert("c", "c", np.array([i]), _vecs(1))
    w.close()
    files = sorted(tmp_path.glob("*.wal"))
    assert len(files) == 3
    files[0].write_bytes(files[0].read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="corrupt"):
        list(Wal(tmp_path).replay())
    # wal.recovery_error_ignore: the unreadable record is skipped and named, the rest replays
    w2 = Wal(tmp_path, ignore_errors=True)
    assert [r.ids.tolist() for r in w2.replay()] == [[1], [2]]
    assert len(w2.skipped) == 1 and files[0].name in w2.skipped[0]


def test_truncate_removes_only_flushed_files(tmp_path):
    w = Wal(tmp_path, file_size=64)
    for i in range(4):
        w.append_insert("c", "c", np.array([i]), _vecs(1))
    w.truncate(2)
    assert [r.lsn for r in Wal(tmp_path).replay()] == [3, 4]
    w.truncate(4)  # everything flushed: even the current file goes, the next append starts a new one
    assert list(tmp_path.glob("*.wal")) == []
    assert w.append_delete("c", "", np.array([0])) == 5
    w.close()
    assert [r.lsn for r in Wal(tmp_path).replay()] == [5]
