"""The run report: markdown (for CI logs) and a self-contained HTML page (no kernel, no network).

Both hold the run's facts, the comparison table (every metric: baseline, this run, change, noise
band, verdict) when there is a baseline, else the run's metrics; the HTML page adds the trend plots,
one small multiple per key metric over the history's runs of the same size (also saved as PNG).
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.runs import metrics as mx
from labkit.runs.compare import Comparison, Row

VERDICT_TEXT = {"worse": "WORSE", "better": "better", "same": "same within noise", "changed": "changed",
                "new": "new", "missing": "missing"}
VERDICT_COLOR = {"worse": "#f8d0d0", "better": "#d4f0d4", "changed": "#fff3c4", "new": "#e8e8f8",
                 "missing": "#e8e8f8"}


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return f"{len(value)} values"
    text = str(value)
    return text if len(text) <= 48 else text[:45] + "..."


def change_text(row: Row) -> str:
    if row.ratio is None:
        return ""
    return f"x{row.ratio:.3g} ({(row.ratio - 1) * 100:+.1f}%)"


def band_text(row: Row) -> str:
    if row.band is None:
        return ""
    if row.noise == "exact":
        return "exact"
    return f"±{row.band:.0%} ({'default' if row.noise.startswith('default') else row.noise})"


def verdict_text(row: Row) -> str:
    return "same" if row.verdict == "same" and row.direction == "info" else VERDICT_TEXT[row.verdict]


def _sorted_rows(comparison: Comparison) -> list[Row]:
    """Worse first, then better, changed, missing, new, same; by key within each."""
    order = {v: i for i, v in enumerate(("worse", "better", "changed", "missing", "new", "same"))}
    return sorted(comparison.rows, key=lambda r: (order[r.verdict], r.key))


def _table_rows(comparison: Comparison) -> list[list[str]]:
    rows = _sorted_rows(comparison)
    return [[r.key, r.kind, fmt(r.base), fmt(r.cand), change_text(r), band_text(r), verdict_text(r)]
            for r in rows]


COMPARE_HEAD = ["metric", "kind", "baseline", "this run", "change", "noise band", "verdict"]


def _facts(record: dict[str, Any]) -> list[tuple[str, str]]:
    failed = [n for n in record.get("notebooks", []) if not n.get("ok")]
    status = "ok" if record.get("ok") else "FAILED"
    if failed:
        status = f"FAILED at {failed[0]['notebook']}: {failed[0]['error']}"
    m = record.get("machine") or {}
    params = "; ".join(f"{nb}: " + ", ".join(f"{k}={v}" for k, v in p.items())
                       for nb, p in (record.get("params") or {}).items()) or "none"
    return [
        ("run", f"{record.get('run_id')} ({record.get('started')}, {record.get('seconds')} s, {status})"),
        ("notebooks", ", ".join(f"{n['notebook']} {n['seconds']} s" for n in record.get("notebooks", []))),
        ("size", str(record.get("size"))),
        ("parameters", params),
        ("environment", ", ".join(f"{k}={v}" for k, v in (record.get("env") or {}).items()) or "none"),
        ("versions", ", ".join(f"{k} {v or '-'}" for k, v in (record.get("versions") or {}).items())),
        ("machine", f"{m.get('cores')} cores, {m.get('memory_gib')} GiB, load {m.get('load_before')} before, "
                    f"{m.get('load_after')} after; {m.get('platform')}"),
        ("lab", ", ".join(f"{k} {v}" for k, v in (record.get("lab") or {}).items())),
    ]


# ------------------------------------------------------------------------------------ markdown
def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_markdown(comparison: Comparison, title: str = "") -> str:
    base = ", ".join(comparison.base_ids)
    parts = [f"## {title or 'Comparison'}: {', '.join(comparison.cand_ids)} against {base}", "",
             f"**{comparison.summary()}.**"]
    if comparison.rename:
        parts += ["", "Keys renamed before comparing (candidate -> baseline): "
                  + ", ".join(f"`{a}` -> `{b}`" for a, b in comparison.rename.items())]
    if comparison.context:
        parts += ["", "Settings that differ:", "",
                  _md_table(["fact", "baseline", "this run"],
                            [[k, fmt(a), fmt(b)] for k, a, b in comparison.context])]
    parts += ["", _md_table(COMPARE_HEAD, _table_rows(comparison))]
    return "\n".join(parts) + "\n"


def metrics_rows(record: dict[str, Any]) -> list[list[str]]:
    flat = mx.of_record(record)
    return [[k, mx.kind_of(k, v).name, fmt(statistics.median(v) if mx.is_samples(v) else v)]
            for k, v in sorted(flat.items())]


def markdown(record: dict[str, Any] | None, comparison: Comparison | None, gating: bool = True,
             trends: str = "report_trends.png") -> str:
    parts = []
    if record:
        parts += [f"# labkit run {record.get('run_id')}", "",
                  _md_table(["", ""], [[k, v] for k, v in _facts(record)]), ""]
    if comparison:
        title = "Comparison" if gating else "Compared with the previous run of this size (informational)"
        parts.append(comparison_markdown(comparison, title))
    elif record:
        parts += ["## Metrics (no baseline to compare with)", "",
                  _md_table(["metric", "kind", "value"], metrics_rows(record)), ""]
    if record:
        parts += ["", f"Trends over the history: `{trends}`."]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------ trends
def trend_series(history: Sequence[dict[str, Any]],
                 keys: Sequence[str]) -> dict[str, list[tuple[int, float, str]]]:
    """key -> [(position in ``history``, value (median of repeats), run id)] for runs holding it."""
    flats = [mx.of_record(r) for r in history]
    out: dict[str, list[tuple[int, float, str]]] = {}
    for key in keys:
        points = []
        for i, (rec, flat) in enumerate(zip(history, flats, strict=True)):
            value = flat.get(key)
            if mx.is_samples(value):
                value = statistics.median(value)
            if mx.is_number(value):
                points.append((i, float(value), str(rec.get("run_id", ""))))
        if points:
            out[key] = points
    return out


def trend_figure(series: dict[str, list[tuple[int, float, str]]], highlight: Sequence[str] = (),
                 baseline: Sequence[str] = ()) -> Any:
    """Small multiples, one per key: the value per run (oldest left); this run red, baseline runs green."""
    from matplotlib.figure import Figure

    n = max(1, len(series))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.4 * cols, 2.5 * rows), layout="constrained")
    for i, (key, points) in enumerate(series.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, "-o", color="#4c72b0", markersize=3, linewidth=1)
        for x, y, run_id in points:
            if run_id in baseline:
                ax.plot([x], [y], "s", color="#2ca02c", markersize=6)
            if run_id in highlight:
                ax.plot([x], [y], "o", color="#d62728", markersize=6)
        kind = mx.kind_of(key)
        ax.set_title(key, fontsize=8)
        ax.set_ylabel(f"{kind.name}" + (f" ({kind.unit})" if kind.unit else ""), fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    if not series:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no numeric key metric in the history yet", ha="center")
    fig.supxlabel("run number in the history, oldest left\nred: this run, green squares: baseline",
                  fontsize=7)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ html
_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1300px}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#f0f0f0}td.num{text-align:right;font-family:monospace}
img{max-width:100%}"""


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]], colors: Sequence[str] = ()) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        style = f' style="background:{colors[i]}"' if i < len(colors) and colors[i] else ""
        out.append(f"<tr{style}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    return "\n".join(out + ["</table>"])


def html_page(record: dict[str, Any] | None, comparison: Comparison | None, trends_png: bytes | None,
              gating: bool = True, links: Sequence[tuple[str, str]] = ()) -> str:
    title = f"labkit run {record.get('run_id')}" if record else "labkit compare"
    body = [f"<h1>{html.escape(title)}</h1>"]
    if links:
        anchors = (f'<a href="{html.escape(h)}">{html.escape(t)}</a>' for t, h in links)
        body.append("<p>" + " · ".join(anchors) + "</p>")
    if record:
        body.append(_html_table(["", ""], _facts(record)))
    if comparison:
        heading = "Comparison" if gating else "Compared with the previous run of this size (informational)"
        body.append(f"<h2>{heading}: {html.escape(', '.join(comparison.cand_ids))} against "
                    f"{html.escape(', '.join(comparison.base_ids))}</h2>")
        body.append(f"<p><b>{html.escape(comparison.summary())}.</b></p>")
        if comparison.rename:
            pairs = ", ".join(f"{a} -> {b}" for a, b in comparison.rename.items())
            body.append(f"<p>Keys renamed before comparing (candidate -> baseline): {html.escape(pairs)}</p>")
        if comparison.context:
            body.append("<p>Settings that differ:</p>")
            body.append(_html_table(["fact", "baseline", "this run"],
                                    [[k, fmt(a), fmt(b)] for k, a, b in comparison.context]))
        rows = _table_rows(comparison)
        colors = [VERDICT_COLOR.get(r.verdict, "") for r in _sorted_rows(comparison)]
        body.append(_html_table(COMPARE_HEAD, rows, colors))
    elif record:
        body.append("<h2>Metrics (no baseline to compare with)</h2>")
        body.append(_html_table(["metric", "kind", "value"], metrics_rows(record)))
    if trends_png:
        body.append("<h2>Trends over the history (same size)</h2>")
        data = base64.b64encode(trends_png).decode()
        body.append(f'<img alt="trend plots" src="data:image/png;base64,{data}">')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write(out_dir: Path, record: dict[str, Any] | None, history: Sequence[dict[str, Any]],
          comparison: Comparison | None, gating: bool = True, stem: str = "report",
          links: Sequence[tuple[str, str]] = ()) -> tuple[Path, Path]:
    """Write ``<stem>.md``, ``<stem>.html`` and the trends PNG into ``out_dir``; returns the two reports."""
    out_dir.mkdir(parents=True, exist_ok=True)
    same_size = [r for r in history if not record or r.get("size") == record.get("size")]
    keys = sorted(set().union(*(mx.of_record(r) for r in same_size))) if same_size else []
    series = trend_series(same_size, mx.key_metrics(keys))
    png = None
    if same_size:
        highlight = comparison.cand_ids if comparison else [str(record.get("run_id"))] if record else []
        png = _png(trend_figure(series, highlight, comparison.base_ids if comparison else ()))
        (out_dir / f"{stem}_trends.png").write_bytes(png)
    md_path, html_path = out_dir / f"{stem}.md", out_dir / f"{stem}.html"
    md_path.write_text(markdown(record, comparison, gating, f"{stem}_trends.png"))
    html_path.write_text(html_page(record, comparison, png, gating, links))
    return md_path, html_path
