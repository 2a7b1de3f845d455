"""A fingerprint of a set of metadata rows, computed alike by MySQL and by Python.

Used to validate a cached file list with one cheap query: MySQL returns a single row
``(COUNT(*), SUM(h(row)))`` instead of every row (pymysql decodes each field in Python, which
cost more than the search on small collections), and the cached list is reused only when its
own fingerprint, computed in Python from the rows it was read as, is equal. ``h`` is the first
60 bits of the MD5 of the row's columns joined by U+001F (CONCAT_WS skips NULLs, so does
``of_rows``); sums are exact (DECIMAL), so the order of rows does not matter.

The node (``labkit.node.store``) uses it too; it depends on nothing else in the router.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

SEP = "\x1f"
Fingerprint = tuple[int, int]

# The router's file list of a collection: these columns of ``Tables t LEFT JOIN TableFiles f`` (the
# collection and its partitions, searchable files). The router sends the list's fingerprint with
# each SearchInFiles (a ``KeyValuePair`` FILE_LIST_KEY in the SearchParam's extra_params), and a
# read node whose kept snapshot has the same fingerprint searches without reading the meta: the
# router has just checked these rows against MySQL.
FILE_LIST_COLUMNS = ("t.table_id", "t.owner_table", "t.partition_tag", "t.metric_type", "t.dimension",
                     "f.id", "f.file_type", "f.row_count", "f.updated_time", "t.engine_type")
FILE_LIST_KEY = "labkit_file_list"


def as_text(fp: Fingerprint) -> str:
    return f"{fp[0]}:{fp[1]}"


def from_text(text: str) -> Fingerprint | None:
    """``as_text``'s inverse; None for anything else."""
    n, _, total = text.partition(":")
    return (int(n), int(total)) if n.isdigit() and total.isdigit() else None


def select_sql(columns: Sequence[str]) -> str:
    """The SELECT list that fingerprints the rows of ``columns`` (SQL expressions) in MySQL."""
    row = f"CONCAT_WS(CHAR(31 USING utf8mb4), {', '.join(columns)})"
    return f"COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTR(MD5({row}), 1, 15), 16, 10) AS UNSIGNED)), 0)"


def of_rows(rows: Iterable[Sequence]) -> Fingerprint:
    """The same fingerprint from rows already read (values in ``columns`` order)."""
    n = total = 0
    for row in rows:
        text = SEP.join(str(v) for v in row if v is not None)
        total += int(hashlib.md5(text.encode()).hexdigest()[:15], 16)
        n += 1
    return n, total


def of_result(row: Sequence) -> Fingerprint:
    """``(count, sum)`` from the one row ``select_sql`` returns (a tuple or a dict's values)."""
    values = list(row.values()) if isinstance(row, dict) else list(row)
    return int(values[0]), int(values[1])
