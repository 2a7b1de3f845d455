"""What ``set_config`` changes at once on a running node (1.1's in-service config callbacks).

cache.cache_size resizes the segment cache (evicting the least recently used segments),
cache.insert_buffer_size / cache.cache_insert_data / storage.auto_flush_interval change what the
store reads on its next insert or flush tick, engine_config.omp_thread_num sets the search threads
and engine_config.use_blas_threshold faiss's BLAS switch-over. Other keys are saved for the next
start (the config reports ``restart_required``).
"""

from __future__ import annotations

import os
from typing import Any

import faiss

from labkit.node import config_rules as rules
from labkit.node import engine
from labkit.node.config import NodeConfig


def apply_engine_config(config: NodeConfig) -> None:
    """OpenMP threads per search (0 = the lab's default, see engine.SEARCH_THREADS) and the BLAS threshold."""
    omp = int(config.get("engine_config", "omp_thread_num"))
    engine.SEARCH_THREADS = omp if omp > 0 else int(os.environ.get("LABKIT_SEARCH_THREADS", "1"))
    faiss.cvar.distance_compute_blas_threshold = int(config.get("engine_config", "use_blas_threshold"))


def register(config: NodeConfig, store: Any) -> None:
    """Hook the live keys of ``config`` to ``store`` (a started Store)."""

    def cache_size(_s: str, _k: str, value: str) -> None:
        store.cache.resize(rules.parse_bytes(value))
        store.settings.cache_size = rules.parse_bytes(value)

    def insert_buffer(_s: str, _k: str, value: str) -> None:
        store.settings.insert_buffer_size = rules.parse_bytes(value)

    def cache_insert_data(_s: str, _k: str, value: str) -> None:
        store.settings.cache_insert_data = rules.to_bool(value)

    def flush_interval(_s: str, _k: str, value: str) -> None:
        store.settings.auto_flush_interval = float(value)

    def engine_keys(_s: str, _k: str, _v: str) -> None:
        apply_engine_config(config)

    config.on_change("cache.cache_size", cache_size)
    config.on_change("cache.insert_buffer_size", insert_buffer)
    config.on_change("cache.cache_insert_data", cache_insert_data)
    config.on_change("storage.auto_flush_interval", flush_interval)
    config.on_change("engine_config.omp_thread_num", engine_keys)
    config.on_change("engine_config.use_blas_threshold", engine_keys)
