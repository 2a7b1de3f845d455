"""The cluster panel's data functions (pure) and its headless text fallback."""

from __future__ import annotations

from labkit.lab.services.base import ServiceStatus
from labkit.nb import panel

STATUSES = [
    ServiceStatus("router", "router", "local", "127.0.0.1:19530", 40, True, "Mishards role"),
    ServiceStatus("mysql", "mysql", "local", "127.0.0.1:3306", 10, True, "accepting logins"),
    ServiceStatus("ro1", "node", "local", "127.0.0.1:19534", 31, False, "not answering"),
    {"name": "mount-rw", "kind": "mount", "address": "/x/rw/jfs", "pid": 20, "healthy": True},
]
RECORDS = {
    "mysql": {"name": "mysql", "kind": "mysql", "port": 3306},
    "ro1": {"name": "ro1", "kind": "node", "role": "ro", "host": "127.0.0.1", "port": 19534, "pid": 31,
            "mount": "/x/ro1/jfs"},
    "rw": {"name": "rw", "kind": "node", "role": "rw", "host": "127.0.0.1", "port": 19533, "pid": 30,
           "mount": "/x/rw/jfs"},
}


def test_service_rows_order_and_health() -> None:
    rows = panel.service_rows(STATUSES)
    assert [r["name"] for r in rows] == ["mysql", "mount-rw", "ro1", "router"]
    assert {r["name"]: r["healthy"] for r in rows}["ro1"] == "NO"
    assert set(rows[0]) == set(panel.SERVICE_COLUMNS)


def test_node_rows_rw_first_and_only_nodes() -> None:
    rows = panel.node_rows(RECORDS)
    assert [r["name"] for r in rows] == ["rw", "ro1"]
    assert rows[0]["address"] == "127.0.0.1:19533"


def test_segment_rows_counts_zero_for_idle_nodes() -> None:
    rows = panel.segment_rows({1: "ro1", 2: "ro1", 3: "ro2"}, ["rw", "ro1", "ro2"])
    assert rows == [{"node": "rw", "segments": 0}, {"node": "ro1", "segments": 2},
                    {"node": "ro2", "segments": 1}]


def test_panel_text_has_every_section() -> None:
    data = panel.panel_data(STATUSES, RECORDS, {7: "ro1"})
    text = panel.panel_text(data)
    for word in ("Services", "Nodes", "Segments per node", "router", "19533"):
        assert word in text
    assert "Segments" not in panel.panel_text(panel.panel_data(STATUSES, RECORDS))


class _FakeLab:
    """Stand-in for Lab in a unit test: status() and state.services() only."""

    def __init__(self) -> None:
        self.calls = 0

        class _State:
            def services(_self):  # noqa: N805
                return RECORDS

        self.state = _State()

    def status(self):
        self.calls += 1
        return STATUSES[: self.calls]


def test_cluster_panel_text_fallback_and_refresh() -> None:
    lab = _FakeLab()
    box = panel.cluster_panel(lab)
    bundle = box._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == box.text and "router" in box.text
    assert "mysql" not in box.text
    box.children[0].click()  # the Refresh button
    assert lab.calls == 2 and "mysql" in box.text
