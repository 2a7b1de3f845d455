"""The partition tags of a search, resolved as Milvus 1.1 resolves them.

Milvus 1.1 (``ValidationUtil::ValidatePartitionTags`` then ``DBImpl::GetPartitionsByTags``):
each tag is trimmed of blanks and must not be empty or longer than 255 characters. An empty
list searches the collection and every partition. Otherwise the tags are a union: ``_default``
is the collection's own table; any other tag selects each partition whose tag equals it or
fully matches it as a regular expression (an invalid expression matches nothing; the
collection's own table is not among the partitions). Expressions run on RE2, whose time is linear
in the tag's length: a backtracking engine takes exponential time on patterns such as
``(a|aa)+`` against a long tag. The few constructs RE2 cannot run in linear time (backreferences,
lookaround) are refused with ILLEGAL_ARGUMENT. Only when no table is selected at all
is the search refused, with UNEXPECTED_ERROR: 1.1's DB_PARTITION_NOT_FOUND has no gRPC code
of its own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

import re2

from labkit.milvus.defaults import DEFAULT_TAG, NAME_LIMIT
from labkit.milvus.status import Code, MilvusError

NOT_FOUND = "The specified partition does not exist"


def valid_tag(tag: str) -> str:
    """``tag`` trimmed; empty or over 255 characters -> UNEXPECTED_ERROR (as 1.1)."""
    valid = tag.strip()
    if not valid:
        raise MilvusError(Code.UNEXPECTED_ERROR,
                          f"Invalid partition tag: {tag!r}. Partition tag should not be empty.")
    if len(valid) > NAME_LIMIT:
        raise MilvusError(Code.UNEXPECTED_ERROR,
                          f"Invalid partition tag: {valid[:40]}... Partition tag exceed max length(255).")
    return valid


def valid_tags(tags: Iterable[str]) -> list[str]:
    return [valid_tag(t) for t in tags]


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is the user's, not a server error to log
_RE2_OPTIONS.max_mem = 8 << 20  # bounds the compiled automaton of a huge repetition


@functools.lru_cache(maxsize=512)
def _pattern(tag: str):  # noqa: ANN202 - an re2 pattern, or None
    """``tag`` compiled for linear-time matching; None if it is no valid regular expression."""
    try:
        return re2.compile(tag, _RE2_OPTIONS)
    except re2.error:
        pass
    try:
        re.compile(tag)
    except re.error:
        return None  # invalid: matches only the equal tag, as in 1.1
    raise MilvusError(Code.ILLEGAL_ARGUMENT,
                      f"Partition tag pattern {tag[:60]!r} uses backreferences or lookaround, which "
                      "cannot be matched in linear time; use a plain tag or a simpler expression.")


def _matches(ptag: str, tag: str) -> bool:
    if ptag == tag:
        return True
    pattern = _pattern(tag)
    return pattern is not None and pattern.fullmatch(ptag) is not None


def match(tags: Sequence[str], root: str, partitions: Iterable[tuple[str, str]]) -> list[str]:
    """table_ids a search of ``tags`` reads, ``root`` (the collection's own table) first.

    ``partitions`` are the collection's ``(partition_tag, table_id)`` pairs, without the root.
    Raises ``MilvusError`` for an invalid tag or when nothing matches.
    """
    parts = [(ptag, table_id) for ptag, table_id in partitions if table_id != root]
    if not tags:
        return [root, *dict.fromkeys(t for _, t in parts)]
    chosen: dict[str, None] = {}
    for tag in valid_tags(tags):
        if tag == DEFAULT_TAG:
            chosen[root] = None
            continue
        chosen.update((table_id, None) for ptag, table_id in parts if _matches(ptag, tag))
    if not chosen:
        raise MilvusError(Code.UNEXPECTED_ERROR, NOT_FOUND)
    return sorted(chosen, key=lambda t: t != root)
