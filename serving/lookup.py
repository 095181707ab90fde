"""Reads of the store shaped for people and clients: a lead's detail, a batch's label.

Shared by the API routes and the sales-ops page (serving/page.py).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException

from leadscore.models import reasons as reasons_codec
from leadscore.serving.schemas import HistoryItem, LeadDetail, Reason, ScoreItem
from leadscore.serving.store import BatchInfo, ScoreStore

log = logging.getLogger(__name__)


def parse_reasons(raw: str | None) -> list[Reason]:
    """The stored JSON reasons as models; a malformed value gives no reasons (logged)."""
    items = reasons_codec.decode_lenient(raw)
    try:
        return [Reason.model_validate(item) for item in items]  # v1 rows read as v2
    except (ValueError, TypeError):
        log.warning("unreadable reasons value %.80r", raw)
        return []


def score_item(row: dict[str, Any]) -> Any:
    """A store row (score columns) as a :class:`ScoreItem` with parsed reasons."""
    return ScoreItem(**{**row, "reasons": parse_reasons(row.get("reasons"))})


def lead_detail(store: ScoreStore, lead_id: str, n_history: int) -> LeadDetail:
    """The lead's current row and history; HTTP 404 if no kept batch holds it."""
    return detail_of(lead_id, *lead_rows(store, lead_id, n_history))


def lead_rows(
    store: ScoreStore, lead_id: str, n_history: int
) -> tuple[list[dict[str, Any]], BatchInfo | None]:
    """The lead's rows in its newest ``n_history`` kept batches (newest first) and the
    current batch; HTTP 404 if no kept batch holds the lead."""
    rows, current = store.lead_history_and_current(lead_id, n_history)
    if not rows:
        raise HTTPException(404, f"lead {lead_id!r} is in no kept scoring batch")
    return rows, current


def detail_of(lead_id: str, rows: list[dict[str, Any]], current: BatchInfo | None) -> LeadDetail:
    """:class:`LeadDetail` from :func:`lead_rows`' answer."""
    current_id = current.batch_id if current else None
    row = next((r for r in rows if r["batch_id"] == current_id), None)
    return LeadDetail(
        lead_id=lead_id,
        current=score_item(row) if row is not None else None,
        batch_id=current_id if row is not None else None,
        history=[HistoryItem(**{k: r[k] for k in HistoryItem.model_fields}) for r in rows],
    )


def batch_label(info: BatchInfo | None) -> str:
    """Human label of a batch for the page: id, model version, as-of date."""
    if info is None:
        return "no batch published yet"
    return f"{info.batch_id} (model {info.model_version}, as of {info.as_of:%Y-%m-%d %H:%M} UTC)"
