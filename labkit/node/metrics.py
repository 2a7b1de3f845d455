"""Milvus 1.1's Prometheus metrics, pushed to a Pushgateway every second when ``metric.enable`` is true.

Family names, labels and units are 1.1's (core/src/metrics/prometheus/PrometheusMetrics.h): the push
goes to job ``milvus_metrics`` with the grouping label ``instance=<hostname>:<bind.port>``, as 1.1's
``prometheus::Gateway``. The families the lab node has data for are filled; durations are in
microseconds where 1.1's names say so.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.exposition import push_to_gateway

from labkit.milvus.periodic import Periodic

log = logging.getLogger("labkit.node.metrics")

JOB = "milvus_metrics"
PUSH_INTERVAL = 1.0  # seconds, as 1.1's MetricCollector loop


class NodeMetrics:
    """The node's registry; ``observe_*`` are cheap and thread-safe (prometheus_client locks)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.add_vectors_request = Counter("add_vectors_request", "the number of vectors added", ["outcome"],
                                           registry=r)
        self.add_vector_duration = Histogram(
            "add_vector_duration_microseconds", "average time of adding every vector", registry=r,
            buckets=(0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.08, 0.1, 0.5, 1))
        self.add_vectors = Gauge("add_vectors", "current added vectors", ["outcome"], registry=r)
        self.search_request = Counter("search_request", "the number of search request", ["outcome"],
                                      registry=r)
        self.search_duration = Histogram("search_request_duration_microsecond",
                                         "histogram of processing time for each search", registry=r,
                                         buckets=(0.1, 1.0, 10.0))
        self.query_response = Summary("query_response_summary", "query response summary", registry=r)
        self.query_vector_response = Summary("query_vector_response_summary",
                                             "query each vector response summary", registry=r)
        self.build_index_duration = Histogram("build_index_duration_microseconds",
                                              "histogram of processing time for building index", registry=r,
                                              buckets=(5e5, 2e6, 4e6, 6e6, 8e6, 1e7))
        self.cache_usage = Gauge("cache_usage_bytes", "current cache usage by bytes", registry=r)
        self.cache_access = Counter("cache_access", "the count of accessing cache ", registry=r)
        self.data_file_size = Gauge("data_file_size_bytes", "data file size by bytes", registry=r)
        self.cpu = Gauge("CPU_usage_percent", "CPU usage percent by this this process", ["CPU"], registry=r)
        self.ram = Gauge("RAM_usage_percent", "RAM usage percent by this process", registry=r)
        self.connections = Gauge("connection_number", "the number of connections", registry=r)
        self.alive = Counter("keeping_alive_seconds", "total seconds of the serve alive", registry=r)

    def observe_rpc(self, name: str, seconds: float, ok: bool, rows: int = 0) -> None:
        """One finished RPC (Insert / Search* are the ones 1.1 counts)."""
        outcome = "success" if ok else "fail"
        if name == "Insert":
            self.add_vectors_request.labels(outcome).inc(max(rows, 1) if ok else 1)
            self.add_vectors.labels(outcome).set(rows)
            if ok and rows:
                self.add_vector_duration.observe(seconds * 1e6 / rows)
        elif name in ("Search", "SearchInFiles", "SearchByID"):
            self.search_request.labels(outcome).inc()
            self.search_duration.observe(seconds * 1e6)
            self.query_response.observe(seconds * 1e3)
            if ok and rows:
                self.query_vector_response.observe(seconds * 1e3 / rows)
        elif name == "CreateIndex" and ok:
            self.build_index_duration.observe(seconds * 1e6)


class Pusher:
    """Refresh the process gauges and push the registry every ``interval`` seconds until stopped."""

    def __init__(self, metrics: NodeMetrics, address: str, port: int, server_port: int,
                 sample: Callable[[NodeMetrics], None] | None = None,
                 interval: float = PUSH_INTERVAL) -> None:
        self.metrics = metrics
        self.gateway = f"{address}:{port}"
        self.grouping = {"instance": f"{socket.gethostname()}:{server_port}"}
        self.sample = sample
        self.interval = interval
        self.pushes = 0
        self.last_error: str | None = None
        self._last = time.monotonic()
        self._timer = Periodic(self._tick, interval, "metrics-push", at_start=True)

    def start(self) -> Pusher:
        self._last = time.monotonic()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.stop()

    def push_once(self) -> None:
        self._refresh()
        try:
            push_to_gateway(self.gateway, job=JOB, registry=self.metrics.registry, grouping_key=self.grouping,
                            timeout=2)
        except OSError as exc:  # URLError is an OSError
            if self.last_error is None:
                log.warning("Metrics pushgateway failed: %s (%s)", self.gateway, exc)
            self.last_error = str(exc)
            return
        if self.last_error is not None:
            log.info("Metrics pushgateway %s reachable again", self.gateway)
        self.last_error = None
        self.pushes += 1

    def _refresh(self) -> None:
        m = self.metrics
        try:
            import psutil

            proc = psutil.Process(os.getpid())
            m.cpu.labels("avg").set(proc.cpu_percent(interval=None))
            m.ram.set(proc.memory_percent())
        except Exception:  # noqa: BLE001 - process gauges are best effort
            pass
        if self.sample is not None:
            try:
                self.sample(m)
            except Exception:  # noqa: BLE001 - a failing sampler must not stop the pushes
                log.exception("metrics sampler failed")

    def _tick(self) -> None:
        now = time.monotonic()
        self.metrics.alive.inc(now - self._last)
        self._last = now
        self.push_once()


def sampler_for(store: Any) -> Callable[[NodeMetrics], None]:
    """Gauges read from the store each push: cache bytes and the data files under storage.path."""

    def sample(m: NodeMetrics) -> None:
        cache = getattr(store, "cache", None)
        if cache is not None:
            m.cache_usage.set(cache.bytes())
    return sample
