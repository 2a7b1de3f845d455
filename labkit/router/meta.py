"""What the router reads from the Milvus metadata (MySQL, or sqlite): a collection's searchable files.

A search reads the meta unless the rw node's change messages vouch for the list kept from the
last search (``labkit.router.meta_watch``), so a segment flushed a moment ago is searched: either
the whole file list, or one ``fingerprint`` row that tells whether the list read last time is
still exact (see ``rowhash``). One pymysql connection per worker thread, in autocommit so each read
sees the latest committed rows; at most ``pool_size + max_overflow`` of them query at once, each is
reopened after ``pool_recycle`` seconds and pinged first with ``pre_ping`` (Mishards's SQLAlchemy
pool settings). On sqlite (a single node's ``<storage.path>/db/meta.sqlite``, read-only) the
fingerprint is computed from the rows in Python; ``echo`` logs every query (Mishards's SQL_ECHO).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pymysql

from labkit.milvus import fingerprint as rowhash
from labkit.milvus import tags as partition_tags
from labkit.milvus.enums import SEARCHABLE_SQL
from labkit.milvus.status import MilvusError


@dataclass(frozen=True)
class FileRow:
    id: int  # TableFiles.id: the "file id" of SearchInFiles and ReloadSegments
    table_id: str  # the collection's or partition's table_id
    partition_tag: str  # "" for the collection's own (root, ``_default``) files
    file_type: int
    row_count: int
    updated_time: int  # µs; grows when the rw node rewrites the segment (deletes, index)


@dataclass(frozen=True)
class CollectionFiles:
    name: str
    metric_type: int
    dimension: int
    files: list[FileRow]
    # rowhash of every row the list was made from (all partitions); None when not read whole
    fingerprint: rowhash.Fingerprint | None = field(default=None, compare=False)


_FILES_COLUMNS = rowhash.FILE_LIST_COLUMNS
_FILES_FROM = (
    f"FROM Tables t LEFT JOIN TableFiles f ON f.table_id = t.table_id AND f.file_type IN ({SEARCHABLE_SQL}) "
    "WHERE t.state <> 1 AND (t.table_id = %s OR t.owner_table = %s)"
)
_FILES_SQL = f"SELECT {', '.join(_FILES_COLUMNS)} {_FILES_FROM}"
_FINGERPRINT_SQL = f"SELECT {rowhash.select_sql(_FILES_COLUMNS)} {_FILES_FROM}"


log = logging.getLogger("labkit.router.sql")


class MetaReader:
    """Reads Tables/TableFiles for the router; thread safe (a connection per thread)."""

    def __init__(self, db: dict, echo: bool = False, pool_size: int = 100, max_overflow: int = 0,
                 pool_recycle: float = 0.0, pool_timeout: float = 30.0, pre_ping: bool = False) -> None:
        self.db = dict(db)
        self.sqlite_path: str | None = self.db.pop("sqlite", None)
        self.echo = echo
        self.pool_recycle, self.pool_timeout, self.pre_ping = pool_recycle, pool_timeout, pre_ping
        self.pool_limit = pool_size + max_overflow
        self._slots = threading.BoundedSemaphore(self.pool_limit)
        self._local = threading.local()

    def _conn(self):  # noqa: ANN202 - a pymysql or sqlite3 connection
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.pool_recycle and time.monotonic() - self._local.born > self.pool_recycle:
            self.close()
            conn = None
        if conn is not None and self.pre_ping and self.sqlite_path is None:
            conn.ping(reconnect=True)
        if conn is None:
            if self.sqlite_path is not None:
                conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, check_same_thread=False,
                                       timeout=self.pool_timeout, isolation_level=None)
            else:
                conn = pymysql.connect(autocommit=True, connect_timeout=max(1, int(self.pool_timeout)),
                                       read_timeout=30, **self.db)
            self._local.conn, self._local.born = conn, time.monotonic()
        return conn

    def _query(self, sql: str, args: Sequence) -> list[tuple]:
        if self.sqlite_path is not None:
            sql = sql.replace("%s", "?")
        if self.echo:
            log.info("%s %s", sql, list(args))
        if not self._slots.acquire(timeout=self.pool_timeout):
            raise TimeoutError(f"no metadata connection free after {self.pool_timeout:g} s "
                               f"(SQLALCHEMY_POOL_SIZE + SQLALCHEMY_MAX_OVERFLOW = {self.pool_limit})")
        try:
            for attempt in (0, 1):
                try:
                    cur = self._conn().cursor()
                    try:
                        cur.execute(sql, args)
                        return list(cur.fetchall())
                    finally:
                        cur.close()
                except (pymysql.err.OperationalError, pymysql.err.InterfaceError, sqlite3.OperationalError):
                    # a dropped or closed connection (server restart, idle timeout): reconnect once
                    self.close()
                    if attempt:
                        raise
            return []
        finally:
            self._slots.release()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def collection_files(self, name: str, tags: Sequence[str] = ()) -> CollectionFiles | None:
        """The searchable files of ``name`` (restricted to ``tags``); None if it is unknown or the tags
        resolve to an error (the rw node words it)."""
        rows = self._query(_FILES_SQL, (name, name))
        root = [r for r in rows if r[0] == name and r[1] == ""]
        if not root:
            return None
        metric, dim = int(root[0][3]), int(root[0][4])
        try:
            wanted = set(partition_tags.match(tags, name, [(r[2], r[0]) for r in rows if r[1] == name]))
        except MilvusError:
            return None
        files = [
            FileRow(int(r[5]), r[0], r[2] if r[1] else "", int(r[6]), int(r[7]), int(r[8]))
            for r in rows if r[5] is not None and r[0] in wanted
        ]
        files.sort(key=lambda f: f.id)
        return CollectionFiles(name, metric, dim, files, rowhash.of_rows(rows))

    def fingerprint(self, name: str) -> rowhash.Fingerprint:
        """What ``collection_files(name).fingerprint`` would be now, in one single-row query."""
        if self.sqlite_path is not None:  # no MD5 in sqlite: the same sum from the rows themselves
            return rowhash.of_rows(self._query(_FILES_SQL, (name, name)))
        rows = self._query(_FINGERPRINT_SQL, (name, name))
        return rowhash.of_result(rows[0]) if rows else (0, 0)

    def files_by_id(self, ids: Sequence[int]) -> list[FileRow]:
        """Searchable TableFiles rows with these ids (for SearchInFiles through the router)."""
        if not ids:
            return []
        marks = ", ".join(["%s"] * len(ids))
        rows = self._query(
            "SELECT f.id, f.table_id, t.partition_tag, f.file_type, f.row_count, f.updated_time "
            "FROM TableFiles f LEFT JOIN Tables t ON t.table_id = f.table_id "
            f"WHERE f.id IN ({marks}) AND f.file_type IN ({SEARCHABLE_SQL})", list(ids))
        return [FileRow(int(r[0]), r[1], r[2] or "", int(r[3]), int(r[4]), int(r[5])) for r in rows]
