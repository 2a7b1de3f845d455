"""Write-ahead log of inserts and deletes (rw node): append + fsync before the client is answered.

Files ``<wal_path>/<first_lsn:020d>.wal`` hold records
``header | name | tag | ids (int64) | vectors | crc32`` with header
``magic u32, body_len u32, lsn u64, kind u8, dtype u8, name_len u16, tag_len u16, n u32, row_bytes u32``.
A torn record at the tail (crash mid-append) fails its CRC and is cut off on replay. Files whose
last LSN is at or below the flushed LSN are deleted by ``truncate``.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0x4C574131  # "LWA1"
HEADER = struct.Struct("<IIQBBHHII")
CRC = struct.Struct("<I")
INSERT, DELETE = 1, 2
_DTYPES = {0: np.float32, 1: np.uint8}


@dataclass
class Record:
    lsn: int
    kind: int
    name: str
    tag: str
    ids: np.ndarray
    vectors: np.ndarray | None  # (n, row) for inserts


class Wal:
    def __init__(self, path: str | Path, file_size: int = 256 << 20, ignore_errors: bool = False) -> None:
        self.dir = Path(path)
        self.file_size = file_size
        self.ignore_errors = ignore_errors  # wal.recovery_error_ignore: skip a corrupt file's rest
        self.skipped: list[str] = []  # what replay skipped because of ignore_errors
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._cur: Path | None = None
        self._cur_bytes = 0
        self._last_lsn: dict[Path, int] = {}  # file -> last lsn in it
        self.lsn = 0

    # -- replay --------------------------------------------------------------------------------
    def replay(self, after_lsn: int = 0) -> Iterator[Record]:
        """Yield records with lsn > after_lsn in order; cuts a torn tail. Call before appending.

        A corrupt record before the newest file's tail stops the start (ValueError), unless
        ``ignore_errors``: then the rest of that file is skipped and named in ``skipped``.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lsn = max(self.lsn, after_lsn)
        files = sorted(self.dir.glob("*.wal"))
        for i, path in enumerate(files):
            data = path.read_bytes()
            pos, last = 0, 0
            while pos < len(data):
                rec, end = _decode(data, pos)
                if rec is None:
                    if i != len(files) - 1:
                        if not self.ignore_errors:
                            raise ValueError(f"WAL file {path} is corrupt at byte {pos}; set "
                                             "wal.recovery_error_ignore: true to skip the unreadable records")
                        self.skipped.append(f"{path} from byte {pos}")
                        break
                    with open(path, "r+b") as f:  # torn tail of the newest file: drop it
                        f.truncate(pos)
                        os.fsync(f.fileno())
                    break
                pos, last = end, rec.lsn
                self.lsn = max(self.lsn, rec.lsn)
                if rec.lsn > after_lsn:
                    yield rec
            self._last_lsn[path] = last

    # -- append --------------------------------------------------------------------------------
    def append_insert(self, name: str, tag: str, ids: np.ndarray, vectors: np.ndarray) -> int:
        return self._append(INSERT, name, tag, ids, vectors)

    def append_delete(self, name: str, tag: str, ids: np.ndarray) -> int:
        return self._append(DELETE, name, tag, ids, None)

    def _append(self, kind: int, name: str, tag: str, ids: np.ndarray, vectors: np.ndarray | None) -> int:
        bname, btag = name.encode(), tag.encode()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors is not None:
            vectors = np.ascontiguousarray(vectors)
            dtype = 1 if vectors.dtype == np.uint8 else 0
            row_bytes = vectors.shape[1] * vectors.itemsize
            vbytes = memoryview(vectors).cast("B")
        else:
            dtype, row_bytes, vbytes = 0, 0, memoryview(b"")
        body_len = len(bname) + len(btag) + ids.nbytes + len(vbytes)
        with self._lock:
            lsn = self.lsn + 1
            head = HEADER.pack(MAGIC, body_len, lsn, kind, dtype, len(bname), len(btag), len(ids), row_bytes)
            crc = zlib.crc32(head)
            idb = memoryview(ids).cast("B")
            for part in (bname, btag, idb, vbytes):
                crc = zlib.crc32(part, crc)
            fd = self._writer(body_len + HEADER.size + CRC.size)
            _write_all(fd, [head, bname, btag, idb, vbytes, CRC.pack(crc)])
            os.fsync(fd)
            self.lsn = lsn
            assert self._cur is not None
            self._last_lsn[self._cur] = lsn
            self._cur_bytes += body_len + HEADER.size + CRC.size
            return lsn

    def _writer(self, need: int) -> int:
        if self._fd is not None and self._cur_bytes + need > self.file_size and self._cur_bytes > 0:
            self._close_current()
        if self._fd is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._cur = self.dir / f"{self.lsn + 1:020d}.wal"
            self._fd = os.open(self._cur, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._cur_bytes = os.fstat(self._fd).st_size
            self._last_lsn.setdefault(self._cur, self.lsn)
        return self._fd

    def _close_current(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._cur, self._cur_bytes = None, None, 0

    def truncate(self, upto_lsn: int) -> None:
        """Delete WAL files whose records are all at or below ``upto_lsn`` (flushed)."""
        with self._lock:
            for path, last in sorted(self._last_lsn.items()):
                if last <= upto_lsn:
                    if path == self._cur:
                        self._close_current()
                    path.unlink(missing_ok=True)
                    del self._last_lsn[path]

    def close(self) -> None:
        with self._lock:
            self._close_current()


def _write_all(fd: int, parts: list) -> None:
    buf = b"".join(parts)
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _decode(data: bytes, pos: int) -> tuple[Record | None, int]:
    if pos + HEADER.size > len(data):
        return None, pos
    magic, body_len, lsn, kind, dtype, nlen, tlen, n, row_bytes = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + body_len + CRC.size
    if magic != MAGIC or end > len(data):
        return None, pos
    body = memoryview(data)[pos + HEADER.size : end - CRC.size]
    (crc,) = CRC.unpack_from(data, end - CRC.size)
    if zlib.crc32(body, zlib.crc32(memoryview(data)[pos : pos + HEADER.size])) != crc:
        return None, pos
    p = 0
    name = bytes(body[p : p + nlen]).decode()
    p += nlen
    tag = bytes(body[p : p + tlen]).decode()
    p += tlen
    ids = np.frombuffer(body[p : p + 8 * n], dtype=np.int64).copy()
    p += 8 * n
    vectors = None
    if kind == INSERT:
        dt = _DTYPES[dtype]
        vectors = np.frombuffer(body[p:], dtype=dt).reshape(n, row_bytes // np.dtype(dt).itemsize).copy()
    return Record(lsn, kind, name, tag, ids, vectors), end
