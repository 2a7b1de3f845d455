"""What the data layer (Store) needs from server_config.yaml, already parsed and in bytes/seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StoreSettings:
    role: str = "rw"  # "rw" | "ro"; a non-cluster (cluster.enable false) node behaves as "rw"
    cluster: bool = False  # cluster.enable
    meta_uri: str = "sqlite://:@:/"  # general.meta_uri: mysql://user:pass@host:port/db or sqlite://:@:/
    storage_path: str = "/var/lib/milvus"  # storage.path; data root is <storage_path>/db
    auto_flush_interval: float = 1.0  # storage.auto_flush_interval, seconds; 0 = off
    file_cleanup_timeout: float = 10.0  # storage.file_cleanup_timeout, seconds
    wal_enable: bool = True
    wal_path: str = "/var/lib/milvus/wal"
    wal_buffer_size: int = 256 << 20  # bytes
    cache_size: int = 4 << 30  # cache.cache_size, bytes (LRU of loaded segments)
    insert_buffer_size: int = 1 << 30  # cache.insert_buffer_size, bytes (flush when full)
    preload_collection: str = ""  # cache.preload_collection: names loaded at start ("*" = all)
    cache_insert_data: bool = False  # cache.cache_insert_data: a flushed segment goes straight into the cache
    wal_recovery_error_ignore: bool = True  # wal.recovery_error_ignore: skip an unreadable WAL tail at start
    # Beyond Milvus 1.1 (opt-in, default off): a ro node polls the metadata and loads newly
    # flushed segments before a query asks for them.
    preload: bool = False
    preload_interval: float = 0.01  # seconds between checks of the meta change marker (a one-row query)
