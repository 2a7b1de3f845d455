"""The router's own counters, pushed to a Prometheus Pushgateway every second (labkit; Mishards has none).

Each counter ``name`` of the router becomes the gauge ``mishards_<name>`` under job ``mishards``
and ``instance=<bind>:<port>``, so one Pushgateway shows the router beside the nodes' Milvus metrics.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import push_to_gateway

from labkit.milvus.periodic import Periodic

log = logging.getLogger("labkit.router.metrics")
JOB = "mishards"


class RouterPusher:
    def __init__(self, snapshot: Callable[[], dict[str, int]], gateway: str, instance: str,
                 interval: float = 1.0) -> None:
        self.snapshot, self.gateway, self.interval = snapshot, gateway, interval
        self.grouping = {"instance": instance}
        self.registry = CollectorRegistry()
        self._gauges: dict[str, Gauge] = {}
        self._timer = Periodic(self.push_once, interval, "router-metrics")
        self.pushes = 0

    def push_once(self) -> None:
        for name, value in self.snapshot().items():
            metric = "mishards_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)
            gauge = self._gauges.get(metric)
            if gauge is None:
                gauge = self._gauges[metric] = Gauge(metric, f"router counter {name}", registry=self.registry)
            gauge.set(value)
        try:
            push_to_gateway(self.gateway, job=JOB, registry=self.registry, grouping_key=self.grouping,
                            timeout=2)
            self.pushes += 1
        except OSError as exc:
            log.warning("pushing router counters to %s failed: %s", self.gateway, exc)

    def start(self) -> RouterPusher:
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.stop()
