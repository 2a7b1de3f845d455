"""What a search reads from the metadata: a ``SearchSnapshot`` of one collection, kept between searches.

One query (``Meta.search_rows``) gives the collection row, its partitions and every searchable file,
instead of four: the meta connection is pure-Python pymysql behind a lock, and each query cost about
as much as a small search. On MySQL the last snapshot of each collection is kept and reused while one
``Meta.search_fingerprint`` query finds the same rows in the meta, so they are not read and decoded
again; a flush, merge, delete or drop changes the rows and so the fingerprint.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from labkit.milvus.defaults import DEFAULT_TAG
from labkit.milvus.fingerprint import FILE_LIST_COLUMNS, Fingerprint, of_rows
from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m

MEMO_MAX = 256  # kept snapshots per node


@dataclass(frozen=True)
class SearchSnapshot:
    """One collection as a search sees it: its Tables row, partitions and searchable files.

    ``files`` are TableFiles rows (``meta.SEARCH_FILE_COLS``) of every partition, ordered by id.
    ``fingerprint`` is the meta fingerprint of the rows it was built from (None on sqlite);
    ``file_list`` the fingerprint the router computes for the same rows (``FILE_LIST_COLUMNS``).
    """

    name: str
    collection: dict
    parts: list[tuple[str, str]]  # (tag, table_id), the collection itself first as _default
    files: list[dict]
    fingerprint: Fingerprint | None = None
    file_list: Fingerprint | None = None

    @property
    def dim(self) -> int:
        return int(self.collection["dimension"])

    @property
    def metric(self) -> int:
        return int(self.collection["metric_type"])

    @property
    def index_type(self) -> int:
        return int(self.collection["engine_type"])

    @functools.cached_property
    def file_ids(self) -> frozenset[int]:
        return frozenset(int(f["id"]) for f in self.files)

    def files_of(self, table_ids: set[str]) -> list[dict]:
        return [f for f in self.files if f["table_id"] in table_ids]

    def files_by_id(self, file_ids: list[int]) -> list[dict]:
        """The files with these TableFiles ids; FILE_NOT_FOUND names any that are not searchable here."""
        keep = {int(i) for i in file_ids}
        files = [f for f in self.files if int(f["id"]) in keep]
        missing = sorted(keep - {int(f["id"]) for f in files})
        if missing:
            raise MilvusError(Code.FILE_NOT_FOUND,
                              f"Files {missing} are not searchable files of collection {self.name}")
        return files


def snapshot_from_rows(name: str, rows: list[dict],
                       fingerprint: Fingerprint | None = None) -> SearchSnapshot | None:
    """Build the snapshot from ``Meta.search_rows(name)``; None when the collection row is absent."""
    root = next((r for r in rows if r["table_id"] == name and not r["owner_table"]), None)
    if root is None:
        return None
    coll = {k: root[k] for k in m.SEARCH_TABLE_COLS}
    parts = [(DEFAULT_TAG, name)]
    files: list[dict] = []
    for r in rows:
        if r["owner_table"] == name and (r["partition_tag"], r["table_id"]) not in parts:
            parts.append((r["partition_tag"], r["table_id"]))
        if r["f_id"] is not None and (r["table_id"] == name or r["owner_table"] == name):
            files.append({c: r[f"f_{c}"] for c in m.SEARCH_FILE_COLS})
    files.sort(key=lambda f: int(f["id"]))
    return SearchSnapshot(name, coll, parts, files, fingerprint, file_list_fingerprint(rows))


def file_list_fingerprint(rows: list[dict]) -> Fingerprint:
    """The router's fingerprint (``fingerprint.FILE_LIST_COLUMNS``) of these ``Meta.search_rows``."""
    keys = [c.replace("t.", "", 1) if c.startswith("t.") else "f_" + c[2:] for c in FILE_LIST_COLUMNS]
    return of_rows([r[k] for k in keys] for r in rows)


class SnapshotReader:
    """Reads ``SearchSnapshot``s and, on MySQL, keeps the last one of each collection.

    ``missing(name)`` raises the store's COLLECTION_NOT_EXISTS error when the collection is gone.
    """

    def __init__(self, meta: m.Meta, missing: Callable[[str], object]) -> None:
        self.meta = meta
        self.missing = missing
        self.keep = meta.dialect == "mysql"
        self._kept: dict[str, SearchSnapshot] = {}
        self._lock = threading.Lock()
        # kept: no query; checked: kept after a fingerprint query; read: rows read again
        self.counts = {"kept": 0, "checked": 0, "read": 0}

    def read(self, name: str) -> SearchSnapshot:
        """The collection's snapshot: the kept one while its rows are unchanged, else fresh from the meta."""
        kept = self._kept.get(name) if self.keep else None
        if kept is not None and self.meta.search_fingerprint(name) == kept.fingerprint:
            self._count("checked")
            return kept
        self._count("read")
        for _attempt in (0, 1):
            rows = self.meta.search_rows(name)
            snap = snapshot_from_rows(name, rows, m.search_rows_fingerprint(rows) if self.keep else None)
            if snap is not None:
                break
            self.forget(name)
            self.missing(name)  # raises COLLECTION_NOT_EXISTS with the usual wording
        else:
            raise MilvusError(Code.COLLECTION_NOT_EXISTS, f"Collection {name} does not exist.")
        if self.keep:
            with self._lock:
                if len(self._kept) >= MEMO_MAX:
                    self._kept.clear()
                self._kept[name] = snap
        return snap

    def read_for_files(self, name: str, file_ids: list[int], file_list: Fingerprint | None) -> SearchSnapshot:
        """For SearchInFiles: the kept snapshot, without a meta read, when the router's file list
        (its fingerprint ``file_list``, sent with the request) is the one the snapshot was built
        from and lists every one of ``file_ids``; else ``read``.

        The router checks its list against MySQL for each search, so the node need not: one
        metadata read per routed search instead of one per node.
        """
        kept = self._kept.get(name) if self.keep else None
        if kept is not None and file_list is not None and kept.file_list == file_list and file_ids:
            known = kept.file_ids
            if all(int(i) in known for i in file_ids):
                self._count("kept")
                return kept
        return self.read(name)

    def _count(self, how: str) -> None:
        with self._lock:
            self.counts[how] += 1

    def count_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def forget(self, name: str) -> None:
        with self._lock:
            self._kept.pop(name, None)
