"""Figures for the notebooks: the cluster architecture, the file-to-node map, timings.

Layouts are computed by pure functions (tested directly); the ``*_figure`` functions
only draw them with matplotlib and return the figure (save it with ``labkit.savefig``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# fill colours per layer of the cluster
COLORS = {
    "client": "#dbe9f6",
    "router": "#fde2b8",
    "rw": "#f7c6c5",
    "ro": "#d4ecd4",
    "meta": "#e7dcf3",
    "mount": "#f4f1c9",
    "store": "#e0e0e0",
}


@dataclass(frozen=True)
class Box:
    name: str
    label: str
    x: float  # centre
    y: float  # centre
    w: float
    h: float
    kind: str


def architecture_layout(ro_nodes: int = 2, fuse: bool = True) -> tuple[list[Box], list[tuple[str, str]]]:
    """Boxes and arrows (source name, target name) of the lab cluster with ``ro_nodes`` read nodes."""
    if ro_nodes < 0:
        raise ValueError("ro_nodes must be >= 0")
    nodes = ["rw"] + [f"ro{i}" for i in range(1, ro_nodes + 1)]
    width = max(3, len(nodes)) * 3.0
    step = width / len(nodes)
    boxes = [
        Box("client", "pymilvus 1.1.2 client\n(the notebooks)", width / 2, 9.0, 4.2, 0.9, "client"),
        Box("router", "router (Mishards role)\nport 19530 when free", width / 2, 7.3, 4.2, 0.9, "router"),
        Box("mysql", "MySQL (MariaDB)\n`milvus` metadata", width + 0.8, 7.3, 2.6, 0.9, "meta"),
        Box("redis", "Redis\nJuiceFS metadata", width / 2 - 2.0, 1.0, 3.2, 0.9, "store"),
        Box("objects", "object store\n(file dir or S3 emulator)", width / 2 + 2.0, 1.0, 3.4, 0.9, "store"),
    ]
    # the router reads the file lists from MySQL (SQLALCHEMY_DATABASE_URI) to split searches by file
    arrows = [("client", "router"), ("router", "mysql")]
    for i, node in enumerate(nodes):
        x = step * (i + 0.5)
        role = "rw" if node == "rw" else "ro"
        boxes.append(Box(node, f"{node} node\nrole: {role}", x, 5.4, 2.4, 0.9, role))
        mount_label = f"JuiceFS mount\n({node})" if fuse else "one shared\nlocal directory"
        boxes.append(Box(f"mount-{node}", mount_label, x, 3.3, 2.4, 0.9, "mount"))
        arrows += [("router", node), (node, "mysql"), (node, f"mount-{node}")]
        if fuse:  # without FUSE the nodes' directories are one local folder: no JuiceFS below
            arrows += [(f"mount-{node}", "redis"), (f"mount-{node}", "objects")]
    return boxes, arrows


def architecture_figure(ro_nodes: int = 2, fuse: bool = True) -> Any:
    """The cluster the notebooks build, drawn as boxes and arrows."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    boxes, arrows = architecture_layout(ro_nodes, fuse)
    by_name = {b.name: b for b in boxes}
    right = max(b.x + b.w / 2 for b in boxes) + 0.3
    fig, ax = plt.subplots(figsize=(right * 0.85, 7.2))
    for b in boxes:
        ax.add_patch(FancyBboxPatch((b.x - b.w / 2, b.y - b.h / 2), b.w, b.h, boxstyle="round,pad=0.05",
                                    facecolor=COLORS[b.kind], edgecolor="#555555"))
        ax.text(b.x, b.y, b.label, ha="center", va="center", fontsize=8.5)
    for src, dst in arrows:
        a, z = by_name[src], by_name[dst]
        start, end = _edge_points(a, z)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops={"arrowstyle": "->", "color": "#666666", "lw": 0.9,
                                "shrinkA": 2, "shrinkB": 2})
    ax.set_xlim(-0.3, right)
    ax.set_ylim(0.2, 9.8)
    ax.axis("off")
    title = "Milvus 1.x cluster on JuiceFS" + ("" if fuse else " (no FUSE: nodes share a local directory)")
    ax.set_title(title)
    return fig


def _edge_points(a: Box, z: Box) -> tuple[tuple[float, float], tuple[float, float]]:
    """Attach arrows to the facing sides of two boxes."""
    if abs(a.y - z.y) < 0.01:  # same row: left/right sides
        sign = 1 if z.x > a.x else -1
        return (a.x + sign * a.w / 2, a.y), (z.x - sign * z.w / 2, z.y)
    if z.kind == "meta":  # metadata sits up right: node's top right corner to its bottom
        return (a.x + a.w / 4, a.y + a.h / 2), (z.x - z.w / 4, z.y - z.h / 2)
    sign = -1 if z.y < a.y else 1
    return (a.x, a.y + sign * a.h / 2), (z.x, z.y - sign * z.h / 2)


def files_per_node(file_map: Mapping[Any, str], nodes: Sequence[str] = ()) -> dict[str, int]:
    """How many segment files each node serves (nodes listed in ``nodes`` appear even with 0)."""
    counts = Counter(file_map.values())
    return {n: counts.get(n, 0) for n in [*nodes, *sorted(set(counts) - set(nodes))]}


def file_node_figure(maps: Mapping[str, Mapping[Any, str]],
                     title: str = "Which node searches which file") -> Any:
    """One row of coloured cells per map (e.g. "before" / "after"): file id -> node that searches it."""
    import matplotlib.pyplot as plt

    labels = list(maps)
    nodes = sorted({n for m in maps.values() for n in m.values()})
    cmap = plt.get_cmap("tab10")
    color = {n: cmap(i % 10) for i, n in enumerate(nodes)}
    files = sorted({f for m in maps.values() for f in m}, key=lambda f: (len(str(f)), str(f)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(files) + 2), 0.8 * len(labels) + 1.6))
    for row, label in enumerate(labels):
        for col, f in enumerate(files):
            node = maps[label].get(f)
            if node is not None:
                ax.add_patch(plt.Rectangle((col, row), 0.92, 0.8, color=color[node]))
    ax.set_xlim(0, max(1, len(files)))
    ax.set_ylim(0, len(labels))
    ax.set_yticks([r + 0.4 for r in range(len(labels))], labels)
    ax.set_xticks([c + 0.46 for c in range(len(files))], [str(f) for f in files], rotation=90, fontsize=7)
    ax.set_xlabel("TableFiles.id (segment file)")
    ax.invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=color[n]) for n in nodes]
    ax.legend(handles, nodes, loc="upper left", bbox_to_anchor=(1.01, 1), title="node")
    ax.set_title(title)
    return fig


def bar_figure(values: Mapping[str, float], title: str, unit: str = "s") -> Any:
    """A horizontal bar per item, value printed at the bar's end."""
    import matplotlib.pyplot as plt

    names = list(values)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    ax.barh(names, [values[n] for n in names], color="#6a9fd4")
    for i, n in enumerate(names):
        ax.text(values[n], i, f" {values[n]:.3g} {unit}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.margins(x=0.2)
    return fig
