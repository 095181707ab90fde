"""The call-list routes (issue #18): who calls whom today, read from the current batch.

``GET /v1/reps``
    The team (``routing.reps``) with each rep's calls and expected value in the current
    batch, and how many leads no rep could take.
``GET /v1/reps/{rep_id}/calls``
    The rep's list, position 1 first: each lead's facts, score, grade, reasons in words
    (the reasons codec, as ``/v1/leads/{id}``), expected value and why it went to this
    rep; 404 for an id that is not on the team; an empty list on a day without calls.
``GET /v1/calls/unassigned``
    The leads routed to nobody, best first, with the reason (no territory match, all
    capacity used), paged by rank (``after``).

Every route needs an API token like the rest of ``/v1``. The team comes from the
settings (``create_app(..., team=settings.routing.reps)``); the lists from the store's
``calls`` table, written atomically with their batch (serving/store/call_reads.py). The
page's Calls tab (serving/page/calls.py) shapes its views with the helpers here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from leadscore.models.routing.config import Rep
from leadscore.serving.call_schemas import CallList, Team, UnassignedPage
from leadscore.serving.config import ApiConfig
from leadscore.serving.lookup import parse_reasons
from leadscore.serving.store import BatchInfo, ScoreStore

RepId = Annotated[str, Path(min_length=1, max_length=255)]


def rep_summary(rep: Rep, counts: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """A rep's config and their counts in the batch (0 without a call)."""
    assigned, expected = counts.get(rep.id, (0, 0.0))
    return {
        "id": rep.id,
        "name": rep.label,
        "capacity": rep.capacity,
        "territories": list(rep.territories),
        "skills": list(rep.skills),
        "languages": list(rep.languages),
        "seniority": rep.seniority,
        "assigned": assigned,
        "expected": round(expected, 6),
    }


Counts = tuple[BatchInfo | None, dict[str, tuple[int, float]], int]


class CallCounts:
    """The current batch's call counts (:meth:`ScoreStore.call_counts`), kept until
    another batch is current: a published batch's calls never change, and counting a
    million unassigned leads takes ~0.1 s, too long to repeat for every request."""

    def __init__(self, store: ScoreStore) -> None:
        self.store = store
        self._kept: Counts | None = None
        self._lock = threading.Lock()

    def current(self) -> Counts:
        """The current batch, per rep id (calls, expected value), the unassigned count."""
        info = self.store.current_batch()
        if info is None:
            return None, {}, 0
        with self._lock:
            kept = self._kept
        if kept is not None and kept[0] is not None and kept[0].batch_id == info.batch_id:
            return kept
        try:
            found = self.store.call_counts(info.batch_id)
        except LookupError:  # replaced and pruned since: read whatever is current now
            found = self.store.call_counts()
        with self._lock:
            self._kept = found
        return found


def team_overview(
    counts: CallCounts, team: Sequence[Rep]
) -> tuple[BatchInfo | None, list[dict[str, Any]], int]:
    """The current batch, every rep's summary (team order) and the unassigned count."""
    info, by_rep, unassigned = counts.current()
    return info, [rep_summary(rep, by_rep) for rep in team], unassigned


def unassigned_page(
    counts: CallCounts, after_rank: int, limit: int
) -> tuple[BatchInfo | None, list[dict[str, Any]], int]:
    """The current batch, its unassigned calls ranked after ``after_rank`` (at most
    ``limit``) and how many there are in all (kept with the counts)."""
    info, _, total = counts.current()
    if info is None:
        return None, [], 0
    try:
        _, rows, _ = counts.store.unassigned_calls(
            info.batch_id, after_rank=after_rank, limit=limit, count=False
        )
    except LookupError:  # replaced and pruned since: count afresh on the current batch
        info, rows, fresh = counts.store.unassigned_calls(after_rank=after_rank, limit=limit)
        total = fresh or 0
    return info, rows, total


def find_rep(team: Sequence[Rep], rep_id: str) -> Rep:
    """The rep of ``rep_id``; HTTP 404 (one line) when the team has none."""
    for rep in team:
        if rep.id == rep_id:
            return rep
    raise HTTPException(404, f"no rep {rep_id!r} in routing.reps")


def call_item(row: dict[str, Any]) -> dict[str, Any]:
    """A call row of the store with its reasons decoded (:class:`Call`'s shape)."""
    return {**row, "reasons": parse_reasons(row.get("reasons"))}


def calls_router(
    store: ScoreStore,
    api_config: ApiConfig,
    team: Sequence[Rep],
    require_token: Callable[..., None],
) -> APIRouter:
    """The call-list routes over ``store`` and ``team``, each behind ``require_token``."""
    router = APIRouter()
    secured = [Depends(require_token)]
    counts = CallCounts(store)

    @router.get("/v1/reps", response_model=Team, dependencies=secured, tags=["calls"])
    def get_reps() -> dict[str, Any]:
        """The team with each rep's calls and expected value in the current batch."""
        info, reps, unassigned = team_overview(counts, team)
        return {
            "batch_id": info.batch_id if info else None,
            "as_of": info.as_of if info else None,
            "reps": reps,
            "unassigned": unassigned,
        }

    @router.get(
        "/v1/reps/{rep_id}/calls",
        response_model=CallList,
        dependencies=secured,
        tags=["calls"],
        responses={404: {"description": "No rep of that id in routing.reps."}},
    )
    def get_rep_calls(rep_id: RepId) -> dict[str, Any]:
        """The rep's call list in the current batch, position 1 (call first) first."""
        rep = find_rep(team, rep_id)
        info, rows = store.call_list(rep.id)
        calls = [call_item(r) for r in rows]
        summary = rep_summary(rep, {rep.id: (len(rows), sum(r["expected"] for r in rows))})
        return {
            "rep": summary,
            "batch_id": info.batch_id if info else None,
            "as_of": info.as_of if info else None,
            "model_version": info.model_version if info else None,
            "calls": calls,
        }

    @router.get(
        "/v1/calls/unassigned", response_model=UnassignedPage, dependencies=secured, tags=["calls"]
    )
    def get_unassigned(
        after: Annotated[
            int, Query(ge=0, le=2**31 - 1, description="The last rank served (next_after).")
        ] = 0,
        limit: Annotated[
            int | None, Query(ge=1, le=100_000, description="Page size (<= api.max_page_size).")
        ] = None,
    ) -> dict[str, Any]:
        """The leads no rep could take today, best first, each with the reason."""
        if limit is not None and limit > api_config.max_page_size:
            raise HTTPException(422, f"limit must be <= {api_config.max_page_size}")
        size = limit or api_config.page_size
        info, rows, total = unassigned_page(counts, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return {
            "batch_id": info.batch_id if info else None,
            "as_of": info.as_of if info else None,
            "total": total,
            "calls": [call_item(r) for r in rows],
            "next_after": rows[-1]["rank"] if more else None,
        }

    return router
