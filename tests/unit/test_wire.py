"""The Insert decoder: fast path on well-formed batches, exact errors on irregular ones."""

import numpy as np
import pytest
from milvus.client.prepare import Prepare

from labkit.milvus.status import Code, MilvusError
from labkit.node import wire


def _bytes(records, ids=None, tag="p1", name="c1"):
    return Prepare.insert_param(name, records, tag, ids=ids).SerializeToString()


@pytest.mark.parametrize("dim", [1, 3, 16, 128, 1000])
def test_float_fast_path_matches(dim):
    x = np.random.default_rng(dim).random((257, dim), dtype=np.float32)
    req = wire.decode_insert(_bytes(x.tolist(), ids=list(range(257))))
    assert req.fast_path
    assert req.collection_name == "c1" and req.partition_tag == "p1"
    np.testing.assert_array_equal(req.vectors, x)
    np.testing.assert_array_equal(req.ids, np.arange(257))
    assert req.vectors.dtype == np.float32 and req.vectors.flags.c_contiguous


def test_binary_fast_path():
    x = np.random.default_rng(1).integers(0, 256, (50, 16), dtype=np.uint8)
    req = wire.decode_insert(_bytes([bytes(r) for r in x]))
    assert req.fast_path and req.vectors.dtype == np.uint8
    np.testing.assert_array_equal(req.vectors, x)
    assert req.ids.size == 0


def test_ragged_rows_rejected_with_11():
    with pytest.raises(MilvusError) as err:
        wire.decode_insert(_bytes([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0, 3.0]]))
    assert err.value.code == Code.ILLEGAL_ROWRECORD
    assert "vector 2 has 3" in err.value.reason


def test_empty_row_rejected():
    with pytest.raises(MilvusError) as err:
        wire.decode_insert(_bytes([[1.0, 2.0], []]))
    assert err.value.code == Code.ILLEGAL_ROWRECORD


def test_no_rows_gives_empty_array():
    req = wire.decode_insert(_bytes([]))
    assert req.vectors.size == 0


def test_garbage_is_11():
    with pytest.raises(MilvusError) as err:
        wire.decode_insert(b"\x12\xff\xff\xff")
    assert err.value.code == Code.ILLEGAL_ROWRECORD
