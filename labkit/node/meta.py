"""Milvus 1.1 metadata: the Tables / TableFiles / Environment / Fields tables, on MySQL or sqlite.

Column names and types follow ``MySQLMetaImpl.cpp`` (sqlite: ``SqliteMetaImpl.cpp``) so Mishards,
and anyone with a MySQL client, read the same rows a real 1.1 node writes. Ids and timestamps are
microseconds (ids: µs·1000 + sequence). One connection per Meta, guarded by a lock; MySQL runs in
autocommit so a read-only node sees the writer's rows on its next query.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from labkit.milvus import fingerprint
from labkit.milvus.defaults import VERSION
from labkit.milvus.enums import SEARCHABLE, SEARCHABLE_SQL, FileType
from labkit.milvus.status import Code, MilvusError
from labkit.node.meta_watch import CHANGES_FILE_LISTS

NEW, RAW, TO_INDEX, INDEX, TO_DELETE, NEW_MERGE, NEW_INDEX, BACKUP = FileType  # TableFiles.file_type
TABLE_NORMAL, TABLE_TO_DELETE = 0, 1
FLAG_AUTO_ID, FLAG_USER_ID = 1, 2

_MYSQL_SCHEMA = {
    "Environment": "global_lsn BIGINT NOT NULL",
    "Tables": (
        "id BIGINT PRIMARY KEY AUTO_INCREMENT, table_id VARCHAR(255) UNIQUE NOT NULL, state INT NOT NULL, "
        "dimension SMALLINT NOT NULL, created_on BIGINT NOT NULL, flag BIGINT DEFAULT 0 NOT NULL, "
        "index_file_size BIGINT DEFAULT 1024 NOT NULL, engine_type INT DEFAULT 1 NOT NULL, "
        "index_params VARCHAR(512) NOT NULL, metric_type INT DEFAULT 1 NOT NULL, "
        "owner_table VARCHAR(255) NOT NULL, partition_tag VARCHAR(255) NOT NULL, "
        f"version VARCHAR(64) DEFAULT '{VERSION}', flush_lsn BIGINT DEFAULT 0 NOT NULL"
    ),
    "TableFiles": (
        "id BIGINT PRIMARY KEY AUTO_INCREMENT, table_id VARCHAR(255) NOT NULL, "
        "segment_id VARCHAR(255) NOT NULL, "
        "engine_type INT DEFAULT 1 NOT NULL, file_id VARCHAR(255) NOT NULL, "
        "file_type INT DEFAULT 0 NOT NULL, "
        "file_size BIGINT DEFAULT 0 NOT NULL, row_count BIGINT DEFAULT 0 NOT NULL, "
        "updated_time BIGINT NOT NULL, "
        "created_on BIGINT NOT NULL, date INT DEFAULT -1 NOT NULL, flush_lsn BIGINT DEFAULT 0 NOT NULL"
    ),
    "Fields": (
        "collection_id VARCHAR(255) NOT NULL, field_name VARCHAR(255) NOT NULL, "
        "field_type INT DEFAULT 0 NOT NULL, field_params VARCHAR(255) NOT NULL"
    ),
}

# Collection and partition names are case-sensitive, as on sqlite and in the node's storage paths:
# with MySQL's default case-insensitive collation, `casea` would find, insert into and drop `CaseA`
_NAME_COLLATION = "utf8mb4_bin"
_MYSQL_TABLE_OPTIONS = f" DEFAULT CHARSET=utf8mb4 COLLATE={_NAME_COLLATION}"

_SQLITE_SCHEMA = {
    "Environment": "global_lsn INTEGER DEFAULT (0) NOT NULL",
    "Tables": (
        "id INTEGER PRIMARY KEY NOT NULL, table_id TEXT UNIQUE NOT NULL, state INTEGER NOT NULL, "
        "dimension INTEGER NOT NULL, created_on INTEGER NOT NULL, flag INTEGER DEFAULT (0) NOT NULL, "
        "index_file_size INTEGER NOT NULL, engine_type INTEGER NOT NULL, index_params TEXT NOT NULL, "
        "metric_type INTEGER NOT NULL, owner_table TEXT DEFAULT ('') NOT NULL, "
        f"partition_tag TEXT DEFAULT ('') NOT NULL, version TEXT DEFAULT ('{VERSION}') NOT NULL, "
        "flush_lsn INTEGER NOT NULL"
    ),
    "TableFiles": (
        "id INTEGER PRIMARY KEY NOT NULL, table_id TEXT NOT NULL, segment_id TEXT DEFAULT ('') NOT NULL, "
        "engine_type INTEGER NOT NULL, file_id TEXT NOT NULL, file_type INTEGER NOT NULL, "
        "file_size INTEGER DEFAULT (0) NOT NULL, row_count INTEGER DEFAULT (0) NOT NULL, "
        "updated_time INTEGER NOT NULL, created_on INTEGER NOT NULL, date INTEGER NOT NULL, "
        "flush_lsn INTEGER NOT NULL"
    ),
    "Fields": (
        "collection_id TEXT NOT NULL, field_name TEXT NOT NULL, field_type INTEGER NOT NULL, "
        "field_params TEXT NOT NULL"
    ),
}

_TABLE_COLS = (
    "table_id state dimension created_on flag index_file_size engine_type index_params metric_type "
    "owner_table partition_tag version flush_lsn"
).split()
_FILE_COLS = (
    "table_id segment_id engine_type file_id file_type file_size row_count updated_time created_on date "
    "flush_lsn"
).split()


# What a search reads in one query: Tables columns as they are, TableFiles columns as f_<name> (both
# tables have id, table_id, engine_type). Few columns: pymysql decodes every field in Python.
SEARCH_TABLE_COLS = ("id", "table_id", "state", "dimension", "index_file_size", "engine_type", "index_params",
                     "metric_type", "owner_table", "partition_tag")
SEARCH_FILE_COLS = ("id", "table_id", "segment_id", "engine_type", "file_id", "file_type", "file_size",
                    "row_count", "updated_time")
SEARCH_EXPRS = [f"t.{c}" for c in SEARCH_TABLE_COLS] + [f"f.{c}" for c in SEARCH_FILE_COLS]
SEARCH_KEYS = [*SEARCH_TABLE_COLS, *(f"f_{c}" for c in SEARCH_FILE_COLS)]
_SEARCH_SELECT = ", ".join(f"{e} AS {k}" for e, k in zip(SEARCH_EXPRS, SEARCH_KEYS, strict=True))
_SEARCH_FROM = (
    "FROM Tables t LEFT JOIN TableFiles f ON f.table_id = t.table_id "
    f"AND f.file_type IN ({SEARCHABLE_SQL}) "
    "WHERE t.state <> %s AND (t.table_id = %s OR t.owner_table = %s)"
)


def search_rows_fingerprint(rows: list[dict]) -> fingerprint.Fingerprint:
    """The fingerprint ``Meta.search_fingerprint`` gives for these ``search_rows``, computed in Python."""
    return fingerprint.of_rows([r[k] for k in SEARCH_KEYS] for r in rows)


def now_us() -> int:
    return time.time_ns() // 1000


# MySQL errors after which the statement provably did not take effect: rolled back (lock wait
# timeout, deadlock), or never sent (cannot connect, server gone away while sending)
_ROLLED_BACK_MYSQL = {1205, 1213}
_NOT_SENT_MYSQL = {2003, 2006}
# errors that leave the connection unusable: lost mid-query (the statement may have run), killed,
# server shutting down, closed for inactivity
_CONNECTION_MYSQL = _NOT_SENT_MYSQL | {2013, 2055, 1053, 1927, 4031}
# statements that give the same result when run twice (UPDATEs here set absolute values)
_IDEMPOTENT_SQL = ("SELECT", "SHOW", "UPDATE", "DELETE", "CREATE TABLE IF NOT EXISTS",
                   "CREATE DATABASE IF NOT EXISTS")

class IdGenerator:
    """Milvus' SafeIDGenerator: µs·1000 + sequence, strictly increasing within the process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def take(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive ids and return the first."""
        with self._lock:
            first = max(now_us() * 1000, self._last + 1)
            self._last = first + n - 1
            return first


ids = IdGenerator()


class Meta:
    """Thin data access to the four 1.1 tables; rows are dicts keyed by column name."""

    def __init__(self, uri: str, storage_path: str | Path) -> None:
        self.uri = uri
        self._lock = threading.RLock()
        # called after each committed statement that changes Tables or TableFiles, with the lock held
        # (the rw node tells its routers: labkit.node.meta_watch)
        self.on_change: Callable[[], None] | None = None
        parsed = urlparse(uri)
        self.dialect = parsed.scheme.lower()
        if self.dialect == "sqlite":
            path = Path(storage_path) / "db" / "meta.sqlite"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn: Any = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                              timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        elif self.dialect == "mysql":
            self._mysql = {
                "host": parsed.hostname or "127.0.0.1",
                "port": parsed.port or 3306,
                "user": unquote(parsed.username or "root"),
                "password": unquote(parsed.password or ""),
                "database": (parsed.path or "/milvus").lstrip("/") or "milvus",
            }
            self._conn = self._connect_mysql()
        else:
            raise MilvusError(Code.META_FAILED,
                              f"meta_uri must start with mysql:// or sqlite://, not {uri!r}")

    def _connect_mysql(self) -> Any:
        import pymysql

        params = dict(self._mysql)
        db = params.pop("database")
        try:
            # bounded waits: a hung server must not hold the connection lock for ever
            conn = pymysql.connect(**params, autocommit=True, charset="utf8mb4", connect_timeout=5,
                                   read_timeout=60, write_timeout=60)
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}`")
            conn.select_db(db)
        except pymysql.MySQLError as exc:
            self._conn = None
            raise MilvusError(
                Code.META_FAILED,
                f"cannot connect to MySQL meta at {params['host']}:{params['port']}: {exc}",
            ) from exc
        return conn

    # -- plumbing -----------------------------------------------------------------------------
    def _exec(self, sql: str, args: Sequence[Any] = (), fetch: bool = False) -> Any:
        """Run one statement (``%s`` placeholders) and return rows (fetch) or lastrowid."""
        with self._lock:
            if self.dialect == "sqlite":
                cur = self._conn.execute(sql.replace("%s", "?"), tuple(args))
                if fetch:
                    cols = [c[0] for c in cur.description]
                    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
                out = cur.lastrowid
            else:
                out = self._exec_mysql(sql, args, fetch, retry=True)
            if not fetch and self.on_change is not None and CHANGES_FILE_LISTS.match(sql):
                self.on_change()
            return out

    def _exec_mysql(self, sql: str, args: Sequence[Any], fetch: bool, retry: bool) -> Any:
        """One statement on the shared connection, reconnecting after any connection error.

        A dead connection (server restarted, killed, timed out) is dropped and the next call
        opens a new one, so the node answers again as soon as MySQL does. The statement is run
        again once when that cannot apply it twice: it never reached the server, it was rolled
        back, or it is idempotent. An INSERT whose connection died mid-query may have committed,
        so that one is reported instead.
        """
        import pymysql

        try:
            if self._conn is None:
                self._conn = self._connect_mysql()
            with self._conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(sql, tuple(args))
                return list(cur.fetchall()) if fetch else cur.lastrowid
        except MilvusError:
            raise  # cannot connect: nothing was sent
        except (pymysql.err.InterfaceError, pymysql.err.OperationalError) as exc:
            # InterfaceError: the connection was already closed, so the statement was not sent
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            not_sent = isinstance(exc, pymysql.err.InterfaceError) or code in _NOT_SENT_MYSQL
            if isinstance(exc, pymysql.err.InterfaceError) or code in _CONNECTION_MYSQL:
                self._drop_connection()
            elif code not in _ROLLED_BACK_MYSQL:
                raise MilvusError(Code.META_FAILED, f"MySQL meta error: {exc}") from exc
            safe = not_sent or code in _ROLLED_BACK_MYSQL or sql.lstrip().upper().startswith(_IDEMPOTENT_SQL)
            if not retry or not safe:
                raise MilvusError(Code.META_FAILED, f"MySQL meta error: {exc}") from exc
            return self._exec_mysql(sql, args, fetch, retry=False)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is fine
                pass

    def reachable(self, wait: float = 1.0) -> bool:
        """Whether the metadata database answers right now (``SELECT 1``).

        When another thread holds the connection longer than ``wait`` s, the answer is whether
        a connection is open at all.
        """
        if self.dialect == "sqlite":
            return True
        if not self._lock.acquire(timeout=wait):
            return self._conn is not None
        try:
            self._exec_mysql("SELECT 1", (), True, retry=True)
            return True
        except MilvusError:
            return False
        finally:
            self._lock.release()

    def create_schema(self) -> None:
        """Create the four tables if missing (as ``MySQLMetaImpl::Initialize`` does)."""
        schema = _SQLITE_SCHEMA if self.dialect == "sqlite" else _MYSQL_SCHEMA
        for name, cols in schema.items():
            options = _MYSQL_TABLE_OPTIONS if self.dialect == "mysql" else ""
            self._exec(f"CREATE TABLE IF NOT EXISTS {name} ({cols}){options}")
        if self.dialect == "mysql":
            self._binary_names()
        if not self._exec("SELECT global_lsn FROM Environment", fetch=True):
            self._exec("INSERT INTO Environment (global_lsn) VALUES (0)")

    def _binary_names(self) -> None:
        """Tables made before names compared case-sensitively get the binary collation too."""
        rows = self._exec("SELECT TABLE_NAME AS name, TABLE_COLLATION AS coll FROM information_schema.TABLES "
                          "WHERE TABLE_SCHEMA = DATABASE()", fetch=True)
        for row in rows:
            if row["name"] in _MYSQL_SCHEMA and row["coll"] != _NAME_COLLATION:
                self._exec(f"ALTER TABLE {row['name']} CONVERT TO CHARACTER SET utf8mb4 "
                           f"COLLATE {_NAME_COLLATION}")

    def close(self) -> None:
        with self._lock:
            if self.dialect == "sqlite":
                self._conn.close()
            else:
                self._drop_connection()

    # -- Environment --------------------------------------------------------------------------
    def global_lsn(self) -> int:
        rows = self._exec("SELECT global_lsn FROM Environment", fetch=True)
        return int(rows[0]["global_lsn"]) if rows else 0

    def set_global_lsn(self, lsn: int) -> None:
        self._exec("UPDATE Environment SET global_lsn = %s", (int(lsn),))

    # -- Tables -------------------------------------------------------------------------------
    def insert_table(self, **row: Any) -> int:
        row.setdefault("state", TABLE_NORMAL)
        row.setdefault("created_on", now_us())
        row.setdefault("flag", 0)
        row.setdefault("engine_type", 1)
        row.setdefault("index_params", "{}")
        row.setdefault("metric_type", 1)
        row.setdefault("owner_table", "")
        row.setdefault("partition_tag", "")
        row.setdefault("version", VERSION)
        row.setdefault("flush_lsn", 0)
        if isinstance(row["index_params"], dict):
            row["index_params"] = json.dumps(row["index_params"])
        cols = [c for c in _TABLE_COLS if c in row]
        sql = f"INSERT INTO Tables ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
        try:
            return int(self._exec(sql, [row[c] for c in cols]))
        except Exception as exc:  # unique table_id: another node (or a race) created it first
            if "UNIQUE" in str(exc) or "Duplicate" in str(exc):
                raise MilvusError(Code.ILLEGAL_COLLECTION_NAME,
                                  f"Collection {row['table_id']} already exists") from exc
            raise

    def table(self, table_id: str) -> dict | None:
        """The live (state NORMAL) row with this table_id, or None."""
        rows = self._exec("SELECT * FROM Tables WHERE table_id = %s AND state <> %s",
                          (table_id, TABLE_TO_DELETE), fetch=True)
        return rows[0] if rows else None

    def collections(self) -> list[dict]:
        return self._exec("SELECT * FROM Tables WHERE owner_table = '' AND state <> %s ORDER BY id",
                          (TABLE_TO_DELETE,), fetch=True)

    def partitions(self, owner: str) -> list[dict]:
        return self._exec(
            "SELECT * FROM Tables WHERE owner_table = %s AND state <> %s ORDER BY id",
            (owner, TABLE_TO_DELETE), fetch=True,
        )

    def update_table(self, table_id: str, **fields: Any) -> None:
        if "index_params" in fields and isinstance(fields["index_params"], dict):
            fields["index_params"] = json.dumps(fields["index_params"])
        sets = ", ".join(f"{k} = %s" for k in fields)
        self._exec(f"UPDATE Tables SET {sets} WHERE table_id = %s", [*fields.values(), table_id])

    def delete_tables(self, table_ids: Iterable[str]) -> None:
        tids = list(table_ids)
        if tids:
            self._exec(f"DELETE FROM Tables WHERE table_id IN ({', '.join(['%s'] * len(tids))})", tids)

    # -- TableFiles ---------------------------------------------------------------------------
    def insert_file(self, **row: Any) -> int:
        t = now_us()
        row.setdefault("updated_time", t)
        row.setdefault("created_on", t)
        row.setdefault("date", -1)
        row.setdefault("flush_lsn", 0)
        row.setdefault("engine_type", 1)
        row.setdefault("segment_id", row["file_id"])
        cols = [c for c in _FILE_COLS if c in row]
        sql = f"INSERT INTO TableFiles ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
        return int(self._exec(sql, [row[c] for c in cols]))

    def files(self, table_ids: Sequence[str], types: Sequence[int] = SEARCHABLE) -> list[dict]:
        if not table_ids or not types:
            return []
        sql = (
            f"SELECT * FROM TableFiles WHERE table_id IN ({', '.join(['%s'] * len(table_ids))}) "
            f"AND file_type IN ({', '.join(['%s'] * len(types))}) ORDER BY id"
        )
        return self._exec(sql, [*table_ids, *types], fetch=True)

    def files_by_id(self, file_ids: Sequence[int]) -> list[dict]:
        if not file_ids:
            return []
        return self._exec(
            f"SELECT * FROM TableFiles WHERE id IN ({', '.join(['%s'] * len(file_ids))}) ORDER BY id",
            [int(i) for i in file_ids],
            fetch=True,
        )

    def change_marker(self) -> tuple:
        """One cheap row that changes whenever a TableFiles row is added, updated or removed.

        Every write of a file row sets updated_time (or adds/removes a row), so a reader that
        polls this sees a new segment as soon as its row is committed, without reading the rows.
        """
        rows = self._exec("SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last_id, "
                          "COALESCE(MAX(updated_time), 0) AS last_update, "
                          "COALESCE(SUM(file_type), 0) AS types "
                          "FROM TableFiles", fetch=True)
        r = rows[0]
        return int(r["n"]), int(r["last_id"]), int(r["last_update"]), int(r["types"])

    def searchable_files(self) -> list[dict]:
        """Every searchable file of a live collection or partition, in one query, newest first.

        TableFiles columns plus its table's ``metric_type``, ``dimension`` and ``collection`` (the
        owner's name for a partition's file): what a ro node needs to load it.
        """
        types = ", ".join(str(int(t)) for t in SEARCHABLE)
        return self._exec(
            "SELECT f.*, t.metric_type, t.dimension, "
            "CASE WHEN t.owner_table = '' THEN t.table_id ELSE t.owner_table END AS collection "
            "FROM TableFiles f JOIN Tables t ON t.table_id = f.table_id "
            f"WHERE f.file_type IN ({types}) AND t.state <> %s ORDER BY f.id DESC",
            (TABLE_TO_DELETE,), fetch=True)

    def files_of_type(self, types: Sequence[int]) -> list[dict]:
        return self._exec(
            f"SELECT * FROM TableFiles WHERE file_type IN ({', '.join(['%s'] * len(types))}) ORDER BY id",
            list(types), fetch=True,
        )

    def update_files(self, file_ids: Sequence[int], **fields: Any) -> None:
        """Update rows by TableFiles.id; updated_time is bumped (Mishards watches it)."""
        if not file_ids:
            return
        fields.setdefault("updated_time", now_us())
        sets = ", ".join(f"{k} = %s" for k in fields)
        self._exec(
            f"UPDATE TableFiles SET {sets} WHERE id IN ({', '.join(['%s'] * len(file_ids))})",
            [*fields.values(), *[int(i) for i in file_ids]],
        )

    def set_file_types(self, types: dict[int, int]) -> None:
        """Change several rows' file_type in ONE statement, so a reader (ro node, Mishards) sees
        either the old or the new set of searchable files, never both or neither."""
        if not types:
            return
        ids = [int(i) for i in types]
        case = " ".join("WHEN %s THEN %s" for _ in ids)
        args: list[Any] = [v for i in ids for v in (i, int(types[i]))]
        self._exec(
            f"UPDATE TableFiles SET file_type = CASE id {case} END, updated_time = %s "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))})",
            [*args, now_us(), *ids],
        )

    def delete_files(self, file_ids: Sequence[int]) -> None:
        if file_ids:
            self._exec(f"DELETE FROM TableFiles WHERE id IN ({', '.join(['%s'] * len(file_ids))})",
                       [int(i) for i in file_ids])

    # -- search -------------------------------------------------------------------------------
    def search_rows(self, name: str) -> list[dict]:
        """The collection's and its partitions' Tables rows, each joined with its searchable files.

        Keys are ``SEARCH_KEYS`` (file columns as ``f_<name>``, None for a table without files),
        ordered by Tables.id then TableFiles.id. [] when the collection does not exist.
        """
        args = [TABLE_TO_DELETE, name, name]
        return self._exec(f"SELECT {_SEARCH_SELECT} {_SEARCH_FROM} ORDER BY t.id, f.id", args, fetch=True)

    def search_fingerprint(self, name: str) -> fingerprint.Fingerprint | None:
        """MySQL only: the fingerprint of the rows ``search_rows(name)`` would return, read as one row."""
        args = [TABLE_TO_DELETE, name, name]
        rows = self._exec(f"SELECT {fingerprint.select_sql(SEARCH_EXPRS)} {_SEARCH_FROM}", args, fetch=True)
        return fingerprint.of_result(rows[0]) if rows else None

    def transaction(self) -> threading.RLock:
        """Hold the connection lock across several statements (no other thread interleaves)."""
        return self._lock
