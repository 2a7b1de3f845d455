"""Executed notebooks rendered to HTML by nbconvert, with an index page: results readable without a kernel."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HTML_DIR = "html"


def render_notebook(executed: Path, dest: Path) -> Path:
    """``executed`` (an .ipynb) as a self-contained HTML page (figures are embedded) at ``dest``."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(body)
    return dest


def render_run(out_dir: Path, results: Sequence[dict[str, Any]], run_id: str = "",
               links: Sequence[tuple[str, str]] = ()) -> Path:
    """Render every executed notebook of ``results`` into ``out_dir/html/`` and write its ``index.html``.

    ``links``: (text, href relative to the html folder) shown at the top, e.g. the run report.
    A notebook whose executed copy is missing or cannot be rendered is listed with the reason.
    """
    folder = out_dir / HTML_DIR
    rows = []
    for result in results:
        name = result["notebook"]
        executed = out_dir / name
        page, note = "", ""
        if executed.is_file():
            try:
                page = render_notebook(executed, folder / (Path(name).stem + ".html")).name
            except Exception as exc:  # nbconvert raises many types; the index says which
                note = f"not rendered: {type(exc).__name__}: {exc}"
        else:
            note = "no executed copy"
        status = "ok" if result.get("ok") else f"FAILED: {result.get('error', '')}"
        link = f'<a href="{html.escape(page)}">{html.escape(name)}</a>' if page else html.escape(name)
        rows.append(f"<tr><td>{link}</td><td>{html.escape(status)}</td><td>{result.get('seconds', '')}</td>"
                    f"<td>{html.escape(note)}</td></tr>")
    top = " · ".join(f'<a href="{html.escape(h)}">{html.escape(t)}</a>' for t, h in links)
    title = f"labkit run {run_id}".strip()
    index = folder / "index.html"
    folder.mkdir(parents=True, exist_ok=True)
    index.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}: executed notebooks</h1><p>{top}</p>"
        "<table><tr><th>notebook</th><th>status</th><th>seconds</th><th>note</th></tr>"
        + "".join(rows) + "</table></body></html>\n")
    return index
