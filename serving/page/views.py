"""The page's routes: ``/ui`` (the list), ``/ui/compare`` (model vs rules),
``/ui/changes`` (since the last batch), ``/ui/download.csv`` and ``/ui/leads/{id}``; the
tabs ``/ui/monitor`` (page/monitor.py) and ``/ui/calls`` (page/calls.py) are mounted here.

Every route checks the session (or a bearer token) first and sends a stranger to the
log-in form; every read pins the current batch once, so the list, its counts and its
plot describe the same batch even while a new one is published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import Connection

from leadscore.models.routing.config import Rep
from leadscore.serving.auth import SESSION_COOKIE, TokenAuth, bearer_of
from leadscore.serving.config import ApiConfig
from leadscore.serving.login import add_login_routes
from leadscore.serving.lookup import batch_label, detail_of, lead_rows
from leadscore.serving.page import reads
from leadscore.serving.page.cache import BatchCache
from leadscore.serving.page.calls import add_calls_routes
from leadscore.serving.page.charts import (
    contribution_chart,
    history_chart,
    meter,
    quadrant_chart,
    rules_chart,
)
from leadscore.serving.page.download import csv_stream, file_name
from leadscore.serving.page.filters import CHANGE_KINDS, ROWS_PER_PAGE, ListQuery
from leadscore.serving.page.monitor import add_monitor_routes
from leadscore.serving.page.render import (
    ago,
    compile_templates,
    json_list,
    json_object,
    lead_view,
    render,
)
from leadscore.serving.session import SessionStore
from leadscore.serving.store import BatchInfo, ScoreStore

One = Annotated[str | None, Query(max_length=255)]


def add_page_routes(
    app: FastAPI,
    store: ScoreStore,
    config: ApiConfig,
    auth: TokenAuth,
    api_auth: TokenAuth,
    sessions: SessionStore,
    team: Sequence[Rep] = (),
) -> None:
    """Mount the sales-ops page on ``app``: ``auth`` holds every token that opens the page,
    ``api_auth`` the API tokens among them (their sessions may read ``/docs`` too);
    ``team`` (``routing.reps``) is whose call lists the Calls tab shows."""
    cache = BatchCache()
    compile_templates()

    def access(request: Request) -> str | None:
        """``"api"`` or ``"page"``: the kind of token behind the request; None: a stranger."""
        bearer = bearer_of(request)
        if bearer is not None:
            return ("api" if api_auth.valid(bearer) else "page") if auth.valid(bearer) else None
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        return session.kind if session is not None else None

    def authed(request: Request) -> bool:
        return access(request) is not None

    def download_cap(request: Request) -> int | None:
        """Rows a download may hold: every row for an API token, ``api.max_page_size`` for
        a page token (a rep's token opens no bulk export, as it opens no ``/v1``)."""
        return None if access(request) == "api" else config.max_page_size

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)
        if SESSION_COOKIE in request.cookies:  # tampered or expired: drop it
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def cached(info: BatchInfo, key: tuple, read: Callable[[Connection], Any]) -> Any:
        """``read`` over the batch, once per batch and key (serving/page/cache.py)."""

        def compute() -> Any:
            with store.engine.connect() as conn:
                return read(conn)

        return cache.get(info.batch_id, key, compute)

    def batch_facets(info: BatchInfo) -> dict[str, Any]:
        """A batch's filter choices (grades, owners, segments, attribute names)."""
        b = info.batch_id
        return cached(
            info,
            ("facets",),
            lambda conn: {
                "grades": reads.distinct(conn, b, "grade"),
                "owners": reads.distinct(conn, b, "owner"),
                "segments": reads.distinct(conn, b, "segment"),
                "attr_keys": reads.attribute_keys(conn, b),
                "cuts": reads.cell_cuts(conn, b),
            },
        )

    def list_context(info: BatchInfo | None, query: ListQuery) -> dict[str, Any]:
        """What every list view shows around its rows: the batch, the filter's choices
        and the counts per grade over the current filter."""
        context: dict[str, Any] = {
            "authed": True,
            "query": query,
            "batch_label": batch_label(info),
            "page_size": ROWS_PER_PAGE,
            "grades": sorted(query.grades),
            "grade_counts": {},
            "owners": [],
            "segments": [],
            "attr_keys": [],
        }
        if info is not None:
            found = batch_facets(info)
            context.update({k: v for k, v in found.items() if k not in ("grades", "cuts")})
            context["grades"] = sorted({*found["grades"], *query.grades})
            found = cached(
                info,
                ("groups", query.filter_key(skip=("grade", "cell"))),
                lambda conn: reads.groups(conn, info.batch_id, query),
            )
            context["counts"] = reads.summary(found, query)
            context["grade_counts"] = context["counts"]["grades"]
        return context

    add_login_routes(app, config, render, auth, api_auth, sessions)
    add_monitor_routes(app, store, authed, login_redirect)
    add_calls_routes(app, store, team, authed, login_redirect)

    @app.get("/ui", include_in_schema=False)
    def leads_page(request: Request) -> Response:
        if not authed(request):
            return login_redirect(request)
        query = ListQuery.parse(**_params(request))
        info = store.current_batch()
        context = list_context(info, query)
        rows: list[dict[str, Any]] = []
        total, changes, plot = 0, {}, ""
        if info is not None:
            b = info.batch_id
            quad = context["counts"]
            total = quad["total"]
            changes = cached(info, ("changes",), lambda c: reads.change_counts(c, b))
            with store.engine.connect() as conn:
                raw = reads.list_page(conn, b, query)
            rows = [lead_view(r, info.as_of) for r in raw]
            if quad["cells"]:
                links = {c: query.url("/ui", cells=(c,)) for c in quad["cells"]}
                cuts = batch_facets(info)["cuts"]
                plot = quadrant_chart(quad["grid"], quad["cells"], links, cuts=cuts)
        return render(
            "list.html",
            rows=rows,
            total=total,
            changes=changes,
            quadrant=plot,
            download_cap=download_cap(request),
            **context,
        )

    @app.get("/ui/compare", include_in_schema=False)
    def compare_page(
        request: Request, side: Annotated[str | None, Query(max_length=8)] = None
    ) -> Response:
        if not authed(request):
            return login_redirect(request)
        side = side if side in ("model", "rules") else None
        query = ListQuery.parse(**_params(request))
        if side:
            query = ListQuery(**{**query.__dict__, "extra": (("side", side),)})
        info = store.current_batch()
        context = list_context(info, query)
        rows: list[dict[str, Any]] = []
        total, crosstab = 0, {}
        if info is not None:
            b = info.batch_id
            total = cached(
                info,
                ("compare", query.filter_key()),
                lambda c: reads.compare_count(c, b, query, side),
            )
            crosstab = cached(
                info,
                ("crosstab", query.filter_key(skip=("grade",))),
                lambda c: reads.grade_crosstab(c, b, query),
            )
            with store.engine.connect() as conn:
                raw = reads.compare_page(conn, b, query, side)
            n = max(info.n_rows, 1)
            for r in raw:
                view = lead_view(r, info.as_of)
                view["model_top"] = _top(r["rank"], n)
                view["rules_top"] = _top(r["rule_rank"], n)
                view["gap"] = round(100 * abs(r["rank"] - r["rule_rank"]) / n)
                rows.append(view)
        return render(
            "compare.html",
            rows=rows,
            total=total,
            side=side or "",
            available=reads.has("rule_rank"),
            crosstab=crosstab,
            crosstab_rows=sorted({g for g, _ in crosstab}),
            crosstab_cols=sorted({r for _, r in crosstab if r is not None}),
            **context,
        )

    @app.get("/ui/changes", include_in_schema=False)
    def changes_page(
        request: Request,
        kind: Annotated[list[str] | None, Query(max_length=16)] = None,
        owner: One = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> Response:
        if not authed(request):
            return login_redirect(request)
        kinds = [k for k in kind or () if k in CHANGE_KINDS]
        owner = owner or None
        info = store.current_batch()
        rows: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        total = 0
        if info is not None:
            counts = cached(info, ("changes",), lambda c: reads.change_counts(c, info.batch_id))
            with store.engine.connect() as conn:
                rows, total = reads.change_page(conn, info.batch_id, kinds, owner, page)

        def at(n: int) -> str:
            params = [("kind", k) for k in kinds] + ([("owner", owner)] if owner else [])
            return "/ui/changes?" + urlencode([*params, ("page", n)])

        more = page * ROWS_PER_PAGE < total
        return render(
            "changes.html",
            authed=True,
            owners=batch_facets(info)["owners"] if info is not None else [],
            batch_label=batch_label(info),
            rows=rows,
            counts=counts,
            kinds=kinds,
            owner=owner,
            page=page,
            prev_url=at(page - 1),
            next_url=at(page + 1) if more else None,
        )

    @app.get("/ui/download.csv", include_in_schema=False)
    def download(request: Request) -> Response:
        if not authed(request):
            return login_redirect(request)
        info = store.current_batch()
        if info is None:
            return render("missing.html", 404, authed=True, message="No batch published yet.")
        query = ListQuery.parse(**_params(request))
        cap = download_cap(request)
        return StreamingResponse(
            csv_stream(store, info, query, cap),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{file_name(info, query)}"',
                "Cache-Control": "no-store",
            },
        )

    @app.get("/ui/leads/{lead_id}", include_in_schema=False)
    def lead_page(
        request: Request, lead_id: Annotated[str, Path(min_length=1, max_length=255)]
    ) -> Response:
        if not authed(request):
            return login_redirect(request)
        try:
            rows, info = lead_rows(store, lead_id, config.history_batches)
        except HTTPException as exc:
            return render("missing.html", exc.status_code, authed=True, message=str(exc.detail))
        lead = detail_of(lead_id, rows, info)
        context: dict[str, Any] = {"authed": True, "lead": lead, "cur": None}
        if lead.current is not None and info is not None:
            row = next(r for r in rows if r["batch_id"] == info.batch_id)
            cur = lead_view(row, info.as_of)
            timeline = json_list(row.get("timeline"))
            for item in timeline:
                item.setdefault("value", None)
                item["ago"] = ago(item.get("at"), info.as_of)
                item["at"] = str(item.get("at") or "")
            point = None
            if cur["fit_score"] is not None and cur["engagement_score"] is not None:
                point = (cur["fit_score"], cur["engagement_score"])
            context.update(
                cur=cur,
                n_leads=info.n_rows,
                chart=contribution_chart(cur["reasons"]),
                rules_chart=rules_chart(cur["rule_reasons"]),
                fit_meter=meter(cur["fit_score"], "Fit", "fit-score"),
                engagement_meter=meter(cur["engagement_score"], "Engagement", "engagement-score"),
                quadrant=quadrant_chart(
                    {}, {}, point=point, chart_id="lead-quadrant", cuts=batch_facets(info)["cuts"]
                )
                if point
                else "",
                attributes=json_object(row.get("attributes")),
                timeline=timeline,
            )
        history = history_chart([h.score for h in reversed(lead.history)])
        return render("lead.html", history_chart=history, **context)


def _params(request: Request) -> dict[str, Any]:
    """The list views' parameters from the query string (repeatable ones as lists, every
    value cut at 255 characters, at most 20 of a kind)."""
    params = request.query_params
    out: dict[str, Any] = {}
    for key in ("q", "owner", "segment", "attr_key", "attr_value", "sort", "order"):
        value = params.get(key)
        out[key] = value[:255] if value is not None else None
    for key in ("grade", "cell", "attr"):
        out[key] = [v[:255] for v in params.getlist(key)][:20]
    try:
        out["page"] = max(1, min(int(params.get("page", "1")), 100_000))
    except ValueError:
        out["page"] = 1
    return out


def _top(rank: int, n: int) -> int:
    """``rank`` among ``n`` leads as "top X%" (1 = the best percent)."""
    return max(1, round(100 * rank / n))
