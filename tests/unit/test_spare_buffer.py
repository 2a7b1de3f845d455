"""The read buffer prepared ahead of a large read: handed out once, only when its size fits."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.node import spare_buffer as sb

MB = 1 << 20


@pytest.fixture(autouse=True)
def no_spare():
    sb._spare, sb._pending = None, None
    yield
    sb._spare, sb._pending = None, None


def now(fn):
    fn()


def test_a_prepared_buffer_is_taken_once():
    sb.prepare(10 * MB, now)
    spare = sb._spare
    assert spare is not None and spare.size == 10 * MB
    first = sb.take(10 * MB)
    assert np.shares_memory(first, spare) and first.size == 10 * MB
    second = sb.take(10 * MB)
    assert not np.shares_memory(second, spare)  # never handed out twice


def test_only_a_fitting_spare_is_used():
    sb.prepare(10 * MB, now)
    spare = sb._spare
    assert not np.shares_memory(sb.take(11 * MB), spare)  # too small
    assert not np.shares_memory(sb.take(9 * MB), spare)  # more than 1/16 larger: not kept alive for less
    got = sb.take(10 * MB - 1000)
    assert np.shares_memory(got, spare) and got.size == 10 * MB - 1000


def test_small_and_huge_reads_prepare_nothing():
    calls = []
    sb.prepare(sb.MIN_BYTES - 1, calls.append)
    sb.prepare(sb.MAX_BYTES + 1, calls.append)
    assert calls == [] and sb._spare is None


def test_one_preparation_per_size_at_a_time():
    queued = []
    sb.prepare(10 * MB, queued.append)
    sb.prepare(10 * MB, queued.append)  # already on its way
    assert len(queued) == 1
    queued[0]()
    sb.prepare(10 * MB, queued.append)  # a spare of that size is there
    assert len(queued) == 1
    sb.prepare(20 * MB, queued.append)  # a newer size replaces it
    queued[1]()
    assert sb._spare.size == 20 * MB and sb._pending is None
