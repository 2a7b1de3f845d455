"""The partition tags of a search, resolved as Milvus 1.1 resolves them.

Milvus 1.1 (``ValidationUtil::ValidatePartitionTags`` then ``DBImpl::GetPartitionsByTags``):
each tag is trimmed of blanks and must not be empty or longer than 255 characters. An empty
list searches the collection and every partition. Otherwise the tags are a union: ``_default``
is the collection's own table; any other tag selects each partition whose tag equals it or
fully matches it as a regular expression (an invalid expression matches nothing; the
collection's own table is not among the partitions). Only when no table is selected at all
is the search refused, with UNEXPECTED_ERROR: 1.1's DB_PARTITION_NOT_FOUND has no gRPC code
of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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


def _matches(ptag: str, tag: str) -> bool:
    if ptag == tag:
        return True
    try:
        return re.fullmatch(tag, ptag) is not None
    except re.error:
        return False


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
