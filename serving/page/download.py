"""``GET /ui/download.csv``: the filtered list as the CRM export's CSV.

The rows are the list's (same filters and search), read in chunks as the response is
sent; each chunk goes through the export's own code (``serving/export.py``:
:func:`export_frame` for the columns and their order, :func:`neutralised` for the
spreadsheet-safe cells), so a downloaded view and the nightly file are alike cell for cell.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from leadscore.serving.export import export_frame, neutralised
from leadscore.serving.page import reads
from leadscore.serving.page.filters import ListQuery
from leadscore.serving.store import BatchInfo, ScoreStore

CHUNK_ROWS = 5000


def csv_chunk(rows: list[dict], info: BatchInfo, header: bool) -> bytes:
    """One chunk of rows as CSV bytes in the export's columns (with the header if asked)."""
    frame = pd.DataFrame(rows).assign(
        batch_id=info.batch_id, model_version=info.model_version, scored_at=info.as_of
    )
    table = neutralised(pa.Table.from_pandas(export_frame(frame), preserve_index=False))
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=header))
    return sink.getvalue()


def csv_stream(
    store: ScoreStore, info: BatchInfo, query: ListQuery, cap: int | None = None
) -> Iterator[bytes]:
    """The CSV of the leads of batch ``info`` matching ``query`` (the first ``cap`` if
    given), chunk by chunk."""
    header = True
    with store.engine.connect() as conn:
        for rows in reads.all_rows(conn, info.batch_id, query, CHUNK_ROWS, cap):
            yield csv_chunk(rows, info, header)
            header = False
    if header:  # no row matched: the header alone
        names = list(
            export_frame(
                pd.DataFrame(columns=[*reads.columns(), "batch_id", "model_version", "scored_at"])
            ).columns
        )
        yield (",".join(f'"{n}"' for n in names) + "\n").encode()


def file_name(info: BatchInfo, query: ListQuery) -> str:
    """``leads-<batch>.csv``, or ``leads-<batch>-filtered.csv`` for a narrowed view."""
    return f"leads-{info.batch_id}{'-filtered' if query.filtered else ''}.csv"
