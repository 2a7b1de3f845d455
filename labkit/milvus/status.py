"""Milvus 1.1 status codes (status.proto ErrorCode) and the exception that carries one to the wire."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    SUCCESS = 0
    UNEXPECTED_ERROR = 1
    CONNECT_FAILED = 2
    PERMISSION_DENIED = 3
    COLLECTION_NOT_EXISTS = 4
    ILLEGAL_ARGUMENT = 5
    ILLEGAL_RANGE = 6  # not in status.proto; pymilvus types.py and Mishards use it
    ILLEGAL_DIMENSION = 7
    ILLEGAL_INDEX_TYPE = 8
    ILLEGAL_COLLECTION_NAME = 9
    ILLEGAL_TOPK = 10
    ILLEGAL_ROWRECORD = 11
    ILLEGAL_VECTOR_ID = 12
    ILLEGAL_SEARCH_RESULT = 13
    FILE_NOT_FOUND = 14
    META_FAILED = 15
    CACHE_FAILED = 16
    CANNOT_CREATE_FOLDER = 17
    CANNOT_CREATE_FILE = 18
    CANNOT_DELETE_FOLDER = 19
    CANNOT_DELETE_FILE = 20
    BUILD_INDEX_ERROR = 21
    ILLEGAL_NLIST = 22
    ILLEGAL_METRIC_TYPE = 23
    OUT_OF_MEMORY = 24


class MilvusError(Exception):
    """Raised anywhere in the node; the gRPC layer turns it into ``Status{error_code, reason}``."""

    def __init__(self, code: Code | int, reason: str) -> None:
        super().__init__(reason)
        self.code = Code(code) if code in Code._value2member_map_ else Code.UNEXPECTED_ERROR
        self.reason = reason

    def __repr__(self) -> str:
        return f"MilvusError({self.code.name}, {self.reason!r})"
