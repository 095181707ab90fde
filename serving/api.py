"""The HTTP API over the scores store: CRM syncs, alerts, on-demand scoring, sales-ops page.

``create_app`` builds a FastAPI app from the store's config, the ``api`` section and,
optionally, an :class:`OnDemandScorer` (feature/rules/scoring config plus a callable that
loads the champion model). The app never imports ``pipelines``: the CLI (``leadscore
serve``) hands it a loader built on ``pipelines.tracking.load_champion``; tests hand it a
small fitted model.

Endpoints (all under bearer-token auth except ``/healthz``; docs at ``/docs``, the schema
at ``/openapi.json``, both also behind the token; Swagger UI's own files, which hold no
data, at ``/docs-assets`` without one, so the docs need no CDN):

``GET /v1/scores``
    The current batch, best first, cursor-paginated (keyset on rank). The cursor pins the
    batch, so a CRM sync that pages through 50k leads reads one consistent batch even if
    a new one is published meanwhile. Filters: ``grade`` (repeatable), ``owner``,
    ``min_score``, ``updated_since`` (only leads whose score or grade differ from the
    batch that was current at that instant, or that are new since; everything if no
    batch that old is kept).
``GET /v1/leads/{lead_id}``
    The lead in the current batch (score, grade, reasons, rule score) and its last N
    batches.
``GET /v1/changes?since=<batch_id>``
    The change feed (grade up / down, appeared, left) of every batch after ``since``;
    410 if ``since`` was pruned (resync from ``/v1/scores``).
``POST /v1/score``
    Score one lead posted with its attributes and activities, through the same feature
    code (``features.builder.build_features``) and the champion model.
``GET /healthz``
    Liveness plus the current batch id; no token.
``/ui``
    The sales-ops page (serving/page.py).

Errors are JSON ``{"detail": ...}`` with a 4xx status for bad input; an unexpected error
answers 500 with an opaque ``error_id`` (logged with its traceback server-side): no stack
trace ever reaches a client.
"""

from __future__ import annotations

import base64
import binascii
import gc
import hmac
import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.features.config import FeatureConfig
from leadscore.models.config import RulesConfig, ScoringConfig
from leadscore.serving.store import SCHEMA_VERSION, BatchInfo, ScoreStore, StoreConfig

DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's JavaScript and CSS are served (no token: they hold no data)."""

log = logging.getLogger(__name__)

TOKENS_ENV = "LEADSCORE_API_TOKENS"
PAGE_TOKENS_ENV = "LEADSCORE_PAGE_TOKENS"
COOKIE = "leadscore_token"

ModelLoader = Callable[[], tuple[Any, str]]
"""Returns ``(fitted LeadModel, model version)``; raises LookupError if there is none."""


class ApiConfig(BaseModel):
    """The ``api:`` section of leadscore.yaml: who may call the API and where it listens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[str] = Field(
        default_factory=list,
        description="Bearer tokens for the API and the page; $LEADSCORE_API_TOKENS "
        "(comma separated) adds more. No token configured: every call but /healthz is 401.",
    )
    page_tokens: list[str] = Field(
        default_factory=list,
        description="Read-only tokens that open the sales-ops page only (not /v1); "
        "$LEADSCORE_PAGE_TOKENS adds more.",
    )
    host: str = Field(default="127.0.0.1", description="`leadscore serve` bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="`leadscore serve` port.")
    page_size: int = Field(default=100, ge=1, le=10_000, description="Default page size.")
    max_page_size: int = Field(default=1000, ge=1, le=100_000, description="Largest `limit`.")
    history_batches: int = Field(
        default=10, ge=1, le=1000, description="Batches of history per lead (max)."
    )


def _env_tokens(name: str) -> list[str]:
    return [t.strip() for t in os.environ.get(name, "").split(",") if t.strip()]


def api_tokens(config: ApiConfig) -> tuple[list[str], list[str]]:
    """(API tokens, page-only tokens): the config's plus the environment's."""
    api = [*config.tokens, *_env_tokens(TOKENS_ENV)]
    page = [*config.page_tokens, *_env_tokens(PAGE_TOKENS_ENV)]
    return api, page


@dataclass(frozen=True)
class OnDemandScorer:
    """What ``POST /v1/score`` needs: the configs of the shared feature/scoring code and a
    loader of the champion model (called once, on the first request, then cached)."""

    features: FeatureConfig
    rules: RulesConfig
    scoring: ScoringConfig
    model_loader: ModelLoader


# ---------------------------------------------------------------------------- schemas


class Reason(BaseModel):
    """One reason code: which feature, in words, and how much it moved the log-odds."""

    feature: str
    text: str
    direction: Literal["+", "-"]
    contribution: float


class ScoreItem(BaseModel):
    """One lead's row of a batch (see serving/export.py for each field's meaning)."""

    lead_id: str
    owner: str | None
    segment: str | None
    probability: float
    score: int
    grade: str
    rank: int
    percentile: float
    fit: float | None
    engagement: float | None
    rule_score: float | None
    rule_grade: str | None
    reasons: list[Reason]


class ScoresPage(BaseModel):
    """A page of ``GET /v1/scores``; pass ``next_cursor`` back to get the next page."""

    batch_id: str
    model_version: str
    scored_at: datetime
    published_at: datetime | None
    items: list[ScoreItem]
    next_cursor: str | None = Field(description="Null on the last page.")


class HistoryItem(BaseModel):
    """The lead in one past (or the current) batch."""

    batch_id: str
    model_version: str
    scored_at: datetime
    published_at: datetime | None
    score: int
    grade: str
    probability: float
    rank: int
    rule_score: float | None
    rule_grade: str | None


class LeadDetail(BaseModel):
    """A lead: its row in the current batch (null if not in it) and its recent batches."""

    lead_id: str
    current: ScoreItem | None
    batch_id: str | None
    history: list[HistoryItem]


class Change(BaseModel):
    """A lead whose grade moved (``up``/``down``), or that ``appeared`` or ``left``."""

    lead_id: str
    kind: Literal["up", "down", "appeared", "left"]
    owner: str | None
    old_grade: str | None
    new_grade: str | None
    old_score: int | None
    new_score: int | None


class BatchChanges(BaseModel):
    """The changes a batch brought against the batch it replaced."""

    batch_id: str
    previous_batch_id: str | None
    published_at: datetime | None
    changes: list[Change]


class ChangesFeed(BaseModel):
    """``GET /v1/changes``: batches after ``since``, oldest first; poll with the last id."""

    since: str | None
    batches: list[BatchChanges]
    latest_batch_id: str | None


MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def _sane_time(value: datetime | None) -> datetime | None:
    """Naive -> UTC; refuse instants outside 1970-2200 (pandas' nanosecond range ends in
    2262, and no CRM record predates 1970): a clear 422 instead of an overflow."""
    if value is None:
        return None
    value = _utc(value)
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError("must be between 1970-01-01 and 2200-01-01 (UTC)")
    return value


class ActivityIn(BaseModel):
    """One activity of the posted lead (the activities contract)."""

    model_config = ConfigDict(extra="forbid")

    activity_type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime = Field(description="ISO 8601; a naive time is taken as UTC.")
    value: float | None = None

    _time = field_validator("occurred_at")(_sane_time)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class LeadIn(BaseModel):
    """The posted lead: id, creation time, owner/segment and its attribute columns."""

    model_config = ConfigDict(extra="forbid")

    lead_id: str = Field(min_length=1, max_length=255)
    created_at: datetime = Field(description="ISO 8601; a naive time is taken as UTC.")
    owner: str | None = Field(default=None, max_length=255)
    segment: str | None = Field(default=None, max_length=255)
    attributes: dict[str, str | float | None] = Field(
        default_factory=dict,
        description="Attribute columns declared under features.attributes; others are 422.",
    )

    _time = field_validator("created_at")(_sane_time)


class ScoreRequest(BaseModel):
    """``POST /v1/score`` body: one open lead, its activities and the scoring instant."""

    model_config = ConfigDict(extra="forbid")

    lead: LeadIn
    activities: list[ActivityIn] = Field(default_factory=list, max_length=10_000)
    as_of: datetime | None = Field(default=None, description="Scoring instant; default now.")

    _time = field_validator("as_of")(_sane_time)


class ScoreResult(BaseModel):
    """The on-demand score: the same fields as a batch row, minus rank and percentile."""

    lead_id: str
    probability: float
    score: int
    grade: str
    fit: float | None
    engagement: float | None
    rule_score: float | None
    rule_grade: str | None
    reasons: list[Reason]
    model_version: str
    as_of: datetime


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok", "degraded"]
    current_batch: str | None
    schema_version: int


# ---------------------------------------------------------------------------- helpers


def parse_reasons(raw: str | None) -> list[Reason]:
    """The stored JSON reasons as models; a malformed value gives no reasons (logged)."""
    if not raw:
        return []
    try:
        return [Reason.model_validate(item) for item in json.loads(raw)]
    except (ValueError, TypeError):
        log.warning("unreadable reasons value %.80r", raw)
        return []


def _score_item(row: dict[str, Any]) -> ScoreItem:
    return ScoreItem(**{**row, "reasons": parse_reasons(row.get("reasons"))})


def _raw_reasons(raw: str | None) -> list[Any]:
    """The stored reasons as plain JSON (the hot path: no per-reason model objects)."""
    if not raw:
        return []
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("unreadable reasons value %.80r", raw)
        return []
    return items if isinstance(items, list) else []


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


class NoStackTraces:
    """ASGI middleware: an unexpected exception becomes an opaque 500 (traceback logged).

    Plain ASGI rather than ``BaseHTTPMiddleware``, which costs about a millisecond per
    request. If the response had already started, the connection is just closed.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("error %s on %s %s", error_id, scope.get("method"), scope.get("path"))
            if started:
                return
            body = json.dumps({"detail": "internal server error", "error_id": error_id})
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})


def _utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive input is taken as UTC (the data contract's rule)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


class _Auth:
    """Bearer-token check (constant-time comparison against every configured token)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = [t.encode() for t in tokens if t]

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        given = token.encode()
        return any(hmac.compare_digest(given, t) for t in self.tokens)


_bearer = HTTPBearer(
    auto_error=False, description="A token from api.tokens / $LEADSCORE_API_TOKENS."
)


# ------------------------------------------------------------------------------- app


def create_app(
    store_config: StoreConfig,
    api_config: ApiConfig | None = None,
    scorer: OnDemandScorer | None = None,
    store: ScoreStore | None = None,
) -> FastAPI:
    """The FastAPI app over the store at ``store_config`` (created if needed)."""
    api_config = api_config or ApiConfig()
    tokens, page_tokens = api_tokens(api_config)
    api_auth = _Auth(tokens)
    page_auth = _Auth([*tokens, *page_tokens])
    store = store or ScoreStore(store_config)
    store.create()

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None or not api_auth.valid(credentials.credentials):
            raise HTTPException(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    app = FastAPI(
        title="leadscore API",
        version="1",
        description=(__doc__ or "").split("\n\n")[0],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = store
    app.state.api_config = api_config
    app.state.page_auth = page_auth
    app.state.api_auth = api_auth

    app.add_middleware(NoStackTraces)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    secured = [Depends(require_token)]

    # ---- docs (behind the token: the schema names every field of the data) ----
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    # Swagger UI's own files, served from the installed fastapi-offline package rather than
    # a CDN, so the docs work where a self-hosted install has no internet. They hold no data.
    assets = str(files("fastapi_offline") / "static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False, dependencies=secured)
    def openapi_json() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=secured)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="leadscore API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    # ---- health ----
    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz(response: Response) -> Health:
        """Liveness and the current batch; answers without a token."""
        try:
            current = store.current_batch()
        except Exception:
            log.exception("healthz: the store is not readable")
            response.status_code = 503
            return Health(status="degraded", current_batch=None, schema_version=SCHEMA_VERSION)
        return Health(
            status="ok",
            current_batch=current.batch_id if current else None,
            schema_version=SCHEMA_VERSION,
        )

    # ---- scores ----
    @app.get("/v1/scores", response_model=ScoresPage, dependencies=secured, tags=["scores"])
    def list_scores(
        grade: Annotated[list[str] | None, Query(max_length=32)] = None,
        owner: Annotated[str | None, Query(max_length=255)] = None,
        min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
        updated_since: Annotated[datetime | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
        limit: Annotated[
            int | None, Query(ge=1, le=100_000, description="Page size (<= api.max_page_size).")
        ] = None,
    ) -> Response:
        """The current batch, best first; filters combine with AND; follow next_cursor."""
        if limit is not None and limit > api_config.max_page_size:
            raise HTTPException(422, f"limit must be <= {api_config.max_page_size}")
        size = limit or api_config.page_size
        if cursor is not None:
            pinned, after, baseline = decode_cursor(cursor)
        else:
            pinned, after, baseline = None, 0, None
            if updated_since is not None:
                old = store.batch_as_of(_utc(updated_since))
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
            )
        except LookupError as exc:
            if pinned is not None:
                raise HTTPException(410, f"{exc}: restart the sync without a cursor") from exc
            raise HTTPException(404, str(exc)) from exc
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = encode_cursor(info.batch_id, rows[-1]["rank"], baseline) if more else None
        for row in rows:
            row["reasons"] = _raw_reasons(row["reasons"])
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

    @app.get(
        "/v1/leads/{lead_id}", response_model=LeadDetail, dependencies=secured, tags=["scores"]
    )
    def get_lead(
        lead_id: Annotated[str, Path(min_length=1, max_length=255)],
        history: Annotated[
            int | None, Query(ge=1, le=1000, description="Batches (<= api.history_batches).")
        ] = None,
    ) -> LeadDetail:
        """The lead's current score, grade, reasons and rule score, and its last batches."""
        if history is not None and history > api_config.history_batches:
            raise HTTPException(422, f"history must be <= {api_config.history_batches}")
        return lead_detail(store, lead_id, history or api_config.history_batches)

    @app.get("/v1/changes", response_model=ChangesFeed, dependencies=secured, tags=["alerts"])
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

    @app.post("/v1/score", response_model=ScoreResult, dependencies=secured, tags=["scores"])
    def score_one(request: ScoreRequest) -> ScoreResult:
        """Score one lead through the batch's feature code and the champion model."""
        model, version = champion()
        assert scorer is not None  # champion() raised otherwise
        return score_request(request, scorer, model, version)

    from leadscore.serving.page import add_page_routes

    add_page_routes(app, store, api_config, page_auth)
    # Everything built so far (routes, templates, pools, imported libraries) lives as long
    # as the server: move it out of the garbage collector's view. Without this, gen-2
    # collections walking that heap stalled requests by 50-140 ms (p99 of GET /v1/scores
    # 62-70 ms at 200 req/s on 2 cores; 7 ms with it: `make bench-api`).
    gc.collect()
    gc.freeze()
    return app


def lead_detail(store: ScoreStore, lead_id: str, n_history: int) -> LeadDetail:
    """The lead's current row and history; HTTP 404 if no kept batch holds it."""
    rows = store.lead_history(lead_id, n_history)
    if not rows:
        raise HTTPException(404, f"lead {lead_id!r} is in no kept scoring batch")
    current_batch = store.current_batch()
    current_id = current_batch.batch_id if current_batch else None
    current = next((r for r in rows if r["batch_id"] == current_id), None)
    return LeadDetail(
        lead_id=lead_id,
        current=_score_item(current) if current is not None else None,
        batch_id=current_id if current is not None else None,
        history=[HistoryItem(**{k: r[k] for k in HistoryItem.model_fields}) for r in rows],
    )


def score_request(
    request: ScoreRequest, scorer: OnDemandScorer, model: Any, version: str
) -> ScoreResult:
    """Build the posted lead's features with the batch code path and score it."""
    from leadscore.features.builder import build_features, entities_at
    from leadscore.features.config import ValidationConfig
    from leadscore.features.contract import prepare_activities, prepare_leads
    from leadscore.features.validation import ContractError
    from leadscore.models.base import registry_of
    from leadscore.models.scoring import score_frame
    from leadscore.models.training import fit_rules

    config = scorer.features
    if config.market.enabled:
        raise HTTPException(
            422,
            "this model reads the recent conversion rate of closed leads (features.market), "
            "which one posted lead does not carry: read the lead's nightly score instead",
        )
    declared = set(config.attributes.names)
    unknown = sorted(set(request.lead.attributes) - declared)
    if unknown:
        raise HTTPException(422, f"unknown attribute(s) {unknown}: declared are {sorted(declared)}")
    as_of = _utc(request.as_of) if request.as_of else datetime.now(UTC)
    lead = request.lead
    created = _utc(lead.created_at)
    if created > as_of:
        raise HTTPException(422, "lead.created_at is after as_of")
    row: dict[str, Any] = {name: None for name in config.attributes.names}
    row.update(lead.attributes)
    # `segment` may also be a declared attribute (and route a segmented model): either
    # place may carry it, but they may not disagree.
    posted_segment = lead.attributes.get("segment")
    if lead.segment is not None and posted_segment is not None and posted_segment != lead.segment:
        raise HTTPException(422, "lead.segment and lead.attributes.segment differ")
    row.update(
        lead_id=lead.lead_id,
        created_at=created,
        status="open",
        closed_at=pd.NaT,
        owner=lead.owner,
        segment=lead.segment if lead.segment is not None else posted_segment,
    )
    # One posted lead is not a table: the table-level limits (null share, bad-row share)
    # do not apply; every row-level contract rule does, and a refused row is a 422.
    single = ValidationConfig(max_bad_row_share=1.0, max_null_share=1.0)
    try:
        leads = prepare_leads(
            pd.DataFrame([row]),
            source="request.lead",
            attributes=config.attributes,
            validation=single,
        )
    except ContractError as exc:
        raise HTTPException(422, f"lead refused: {exc}") from exc
    if len(leads.quarantine):
        raise HTTPException(422, f"lead refused: {leads.quarantine['reason'].iloc[0]}")
    raw_acts = pd.DataFrame(
        [
            {
                "lead_id": lead.lead_id,
                "activity_type": a.activity_type,
                "occurred_at": _utc(a.occurred_at),
                "value": a.value,
            }
            for a in request.activities
        ],
        columns=["lead_id", "activity_type", "occurred_at", "value"],
    )
    try:
        acts = prepare_activities(
            raw_acts,
            leads.rows,
            source="request.activities",
            known_types=list(config.activity_types),
            validation=single,
        )
    except ContractError as exc:
        raise HTTPException(422, f"activities refused: {exc}") from exc
    if len(acts.quarantine):
        first = acts.quarantine.iloc[0]
        raise HTTPException(422, f"activity {int(first['row'])} refused: {first['reason']}")
    entities = entities_at(leads.rows, pd.Timestamp(as_of))
    X = build_features(leads.rows, acts.rows, entities, config)
    points = config.activity_points()
    rules = fit_rules(X, None, scorer.rules, points)
    frame = score_frame(X, model, rules, registry_of(model), scorer.scoring, leads.rows)
    out = frame.iloc[0].to_dict()
    return ScoreResult(
        lead_id=lead.lead_id,
        probability=float(out["probability"]),
        score=int(out["score"]),
        grade=str(out["grade"]),
        fit=_finite_or_none(out.get("fit")),
        engagement=_finite_or_none(out.get("engagement")),
        rule_score=_finite_or_none(out.get("rule_score")),
        rule_grade=None if out.get("rule_grade") is None else str(out["rule_grade"]),
        reasons=parse_reasons(out.get("reasons")),
        model_version=version,
        as_of=as_of,
    )


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def batch_label(info: BatchInfo | None) -> str:
    """Human label of a batch for the page: id, model version, as-of date."""
    if info is None:
        return "no batch published yet"
    return f"{info.batch_id} (model {info.model_version}, as of {info.as_of:%Y-%m-%d %H:%M} UTC)"
