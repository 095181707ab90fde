"""The ``/v1`` routes: paginated scores, a lead, the change feed, on-demand scoring.

Built per app by :func:`v1_router` over one store, the ``api`` config and an optional
on-demand scorer (FastAPI's "bigger applications" layout: ``serving/api.py`` includes
this router and the page's routes).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from leadscore.models.schema import JSON_COLUMNS
from leadscore.serving.config import ApiConfig
from leadscore.serving.lookup import lead_detail
from leadscore.serving.on_demand import OnDemandScorer, score_request
from leadscore.serving.schemas import (
    BatchChanges,
    Change,
    ChangesFeed,
    LeadDetail,
    ScoreRequest,
    ScoreResult,
    ScoresPage,
    json_fragment,
    reasons_fragment,
    utc,
)
from leadscore.serving.store import ScoreStore


def _iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, as pydantic writes it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_response(payload: Any) -> Response:
    """Serialise a payload already shaped like its response model (no re-validation).

    The hot endpoints build plain dicts in the documented shape and skip FastAPI's
    response-model round trip, which cost more than the database query; orjson is about
    seven times faster than the standard library here (NaN would be written as null).
    """
    return Response(orjson.dumps(payload), media_type="application/json")


def encode_cursor(batch_id: str, rank: int, baseline: str | None) -> str:
    """Opaque cursor: the pinned batch, the last rank served, the updated_since baseline."""
    raw = json.dumps({"b": batch_id, "r": rank, "u": baseline}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int, str | None]:
    """Inverse of :func:`encode_cursor`; HTTP 400 for anything it did not produce."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        batch_id, rank, baseline = data["b"], data["r"], data["u"]
        if not isinstance(batch_id, str) or not isinstance(rank, int) or rank < 0:
            raise ValueError("bad cursor fields")
        if baseline is not None and not isinstance(baseline, str):
            raise ValueError("bad cursor baseline")
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as exc:
        raise HTTPException(400, "invalid cursor: pass back next_cursor unchanged") from exc
    return batch_id, rank, baseline


def scores_page(
    store: ScoreStore,
    api_config: ApiConfig,
    grade: list[str] | None = None,
    owner: str | None = None,
    min_score: int | None = None,
    cell: list[str] | None = None,
    q: str | None = None,
    updated_since: datetime | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Response:
    """``GET /v1/scores`` for parameters already validated (by the route or :class:`FastReads`)."""
    if limit is not None and limit > api_config.max_page_size:
        raise HTTPException(422, f"limit must be <= {api_config.max_page_size}")
    size = limit or api_config.page_size
    if cursor is not None:
        pinned, after, baseline = decode_cursor(cursor)
    else:
        pinned, after, baseline = None, 0, None
        if updated_since is not None:
            old = store.batch_as_of(utc(updated_since))
            baseline = old.batch_id if old is not None else None
    try:
        info, rows = store.page(
            batch_id=pinned,
            after_rank=after,
            limit=size + 1,
            grade=grade or (),
            owner=owner,
            min_score=min_score,
            changed_since_batch=baseline,
            cell=cell or (),
            q=q,
        )
    except LookupError as exc:
        if pinned is not None:
            raise HTTPException(410, f"{exc}: restart the sync without a cursor") from exc
        raise HTTPException(404, str(exc)) from exc
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(info.batch_id, rows[-1]["rank"], baseline) if more else None
    for row in rows:
        row["reasons"] = reasons_fragment(row["reasons"])
        for name in JSON_COLUMNS:
            row[name] = json_fragment(row[name])
    return _json_response(
        {
            "batch_id": info.batch_id,
            "model_version": info.model_version,
            "scored_at": _iso(info.as_of),
            "published_at": _iso(info.published_at),
            "items": rows,
            "next_cursor": next_cursor,
        }
    )


def lead_page(
    store: ScoreStore, api_config: ApiConfig, lead_id: str, history: int | None = None
) -> Response:
    """``GET /v1/leads/{lead_id}`` for parameters already validated."""
    if history is not None and history > api_config.history_batches:
        raise HTTPException(422, f"history must be <= {api_config.history_batches}")
    detail = lead_detail(store, lead_id, history or api_config.history_batches)
    # validated once, written by pydantic's own serialiser: FastAPI's response-model
    # round trip (dump, validate again, jsonable_encoder, json.dumps) tripled the cost
    return Response(detail.model_dump_json(), media_type="application/json")


def v1_router(
    store: ScoreStore,
    api_config: ApiConfig,
    scorer: OnDemandScorer | None,
    require_token: Callable[..., None],
) -> APIRouter:
    """The ``/v1`` routes over ``store``, each behind ``require_token``."""
    router = APIRouter()
    secured = [Depends(require_token)]

    # ---- scores ----
    @router.get("/v1/scores", response_model=ScoresPage, dependencies=secured, tags=["scores"])
    def list_scores(
        grade: Annotated[list[str] | None, Query(max_length=32)] = None,
        owner: Annotated[str | None, Query(max_length=255)] = None,
        min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
        cell: Annotated[
            list[Literal["call_now", "nurture", "educate", "deprioritise"]] | None,
            Query(description="Fit x engagement cell; repeat for several (OR)."),
        ] = None,
        q: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=255,
                description="Search: leads whose lead_id, name, company or email contains "
                "this text, whatever the case.",
            ),
        ] = None,
        updated_since: Annotated[datetime | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
        limit: Annotated[
            int | None, Query(ge=1, le=100_000, description="Page size (<= api.max_page_size).")
        ] = None,
    ) -> Response:
        """The current batch, best first; filters combine with AND (a repeated one with OR);
        follow next_cursor, sending the same filters."""
        return scores_page(
            store, api_config, grade, owner, min_score, cell, q, updated_since, cursor, limit
        )

    @router.get(
        "/v1/leads/{lead_id}", response_model=LeadDetail, dependencies=secured, tags=["scores"]
    )
    def get_lead(
        lead_id: Annotated[str, Path(min_length=1, max_length=255)],
        history: Annotated[
            int | None, Query(ge=1, le=1000, description="Batches (<= api.history_batches).")
        ] = None,
    ) -> Response:
        """The lead's current score, grade, reasons and rule score, and its last batches."""
        return lead_page(store, api_config, lead_id, history)

    @router.get("/v1/changes", response_model=ChangesFeed, dependencies=secured, tags=["alerts"])
    def get_changes(
        since: Annotated[str | None, Query(max_length=64, description="A batch_id.")] = None,
        kind: Annotated[list[Literal["up", "down", "appeared", "left"]] | None, Query()] = None,
        owner: Annotated[str | None, Query(max_length=255)] = None,
    ) -> ChangesFeed:
        """Grade changes of every batch after ``since`` (every kept batch if omitted)."""
        try:
            feed = store.changes_since(since)
        except LookupError as exc:
            raise HTTPException(410, str(exc)) from exc
        kinds = set(kind or ())
        batches = [
            BatchChanges(
                batch_id=info.batch_id,
                previous_batch_id=rows[0]["previous_batch_id"] if rows else None,
                published_at=info.published_at,
                changes=[
                    Change(**{k: r[k] for k in Change.model_fields})
                    for r in rows
                    if (not kinds or r["kind"] in kinds) and (owner is None or r["owner"] == owner)
                ],
            )
            for info, rows in feed
        ]
        current = store.current_batch()
        return ChangesFeed(
            since=since,
            batches=batches,
            latest_batch_id=current.batch_id if current else None,
        )

    # ---- on-demand scoring ----
    model_cache: dict[str, Any] = {}
    model_lock = threading.Lock()

    def champion() -> tuple[Any, str]:
        if scorer is None:
            raise HTTPException(503, "on-demand scoring is not configured on this server")
        with model_lock:
            if "model" not in model_cache:
                try:
                    model_cache["model"] = scorer.model_loader()
                except LookupError as exc:
                    raise HTTPException(503, f"no champion model: {exc}") from exc
            return model_cache["model"]

    @router.post("/v1/score", response_model=ScoreResult, dependencies=secured, tags=["scores"])
    def score_one(request: ScoreRequest) -> ScoreResult:
        """Score one lead through the batch's feature code and the champion model."""
        model, version = champion()
        assert scorer is not None  # champion() raised otherwise
        return score_request(request, scorer, model, version)

    return router
