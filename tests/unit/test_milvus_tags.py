"""The one partition-tag matcher (labkit.milvus.tags): Milvus 1.1's rules as pure logic."""

import pytest

from labkit.milvus import tags
from labkit.milvus.status import Code, MilvusError

PARTS = [("2021-01", "p1"), ("2021-02", "p2"), ("x", "p3"), ("(", "p4")]


def _error(tag_list):
    with pytest.raises(MilvusError) as err:
        tags.match(tag_list, "c", PARTS)
    return err.value.code, err.value.reason


def test_no_tags_is_the_collection_and_every_partition():
    assert tags.match([], "c", PARTS) == ["c", "p1", "p2", "p3", "p4"]


def test_default_is_the_collection_only():
    assert tags.match(["_default"], "c", PARTS) == ["c"]
    assert tags.match([" _default "], "c", PARTS) == ["c"]  # trimmed, as 1.1 does


def test_tags_are_full_match_regexes_and_a_union():
    assert tags.match(["2021-.*"], "c", PARTS) == ["p1", "p2"]
    assert tags.match(["x", "_default"], "c", PARTS) == ["c", "p3"]  # the root first
    assert tags.match(["x", "missing"], "c", PARTS) == ["p3"]  # an unmatched tag beside a match is no error
    assert _error(["2021"]) == (Code.UNEXPECTED_ERROR, tags.NOT_FOUND)  # a prefix is not a match


def test_regexes_never_select_the_collection_itself():
    assert tags.match([".*"], "c", PARTS) == ["p1", "p2", "p3", "p4"]
    with pytest.raises(MilvusError):
        tags.match(["_def.*"], "c", [("a", "pa")])


def test_an_invalid_regex_matches_only_the_equal_tag():
    assert tags.match(["("], "c", PARTS) == ["p4"]
    with pytest.raises(MilvusError) as err:
        tags.match(["("], "c", PARTS[:3])
    assert err.value.code == Code.UNEXPECTED_ERROR


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256])
def test_empty_or_long_tags_are_refused(bad):
    assert _error([bad])[0] == Code.UNEXPECTED_ERROR
    assert tags.valid_tag(" a b ") == "a b"
