"""Figure layouts (pure) and that each figure draws and saves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from labkit.nb import figures  # noqa: E402
from labkit.nb.artifacts import savefig  # noqa: E402


def test_architecture_layout_has_a_node_and_mount_per_node() -> None:
    boxes, arrows = figures.architecture_layout(ro_nodes=3)
    names = {b.name for b in boxes}
    assert {"rw", "ro1", "ro2", "ro3", "mount-ro3", "router", "mysql", "redis", "objects"} <= names
    assert ("router", "ro3") in arrows and ("ro3", "mysql") in arrows
    assert all(src in names and dst in names for src, dst in arrows)
    assert sum(b.kind == "rw" for b in boxes) == 1


def test_architecture_layout_without_fuse_has_no_juicefs_client() -> None:
    boxes, arrows = figures.architecture_layout(ro_nodes=2, fuse=False)
    assert not [a for a in arrows if a[0].startswith("mount-")]
    assert all("shared" in b.label for b in boxes if b.kind == "mount")
    with pytest.raises(ValueError):
        figures.architecture_layout(ro_nodes=-1)


def test_boxes_do_not_overlap() -> None:
    boxes, _ = figures.architecture_layout(ro_nodes=2)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart_x = abs(a.x - b.x) >= (a.w + b.w) / 2
            apart_y = abs(a.y - b.y) >= (a.h + b.h) / 2
            assert apart_x or apart_y, (a.name, b.name)


def test_files_per_node_lists_idle_nodes() -> None:
    assert figures.files_per_node({1: "ro1", 2: "ro1"}, ["ro1", "ro2"]) == {"ro1": 2, "ro2": 0}
    assert figures.files_per_node({1: "x"}) == {"x": 1}


def test_figures_save(tmp_path) -> None:
    figs = {
        "arch": figures.architecture_figure(2),
        "map": figures.file_node_figure({"before": {1: "ro1", 2: "ro1"}, "after": {1: "ro1", 2: "ro2"}}),
        "bar": figures.bar_figure({"write": 0.5, "read": 0.25}, "t"),
    }
    for name, fig in figs.items():
        savefig(fig, name, tmp_path)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    ax = figs["map"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["before", "after"]
