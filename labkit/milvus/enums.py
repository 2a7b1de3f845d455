"""Milvus 1.1 enumerations shared by node and router: file types, index and metric types."""

from __future__ import annotations

from enum import IntEnum


class FileType(IntEnum):
    """TableFiles.file_type (MetaTypes.h)."""

    NEW = 0
    RAW = 1
    TO_INDEX = 2
    INDEX = 3
    TO_DELETE = 4
    NEW_MERGE = 5
    NEW_INDEX = 6
    BACKUP = 7


# The only file types a search reads.
SEARCHABLE: tuple[int, ...] = (FileType.RAW, FileType.TO_INDEX, FileType.INDEX)
SEARCHABLE_SQL = ", ".join(str(int(t)) for t in SEARCHABLE)  # for ``file_type IN (...)``


class IndexType(IntEnum):
    FLAT = 1
    IVF_FLAT = 2
    IVF_SQ8 = 3
    RNSG = 4
    IVF_SQ8H = 5
    IVF_PQ = 6
    HNSW = 11
    ANNOY = 12


# The index names get_collection_stats reports per segment.
INDEX_NAMES: dict[int, str] = {1: "IDMAP", 2: "IVFFLAT", 3: "IVFSQ8", 4: "NSG", 5: "IVFSQ8H", 6: "PQ",
                               11: "HNSW", 12: "ANNOY"}


# The index names of 1.1's REST API (web_impl/Constants.h), which pymilvus's HTTP handler sends.
REST_INDEX_NAMES: dict[int, str] = {1: "FLAT", 2: "IVFFLAT", 3: "IVFSQ8", 4: "RNSG", 5: "IVFSQ8H", 6: "IVFPQ",
                                    11: "HNSW", 12: "ANNOY"}


class MetricType(IntEnum):
    L2 = 1
    IP = 2
    HAMMING = 3
    JACCARD = 4
    TANIMOTO = 5
    SUBSTRUCTURE = 6
    SUPERSTRUCTURE = 7


BINARY_METRICS = frozenset({MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO,
                            MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE})


def is_binary(metric: int) -> bool:
    """Binary metrics (HAMMING..SUPERSTRUCTURE) take packed uint8 vectors (``binary_data``)."""
    return int(metric) in BINARY_METRICS


def larger_is_better(metric: int) -> bool:
    """IP ranks large scores first; every other metric ranks small distances first."""
    return int(metric) == MetricType.IP
