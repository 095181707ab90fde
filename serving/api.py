"""The HTTP API over the scores store: CRM syncs, alerts, on-demand scoring, sales-ops page.

``create_app`` builds a FastAPI app from the store's config, the ``api`` section and,
optionally, an :class:`OnDemandScorer` (feature/rules/scoring config plus a callable that
loads the champion model). The app never imports ``pipelines``: the CLI (``leadscore
serve``) hands it a loader built on ``pipelines.tracking.load_champion``; tests hand it a
small fitted model.

Endpoints (all under bearer-token auth except ``/healthz``; docs at ``/docs``, the schema
at ``/openapi.json``, both behind an API token: a bearer header, or a page session opened
with one at ``/ui/login``, so a browser can read them; Swagger UI's own files, which hold
no data, at ``/docs-assets`` without one, so the docs need no CDN):

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
``GET /v1/monitor``
    The latest monitor run (decision, reasons), every judged batch's metrics, the newest
    batch's drift (serving/monitor.py); ``ran: false`` before the first run.
``GET /v1/reps``, ``GET /v1/reps/{rep_id}/calls``, ``GET /v1/calls/unassigned``
    The team with today's counts, a rep's call list, the leads no rep could take
    (serving/calls.py).
``GET /healthz``
    Liveness plus the current batch id; no token.
``/ui``
    The sales-ops page (serving/page.py).

Modules: ``config`` (the ``api``/``store`` sections), ``auth`` (tokens), ``guard`` (body
limit, deny-by-default access, security headers: ASGI middleware that runs before any
route), ``session`` and ``login`` (the page's sessions, throttled log-in), ``schemas``
(request and response models), ``routes`` (``/v1``), ``lookup`` (a lead's detail),
``on_demand`` (``POST /v1/score``), ``errors`` and ``page`` (``/ui``); this module
assembles them.

Errors are JSON ``{"detail": ...}`` with a 4xx status for bad input; an unexpected error
answers 500 with an opaque ``error_id`` (logged with its traceback server-side): no stack
trace ever reaches a client.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from leadscore.models.routing.config import Rep
from leadscore.serving.auth import TokenAuth, bearer_dependency
from leadscore.serving.calls import calls_router
from leadscore.serving.config import (
    PAGE_TOKENS_ENV,
    TOKENS_ENV,
    ApiConfig,
    StoreConfig,
    api_tokens,
)
from leadscore.serving.errors import NoStackTraces, validation_error
from leadscore.serving.fast_reads import FastReads
from leadscore.serving.guard import AccessGate, BodyLimit, SecurityHeaders, docs_allowed
from leadscore.serving.monitor import monitor_router
from leadscore.serving.on_demand import ModelLoader, OnDemandScorer
from leadscore.serving.routes import decode_cursor, encode_cursor, v1_router
from leadscore.serving.schemas import Health
from leadscore.serving.session import SessionStore
from leadscore.serving.store import SCHEMA_VERSION, ScoreStore

__all__ = [
    "DOCS_ASSETS",
    "PAGE_TOKENS_ENV",
    "TOKENS_ENV",
    "ApiConfig",
    "ModelLoader",
    "OnDemandScorer",
    "api_tokens",
    "create_app",
    "decode_cursor",
    "encode_cursor",
]

DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's JavaScript and CSS are served (no token: they hold no data)."""

log = logging.getLogger(__name__)


def create_app(
    store_config: StoreConfig,
    api_config: ApiConfig | None = None,
    scorer: OnDemandScorer | None = None,
    store: ScoreStore | None = None,
    team: Sequence[Rep] = (),
) -> FastAPI:
    """The FastAPI app over the store at ``store_config`` (created if needed); ``team``
    is ``routing.reps``, whose call lists ``/v1/reps`` and the page's Calls tab show."""
    api_config = api_config or ApiConfig()
    tokens, page_tokens = api_tokens(api_config)
    api_auth = TokenAuth(tokens)
    page_auth = TokenAuth([*tokens, *page_tokens])
    store = store or ScoreStore(store_config)
    store.create()

    sessions = SessionStore(api_config.session_hours * 3600)
    require_token = bearer_dependency(api_auth)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run on worker threads, each holding a store connection: no more
        # threads than the pool keeps open. With anyio's 40, a burst opened and closed
        # overflow SQLite connections per request (PRAGMAs, a cold page cache) and, at
        # 500 req/s, waited out the pool's timeout (500s): `make bench-api`.
        size = getattr(store.engine.pool, "size", None)
        if callable(size):
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(2, size())
        threading.Thread(target=_warm_pages, args=(store,), daemon=True).start()
        yield

    app = FastAPI(
        lifespan=lifespan,
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
    app.state.sessions = sessions

    # Outermost last: the proxy's headers first, then security headers on every answer
    # (500s too), the body limit and the token gate before any route reads a byte; the
    # two hot reads' fast path last (serving/fast_reads.py).
    app.add_middleware(FastReads, store=store, api_config=api_config, auth=api_auth)
    app.add_middleware(AccessGate, api_auth=api_auth, sessions=sessions)
    app.add_middleware(BodyLimit, limit=api_config.max_body_bytes)
    app.add_middleware(NoStackTraces)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(api_config.trusted_proxies))

    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]

    def require_docs_access(request: Request) -> None:
        if not docs_allowed(request, api_auth, sessions):
            raise HTTPException(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    docs_access = [Depends(require_docs_access)]

    # ---- docs (behind the token: the schema names every field of the data) ----
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    # Swagger UI's own files, served from the installed fastapi-offline package rather than
    # a CDN, so the docs work where a self-hosted install has no internet. They hold no data.
    assets = str(files("fastapi_offline") / "static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False, dependencies=docs_access)
    def openapi_json() -> JSONResponse:
        return JSONResponse(app.openapi())

    docs_page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="leadscore API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )
    docs_csp = _docs_csp(bytes(docs_page.body).decode())

    @app.get("/docs", include_in_schema=False, dependencies=docs_access)
    def docs() -> Response:
        return Response(
            docs_page.body, media_type="text/html", headers={"Content-Security-Policy": docs_csp}
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

    app.include_router(v1_router(store, api_config, scorer, require_token))
    app.include_router(monitor_router(store, require_token))
    app.include_router(calls_router(store, api_config, team, require_token))

    from leadscore.serving.page import add_page_routes

    add_page_routes(app, store, api_config, page_auth, api_auth, sessions, team)
    # Everything built so far (routes, templates, pools, imported libraries) lives as long
    # as the server: move it out of the garbage collector's view. Without this, gen-2
    # collections walking that heap stalled requests by 50-140 ms (p99 of GET /v1/scores
    # 62-70 ms at 200 req/s on 2 cores; 7 ms with it: `make bench-api`).
    gc.collect()
    gc.freeze()
    return app


def _warm_pages(store: ScoreStore) -> None:
    """Build the current batch's page index (grade and owner pages: about 2 s at 1M leads,
    serving/store/page_index.py) while the server starts, not in its first such request."""
    try:
        store.page(owner="", limit=1)
    except LookupError:
        pass  # nothing published yet
    except Exception:
        log.exception("building the page index of the current batch failed")


def _docs_csp(html: str) -> str:
    """Swagger UI's Content-Security-Policy: its scripts and styles from this server, its
    one inline script allowed by hash (the page is a constant), data: images (its icons),
    requests to this server only ("Try it out"), never in a frame."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )
