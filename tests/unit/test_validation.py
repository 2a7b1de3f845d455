"""Milvus 1.1 request rules (ValidationUtil.cpp): codes of the gRPC layer."""

import numpy as np
import pytest

from labkit.milvus.status import Code, MilvusError
from labkit.node import validation as v


def code_of(fn, *args):
    with pytest.raises(MilvusError) as err:
        fn(*args)
    assert err.value.reason
    return err.value.code


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "x" * 256, "ä"])
def test_bad_collection_names(name):
    assert code_of(v.collection_name, name) == Code.ILLEGAL_COLLECTION_NAME


@pytest.mark.parametrize("name", ["_a", "abc_123", "A" * 255])
def test_good_collection_names(name):
    assert v.collection_name(name) == name


def test_dimension_rules():
    assert v.dimension(1, 1) == 1 and v.dimension(32768, 2) == 32768
    assert code_of(v.dimension, 0, 1) == Code.ILLEGAL_DIMENSION
    assert code_of(v.dimension, 32769, 1) == Code.ILLEGAL_DIMENSION
    assert code_of(v.dimension, 12, 3) == Code.ILLEGAL_DIMENSION  # binary: multiple of 8


def test_ranges():
    assert code_of(v.index_file_size, 0) == Code.ILLEGAL_ARGUMENT
    assert code_of(v.index_file_size, 4097) == Code.ILLEGAL_ARGUMENT
    assert code_of(v.metric_type, 0) == Code.ILLEGAL_METRIC_TYPE
    assert code_of(v.metric_type, 8) == Code.ILLEGAL_METRIC_TYPE
    assert code_of(v.topk, 0) == Code.ILLEGAL_TOPK
    assert code_of(v.topk, 16385) == Code.ILLEGAL_TOPK
    assert v.topk(16384) == 16384


def test_vectors():
    ok = np.ones((3, 4), np.float32)
    assert v.vectors(ok, 4, 1) is ok
    assert code_of(v.vectors, np.zeros((0, 4), np.float32), 4, 1) == Code.ILLEGAL_ROWRECORD
    assert code_of(v.vectors, ok, 5, 1) == Code.ILLEGAL_DIMENSION
    bad = ok.copy()
    bad[2, 1] = np.nan
    assert code_of(v.vectors, bad, 4, 1) == Code.ILLEGAL_ROWRECORD
    bad[2, 1] = np.inf
    assert code_of(v.vectors, bad, 4, 1) == Code.ILLEGAL_ROWRECORD
    huge = np.full((2, 2), 3e38, np.float32)  # finite but the sum overflows
    assert v.vectors(huge, 2, 1) is huge
    assert code_of(v.vectors, ok, 32, 3) == Code.ILLEGAL_ROWRECORD  # float data for a binary collection
    assert v.vectors(np.zeros((2, 4), np.uint8), 32, 3).shape == (2, 4)


def test_too_large_insert_is_11():
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1 << 16, 1025), strides=(0, 0))
    assert code_of(v.vectors, big, 1025, 1) == Code.ILLEGAL_ROWRECORD


def test_ids():
    assert v.ids(np.array([], np.int64), 3) is None
    assert code_of(v.ids, np.arange(2), 3) == Code.ILLEGAL_VECTOR_ID
    assert code_of(v.entity_ids, np.arange(1001)) == Code.ILLEGAL_ARGUMENT
    assert code_of(v.entity_ids, np.arange(0)) == Code.ILLEGAL_ARGUMENT
