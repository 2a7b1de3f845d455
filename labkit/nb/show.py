"""Showing things in notebooks: tables, side-by-side commands, config diffs.

Every helper returns an object with both an HTML view (JupyterLab) and a plain-text
view (papermill ``--log-output``, CI logs), so a headless run still shows the data.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return ""
    return str(value)


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table (columns default to the first row's keys)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p><i>(no rows)</i></p>"
    cols = list(columns or rows[0].keys())
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left'>{html.escape(_cell(r.get(c)))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Table:
    """A table that renders as HTML in JupyterLab and as aligned text everywhere else."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 title: str = "") -> None:
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns else (list(self.rows[0]) if self.rows else [])
        self.title = title

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        head = f"{self.title}\n" if self.title else ""
        return head + text_table(self.rows, self.columns)

    def _repr_html_(self) -> str:
        head = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        return head + html_table(self.rows, self.columns)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, title: str = "") -> Table:
    """``Table(rows)``: the last expression of a cell displays it."""
    return Table(rows, columns, title)


class Text:
    """Preformatted text (a command, a config file, a diff) with an optional title."""

    def __init__(self, text: str, title: str = "") -> None:
        self.text = text
        self.title = title

    def __repr__(self) -> str:
        return (f"# {self.title}\n" if self.title else "") + self.text

    def _repr_html_(self) -> str:
        head = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        return f"{head}<pre>{html.escape(self.text)}</pre>"


class SideBySide:
    """Two texts next to each other (the article's command and the one run here)."""

    def __init__(self, left: Text, right: Text) -> None:
        self.left, self.right = left, right

    def __repr__(self) -> str:
        return f"{self.left!r}\n\n{self.right!r}"

    def _repr_html_(self) -> str:
        cell = "<td style='vertical-align:top;text-align:left;width:50%'>{}</td>"
        return ("<table><tr>" + cell.format(self.left._repr_html_())
                + cell.format(self.right._repr_html_()) + "</tr></table>")


def side_by_side(left_title: str, left: str, right_title: str, right: str) -> SideBySide:
    return SideBySide(Text(left, left_title), Text(right, right_title))


def diff(a: str, b: str, a_name: str = "a", b_name: str = "b", context: int = 1) -> Text:
    """A unified diff of two texts (e.g. the rw and ro server_config.yaml)."""
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), a_name, b_name, n=context, lineterm="")
    return Text("\n".join(lines) or "(identical)", f"diff {a_name} {b_name}")


def changed_lines(a: str, b: str) -> list[tuple[str, str]]:
    """Pairs (line in a, line in b) that differ, for asserting what a diff showed."""
    pairs = []
    matcher = difflib.SequenceMatcher(None, a.splitlines(), b.splitlines())
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            pairs += list(zip(a.splitlines()[i1:i2], b.splitlines()[j1:j2], strict=False))
    return [(x.strip(), y.strip()) for x, y in pairs]
