"""set_config's live keys reach the running parts: engine threads, BLAS threshold, store settings, cache."""

from __future__ import annotations

from types import SimpleNamespace

import faiss

from labkit.node import engine, live
from labkit.node.cache import SegmentCache
from labkit.node.config import NodeConfig, render_server_config
from labkit.node.settings import StoreSettings


def test_live_keys_change_the_running_node(monkeypatch):
    monkeypatch.setattr(engine, "SEARCH_THREADS", engine.SEARCH_THREADS)
    blas = faiss.cvar.distance_compute_blas_threshold
    try:
        cfg = NodeConfig.from_yaml(render_server_config())
        store = SimpleNamespace(settings=StoreSettings(), cache=SegmentCache(1 << 30))
        live.register(cfg, store)
        assert cfg.cli("set_config engine_config.omp_thread_num 2") == "" and engine.SEARCH_THREADS == 2
        assert cfg.cli("set_config engine_config.use_blas_threshold 7") == ""
        assert faiss.cvar.distance_compute_blas_threshold == 7
        assert cfg.cli("set_config cache.cache_size 64m") == ""
        assert store.cache.capacity == 64 << 20 and store.settings.cache_size == 64 << 20
        assert cfg.cli("set_config cache.insert_buffer_size 128m") == ""
        assert store.settings.insert_buffer_size == 128 << 20
        assert cfg.cli("set_config storage.auto_flush_interval 5") == ""
        assert store.settings.auto_flush_interval == 5
        assert cfg.cli("set_config cache.cache_insert_data true") == "" and store.settings.cache_insert_data
        assert cfg.restart_required is False
    finally:
        faiss.cvar.distance_compute_blas_threshold = blas
