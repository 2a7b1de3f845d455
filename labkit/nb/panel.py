"""The cluster status panel used in notebooks 03 and 04.

The data comes from pure functions that return plain lists and dicts (tested directly);
``cluster_panel`` only lays them out with ipywidgets and wires a refresh button. Its
text/plain form is the same data as aligned text, which is what a headless papermill
run (``--log-output``) prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from labkit.nb.figures import files_per_node
from labkit.nb.show import html_table, text_table

SERVICE_COLUMNS = ["name", "kind", "address", "pid", "healthy", "detail"]
NODE_COLUMNS = ["name", "role", "address", "pid", "mount"]


def _as_dict(item: Any) -> dict[str, Any]:
    if is_dataclass(item):
        return asdict(item)
    if hasattr(item, "as_dict"):
        return item.as_dict()
    return dict(item)


def service_rows(statuses: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per service status (ServiceStatus or dict), sorted storage first, then nodes, router."""
    order = {"mysql": 0, "redis": 1, "objectstore": 2, "juicefs": 3, "mount": 4, "node": 5, "router": 6}
    rows = []
    for st in statuses:
        d = _as_dict(st)
        rows.append({
            "name": d.get("name", ""),
            "kind": d.get("kind", ""),
            "address": d.get("address", ""),
            "pid": d.get("pid"),
            "healthy": "yes" if d.get("healthy") else "NO",
            "detail": d.get("detail", ""),
        })
    return sorted(rows, key=lambda r: (order.get(r["kind"], 9), r["name"]))


def node_rows(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lab nodes from state records (``LabState.services()``): kind "node" only, rw first."""
    rows = []
    for name, rec in records.items():
        if rec.get("kind") != "node":
            continue
        rows.append({
            "name": rec.get("name", name),
            "role": rec.get("role", ""),
            "address": f"{rec.get('host', '127.0.0.1')}:{rec.get('port', '')}",
            "pid": rec.get("pid"),
            "mount": str(rec.get("mount", "")),
        })
    return sorted(rows, key=lambda r: (r["role"] != "rw", r["name"]))


def segment_rows(file_map: Mapping[Any, str], nodes: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Segments (TableFiles rows) each node searches, from a map file id -> node name."""
    counts = files_per_node(file_map, list(nodes))
    return [{"node": n, "segments": c} for n, c in counts.items()]


def panel_data(statuses: Iterable[Any], records: Mapping[str, Mapping[str, Any]],
               file_map: Mapping[Any, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Everything the panel shows, as plain data."""
    nodes = node_rows(records)
    return {
        "services": service_rows(statuses),
        "nodes": nodes,
        "segments": segment_rows(file_map or {}, [n["name"] for n in nodes]) if file_map is not None else [],
    }


def panel_text(data: Mapping[str, list[dict[str, Any]]]) -> str:
    """The panel as plain text (headless runs, CI logs)."""
    parts = ["Services", text_table(data["services"], SERVICE_COLUMNS), "", "Nodes",
             text_table(data["nodes"], NODE_COLUMNS)]
    if data.get("segments"):
        parts += ["", "Segments per node", text_table(data["segments"], ["node", "segments"])]
    return "\n".join(parts)


def panel_html(data: Mapping[str, list[dict[str, Any]]]) -> str:
    parts = ["<b>Services</b>", html_table(data["services"], SERVICE_COLUMNS), "<b>Nodes</b>",
             html_table(data["nodes"], NODE_COLUMNS)]
    if data.get("segments"):
        parts += ["<b>Segments per node</b>", html_table(data["segments"], ["node", "segments"])]
    return "".join(parts)


def lab_panel_data(lab: Any, file_map: Callable[[], Mapping[Any, str]] | None = None) -> dict[str, Any]:
    """``panel_data`` for a running Lab (reads its status now; ``file_map`` is called if given)."""
    return panel_data(lab.status(), lab.state.services(), file_map() if file_map else None)


def cluster_panel(lab: Any, file_map: Callable[[], Mapping[Any, str]] | None = None) -> Any:
    """An ipywidgets panel (services, nodes, segments per node, Refresh button).

    Under papermill the widget cannot render; its text/plain fallback carries the same tables.
    """
    import ipywidgets as w

    data = lab_panel_data(lab, file_map)
    body = w.HTML(panel_html(data))
    button = w.Button(description="Refresh", icon="refresh")
    stamp = w.HTML(_read_at())
    for widget, name in ((body, "body"), (button, "refresh"), (stamp, "stamp")):
        widget.add_class(f"labkit-panel-{name}")  # stable handles for the browser test
    panel = _Panel([button, stamp, body])
    panel.text = panel_text(data)
    panel.data = data

    def refresh(_: Any = None) -> None:
        fresh = lab_panel_data(lab, file_map)
        body.value, panel.text, panel.data = panel_html(fresh), panel_text(fresh), fresh
        stamp.value = _read_at()

    button.on_click(refresh)
    panel.refresh = refresh
    return panel


def _read_at() -> str:
    return f"&nbsp;read at {datetime.now().strftime('%H:%M:%S.%f')[:-3]}"


def _panel_class() -> type:
    import ipywidgets as w

    class Panel(w.VBox):
        """A VBox whose plain-text form is the status tables rather than ``VBox(...)``."""

        text = ""
        data: dict[str, Any] = {}

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs)
            if isinstance(bundle, tuple):
                bundle[0]["text/plain"] = self.text
            elif isinstance(bundle, dict):
                bundle["text/plain"] = self.text
            return bundle

        def __repr__(self) -> str:
            return self.text

    return Panel


def _Panel(children: list[Any]) -> Any:  # noqa: N802 - reads like the class it builds
    global _PANEL_CLASS
    if _PANEL_CLASS is None:
        _PANEL_CLASS = _panel_class()
    return _PANEL_CLASS(children)


_PANEL_CLASS: type | None = None
