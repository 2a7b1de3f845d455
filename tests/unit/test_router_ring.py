"""The consistent-hash ring: deterministic, balanced enough, few moves when a node joins."""

import pytest

from labkit.router.ring import Ring, moved, plan

FILES = list(range(1000, 1600))


def test_every_file_on_exactly_one_node_and_deterministic():
    nodes = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    a = plan(FILES, nodes)
    assert sorted(int(f) for fs in a.values() for f in fs) == FILES
    assert a == plan(FILES, list(reversed(nodes)))  # order of discovery does not matter
    assert all(len(a[n]) > len(FILES) / 10 for n in nodes)  # each node gets a fair share


def test_adding_a_node_moves_only_files_to_it():
    before = plan(FILES, ["a:1", "b:1"])
    after = plan(FILES, ["a:1", "b:1", "c:1"])
    changes = moved(before, after)
    assert changes and all(new == "c:1" for _, new in changes.values())
    assert len(changes) < len(FILES) * 0.6


def test_removing_a_node_moves_only_its_files():
    before = plan(FILES, ["a:1", "b:1", "c:1"])
    after = plan(FILES, ["a:1", "b:1"])
    changes = moved(before, after)
    assert set(changes) == set(before["c:1"])


def test_points_and_positions_are_plain_data():
    ring = Ring(["a:1", "b:1"])
    pts = ring.points()
    assert len(pts) == 320 and all(0 <= p < 1 for p, _ in pts)
    assert pts == sorted(pts)
    assert 0 <= ring.position(1234) < 1


def test_empty_ring_refuses():
    with pytest.raises(ValueError):
        Ring([]).node_for(1)
    assert Ring([]).points() == []
