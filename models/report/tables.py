"""HTML tables of the report: one header row of words, no empty rows, cells escaped.

``DataFrame.to_html`` writes a second header row for the index name (empty cells a reader
sees as a broken table); these helpers write exactly one header row, the row labels as
``<th>`` cells of the body, and every column named through the glossary.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import pandas as pd

from leadscore.models.report.glossary import label


class Raw(str):
    """A cell already written as HTML (a link, a <code> span): not escaped again."""


def cell(value: object, digits: int = 4) -> str:
    """One value as the page shows it: fixed decimals for floats, "-" for missing."""
    if isinstance(value, Raw):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value), quote=False)


def table_html(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    classes: str = "num",
    digits: int = 4,
    row_headers: bool = True,
) -> str:
    """A table with one header row; the first cell of each row a ``<th>`` when
    ``row_headers`` (the row's label)."""
    head = "".join(f"<th>{html.escape(h, quote=False)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            tag = "th" if row_headers and i == 0 else "td"
            cells.append(f"<{tag}>{cell(value, digits)}</{tag}>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="{classes}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def frame_html(
    frame: pd.DataFrame,
    index_label: str,
    digits: int = 4,
    formats: dict[str, Callable[[object], str]] | None = None,
    classes: str = "num",
) -> str:
    """A frame as one header row (the index's label, then each column in words)."""
    formats = formats or {}
    header = [index_label, *(label(str(c)) for c in frame.columns)]
    rows = []
    for index, values in frame.astype(object).iterrows():
        row: list[object] = [index]
        for column, value in values.items():
            fmt = formats.get(str(column))
            row.append(Raw(html.escape(fmt(value))) if fmt else _plain(value))
        rows.append(row)
    return table_html(header, rows, classes=classes, digits=digits)


def _plain(value: object) -> object:
    """numpy scalars as Python ones, so ints print as ints and floats with decimals."""
    if hasattr(value, "item"):
        return value.item()  # type: ignore[union-attr]
    return value
