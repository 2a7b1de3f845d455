"""Milvus metrics as a notebook shows them: what the lab's Pushgateway holds for each node.

    from labkit.nb.metrics import node_metrics, metrics_table
    print(metrics_table(node_metrics(lab)))

Values are exactly what the nodes pushed (Milvus 1.1 family names); nothing is computed here
beyond picking the families and summing a family's samples per node when asked.
"""

from __future__ import annotations

from typing import Any

# a few families worth a glance: requests, their time, the cache, the process
FAMILIES = ("add_vectors_request_total", "search_request_total", "search_request_duration_microsecond_sum",
            "search_request_duration_microsecond_count", "cache_usage_bytes", "RAM_usage_percent",
            "keeping_alive_seconds_total")


def node_metrics(lab: Any = None, families: tuple[str, ...] = FAMILIES) -> list[dict[str, Any]]:
    """One row per (node instance, family, labels): ``{"instance", "metric", "labels", "value"}``.

    ``lab`` is a ``Lab`` (or None for the default lab home); the Pushgateway must be running
    (``cluster.start_pushgateway(lab)``, and nodes started with ``metrics=True``).
    """
    from labkit.errors import LabError
    from labkit.lab.services.base import get_service
    from labkit.lab.services.pushgateway import parse_metrics

    gateway = get_service("pushgateway", "local", state=getattr(lab, "state", None))
    if not gateway.record.get("port"):
        raise LabError("No Pushgateway is recorded for this lab; start one with "
                       "cluster.start_pushgateway(lab) and start nodes with metrics=True.")
    samples = parse_metrics(gateway.scrape())
    rows = []
    for name in families:
        for labels, value in samples.get(name, []):
            if labels.get("job") != "milvus_metrics":
                continue
            extra = {k: v for k, v in labels.items() if k not in {"job", "instance"}}
            rows.append({"instance": labels.get("instance", "?"), "metric": name, "labels": extra,
                         "value": value})
    return sorted(rows, key=lambda r: (r["instance"], r["metric"], sorted(r["labels"].items())))


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table (one line per sample)."""
    if not rows:
        return "(no metrics pushed yet: nodes push every second once started with metrics=True)"
    lines = [f"{'node':<22} {'metric':<44} {'labels':<20} {'value':>14}"]
    for r in rows:
        labels = ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))
        lines.append(f"{r['instance']:<22} {r['metric']:<44} {labels:<20} {r['value']:>14.6g}")
    return "\n".join(lines)
