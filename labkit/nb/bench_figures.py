"""Figures of notebooks 05 (storage comparison) and 06 (first-query benchmark), in the article's style.

Published figures are drawn hatched and labelled "published"; local runs are solid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labkit.bench.published import MD_OPS

ARTICLE_FIRST_QUERY_S = 0.032  # the blog's average first-query time
_LOCAL_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
# JuiceFS in greens, s3fs in greys, EFS in red: no JuiceFS bar shares a hue with EFS
_TARGET_COLORS = {"local": "#4c72b0", "juicefs-file": "#2ca02c", "juicefs-s3": "#98df8a",
                  "s3fs-s3": "#7f7f7f", "bindfs": "#9467bd"}
_PUB_COLORS = {"JuiceFS": "#1b5e20", "EFS": "#d62728", "S3FS": "#bdbdbd"}
_EXTRA_COLORS = ("#17becf", "#8c564b", "#e377c2", "#bcbd22")  # user paths (e.g. a real EFS mount)


def _series(result: Mapping[str, Any], section: str, keys: Sequence[str],
            with_published: bool) -> list[tuple[str, list[float], dict[str, Any]]]:
    out = []
    for i, t in enumerate(t for t in result["targets"] if t.get(section)):
        values = [float(t[section].get(k) or 0) for k in keys]
        color = _TARGET_COLORS.get(t["name"], _EXTRA_COLORS[i % len(_EXTRA_COLORS)])
        out.append((f"{t['name']} (here)", values, {"color": color}))
    if with_published:
        pub = result["published"]["mdtest" if section == "metadata" else "fio"]["systems"]
        for name, vals in pub.items():
            style = {"color": _PUB_COLORS.get(name, "#bbbbbb"), "hatch": "//", "alpha": 0.55}
            out.append((f"{name} (published)", [float(vals.get(k, 0)) for k in keys], style))
    return out


def _bars(ax: Any, series: list[tuple[str, list[float], dict[str, Any]]], labels: Sequence[str]) -> None:
    x = np.arange(len(labels))
    width = 0.85 / max(1, len(series))
    for i, (name, values, style) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, edgecolor="white", **style)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)


def plot_metadata(result: Mapping[str, Any], with_published: bool = True) -> Any:
    """Metadata ops/s per operation (log scale), local targets and the published columns."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.8))
    _bars(ax, _series(result, "metadata", MD_OPS, with_published), [k.replace("_", " ") for k in MD_OPS])
    ax.set_yscale("log")
    ax.set_ylabel("operations / s (log)")
    ax.set_title("Metadata operations (mdtest-style); hatched = published, not measured here")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not on them
    fig.tight_layout()
    return fig


def plot_throughput(result: Mapping[str, Any], with_published: bool = True) -> Any:
    """Sequential write/read MiB/s for 1 job and N jobs, one panel per job count."""
    import matplotlib.pyplot as plt

    jobs = result["config"]["fio_jobs"]
    pub_jobs = result["published"]["fio"]["jobs_multi"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, suffix, title in ((axes[0], "1", "1 job"),
                              (axes[1], "multi", f"{jobs} jobs here / {pub_jobs} jobs published")):
        keys = [f"write_{suffix}", f"read_{suffix}"]
        _bars(ax, _series(result, "throughput", keys, with_published), ["write", "read"])
        ax.set_yscale("log")
        ax.set_ylabel("MiB/s (log)")
        ax.set_title(f"Sequential 4M blocks, {title}")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_first_query(result: Mapping[str, Any]) -> Any:
    """Per-batch first-query latency per mode, warm latency dashed, the article's 0.032 s line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(12, 4.5))
    for i, (mode, run) in enumerate(result["modes"].items()):
        batches = run["batches"]
        x = [b["batch"] for b in batches]
        color = _LOCAL_COLORS[i % len(_LOCAL_COLORS)]
        ax.plot(x, [b["first_s"] for b in batches], "o-", color=color, label=f"{mode}: first query")
        ax.plot(x, [b["warm_s"] for b in batches], "x--", color=color, alpha=0.6, label=f"{mode}: warm")
        if any("unseen_query_s" in b for b in batches):
            ax.plot(x, [b.get("unseen_query_s") for b in batches], "d", color=color, alpha=0.4,
                    label=f"{mode}: a never-asked query, data loaded (control)")
        if any("idle_warm_s" in b for b in batches):
            ax.plot(x, [b.get("idle_warm_s") for b in batches], "^", color=color, alpha=0.4,
                    label=f"{mode}: warm after an idle pause (control)")
    ax.axhline(ARTICLE_FIRST_QUERY_S, color="black", linestyle=":",
               label=f"article: {ARTICLE_FIRST_QUERY_S} s average (published)")
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("seconds (log)")
    ax.set_title("First query after each batch (through the router)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def html_table(rows: Sequence[Mapping[str, Any]], digits: int = 1) -> Any:
    """Rows of dicts as an HTML table (JupyterLab renders it; str() in a log shows the markup)."""
    from html import escape

    from IPython.display import HTML

    cols = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v: Any) -> str:
        return "" if v is None else escape(f"{v:,.{digits}f}" if isinstance(v, float) else str(v))

    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def plot_freshness(result: Mapping[str, Any]) -> Any:
    """Per-batch freshness lag per mode: from the seal acknowledged to the rows searchable from memory
    (lazy: on every ro node; preload: on the node the router sends the new file to)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(10, 3.8))
    for i, (mode, run) in enumerate(result["modes"].items()):
        batches = run["batches"]
        ax.plot([b["batch"] for b in batches], [b["freshness_s"] for b in batches], "s-",
                color=_LOCAL_COLORS[i % len(_LOCAL_COLORS)], label=f"{mode}: freshness lag")
    ax.set_xlabel("batch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("seconds")
    ax.set_ylim(bottom=0)
    ax.set_title("New rows searchable on every ro node, after the seal is acknowledged")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
