"""Numpy <-> Milvus 1.1 wire messages, with a loop-free decoder for big Insert requests.

Insert is registered with a raw-bytes deserializer (see ``server.py``) so a 100,000 x 128
request (about 52 MB) is never turned into 100,000 protobuf ``RowRecord`` objects.

Wire shape of ``InsertParam`` (milvus.proto): 1 collection_name, 2 row_record_array (repeated
``RowRecord{1 float_data packed float, 2 binary_data bytes}``), 3 row_id_array (packed int64),
4 partition_tag, 5 extra_params. In a well-formed batch every RowRecord has the same length,
hence the same header bytes ``0x12 <len> 0x0a <payload len>`` and the same stride, so the records
are located with one numpy comparison over an (n, stride) view and their payloads copied out in
one go. Anything irregular (ragged rows, empty rows, mixed float/binary) falls back to the
protobuf parser, which then reports the exact problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from labkit.milvus.proto import messages
from labkit.milvus.status import Code, MilvusError

_pb, _status_pb, _ = messages()

_RECORDS_TAG = 0x12  # field 2, wire type 2 (row_record_array)
_FLOAT_TAG = 0x0A  # RowRecord.float_data, packed
_BINARY_TAG = 0x12  # RowRecord.binary_data


@dataclass
class InsertRequest:
    collection_name: str
    partition_tag: str
    vectors: np.ndarray  # float32 (n, dim) or uint8 (n, dim // 8); (0, 0) when empty
    ids: np.ndarray  # int64, empty for auto ids
    extra_params: list = field(default_factory=list)  # KeyValuePair messages
    decode_seconds: float = 0.0
    fast_path: bool = True


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MilvusError(Code.ILLEGAL_ROWRECORD, "Malformed InsertParam: truncated varint.")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MilvusError(Code.ILLEGAL_ROWRECORD, "Malformed InsertParam: varint too long.")


def _skip_field(buf: memoryview, pos: int, wire_type: int) -> int:
    if wire_type == 0:
        return _varint(buf, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire_type == 5:
        return pos + 4
    raise MilvusError(Code.ILLEGAL_ROWRECORD, f"Malformed InsertParam: unsupported wire type {wire_type}.")


def _record_run(data: bytes, buf: memoryview, start: int) -> tuple[np.ndarray, int] | None:
    """Records of identical header from ``start`` on: (payload matrix, end position) or None."""
    body_len, body = _varint(buf, start + 1)
    if body_len == 0 or body + body_len > len(buf):
        return None
    inner_tag = buf[body]
    if inner_tag not in (_FLOAT_TAG, _BINARY_TAG):
        return None
    payload_len, payload = _varint(buf, body + 1)
    if payload + payload_len != body + body_len or payload_len == 0:
        return None  # the record holds more than one field, or an empty one
    if inner_tag == _FLOAT_TAG and payload_len % 4:
        return None
    stride = body + body_len - start
    header = np.frombuffer(data, np.uint8, count=payload - start, offset=start)
    kmax = (len(data) - start) // stride
    rows = np.frombuffer(data, np.uint8, count=kmax * stride, offset=start).reshape(kmax, stride)
    match = (rows[:, : len(header)] == header).all(axis=1)
    n = kmax if match.all() else int(np.argmin(match))
    # one opaque item per record: copying 'V<payload>' items is a memcpy each, far faster than
    # numpy's element-wise copy of an unaligned strided view
    rec = np.dtype([("head", f"V{len(header)}"), ("payload", f"V{payload_len}")])
    raw = np.frombuffer(data, rec, count=n, offset=start)["payload"].copy().view(np.uint8)
    if inner_tag == _FLOAT_TAG:
        return raw.view("<f4").reshape(n, payload_len // 4), start + n * stride
    return raw.reshape(n, payload_len), start + n * stride


def decode_insert(data: bytes) -> InsertRequest:
    """Parse serialized ``InsertParam`` bytes into numpy arrays (fast path, else protobuf)."""
    t0 = time.perf_counter()
    buf = memoryview(data)
    pos, run, other = 0, None, []
    try:
        while pos < len(buf):
            key, nxt = _varint(buf, pos)
            if key == _RECORDS_TAG:
                if run is not None:
                    return _slow_decode(data, t0)  # records not contiguous (or an irregular one)
                found = _record_run(data, buf, pos)
                if found is None:
                    return _slow_decode(data, t0)
                run = found[0]
                pos = found[1]
                continue
            end = _skip_field(buf, nxt, key & 7)
            other.append(data[pos:end])
            pos = end
        if pos != len(buf):
            raise MilvusError(Code.ILLEGAL_ROWRECORD, "Malformed InsertParam: truncated field.")
    except (IndexError, ValueError):
        raise MilvusError(Code.ILLEGAL_ROWRECORD, "Malformed InsertParam message.") from None
    rest = _parse(b"".join(other))
    vectors = run if run is not None else np.zeros((0, 0), np.float32)
    return InsertRequest(
        collection_name=rest.collection_name,
        partition_tag=rest.partition_tag,
        vectors=vectors,
        ids=np.asarray(rest.row_id_array, dtype=np.int64),
        extra_params=list(rest.extra_params),
        decode_seconds=time.perf_counter() - t0,
        fast_path=True,
    )


def _parse(data: bytes):
    try:
        return _pb.InsertParam.FromString(data)
    except Exception as exc:  # google.protobuf.message.DecodeError
        raise MilvusError(Code.ILLEGAL_ROWRECORD, f"Malformed InsertParam message ({exc}).") from None


def _slow_decode(data: bytes, t0: float) -> InsertRequest:
    msg = _parse(data)
    return InsertRequest(
        collection_name=msg.collection_name,
        partition_tag=msg.partition_tag,
        vectors=records_to_array(msg.row_record_array),
        ids=np.asarray(msg.row_id_array, dtype=np.int64),
        extra_params=list(msg.extra_params),
        decode_seconds=time.perf_counter() - t0,
        fast_path=False,
    )


def records_to_array(records) -> np.ndarray:
    """RowRecords (parsed messages) -> float32 (n, dim) or uint8 (n, bytes); ragged/mixed -> 11."""
    n = len(records)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    first = records[0]
    binary = len(first.binary_data) > 0
    width = len(first.binary_data) if binary else len(first.float_data)
    for i, rec in enumerate(records):
        nf, nb = len(rec.float_data), len(rec.binary_data)
        if nf and nb:
            raise MilvusError(Code.ILLEGAL_ROWRECORD, f"Vector {i} carries both float_data and binary_data.")
        if (nb if binary else nf) != width or (nf if binary else nb):
            raise MilvusError(Code.ILLEGAL_ROWRECORD,
                              f"Vectors must all have the same dimension: vector 0 has "
                              f"{width * 8 if binary else width}, vector {i} has "
                              f"{(nb * 8) if nb else nf}." if (nf or nb) else
                              f"Vector {i} is empty. Make sure you have entered vector records.")
    if width == 0:
        raise MilvusError(Code.ILLEGAL_ROWRECORD,
                          "The vector array is empty. Make sure you have entered vector records.")
    if binary:
        return np.frombuffer(b"".join(r.binary_data for r in records), np.uint8).reshape(n, width)
    out = np.empty((n, width), np.float32)
    # a RowRecord holding only float_data serializes as tag 0x0a, the byte length, then the floats
    # (little-endian float32, as numpy reads them): a copy of bytes, not of `width` Python floats
    size = width * 4
    head = 1 + _varint_size(size)
    for i, rec in enumerate(records):
        raw = rec.SerializeToString()
        if len(raw) == head + size and raw[0] == 0x0A:
            out[i] = np.frombuffer(raw, np.float32, width, head)
        else:
            out[i] = rec.float_data
    return out


def _varint_size(n: int) -> int:
    """Bytes of ``n`` as a protobuf varint."""
    return max(1, (n.bit_length() + 6) // 7)


# -- responses -------------------------------------------------------------------------------

def status(code: int = 0, reason: str = ""):
    return _status_pb.Status(error_code=int(code), reason=reason)


def vector_ids(ids: np.ndarray):
    res = _pb.VectorIds(status=status())
    res.vector_id_array.extend(np.asarray(ids, dtype=np.int64).tolist())
    return res
