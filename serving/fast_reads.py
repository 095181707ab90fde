"""The two hot reads' fast path: ``GET /v1/scores`` and ``GET /v1/leads/{id}`` answered
before FastAPI's routing, in the event loop where they can be (issue #19, `make bench-api`).

``FastReads`` sits innermost of the app's middleware (``serving/api.py``), so the proxy
headers, security headers, body limit and token gate apply as to every route; it checks
the bearer token again itself. On a SQLite file the reads are ``serving/hot_reads.py``'s
(raw SQL, rows rendered from the stored bytes); on any other store, the routes' own code
(``serving/routes.py``) on a worker thread. Either way the answer is the route's, byte for
byte (tests/serving/test_fast_reads.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import HTTPException, Response

from leadscore.serving import routes
from leadscore.serving.auth import TokenAuth
from leadscore.serving.config import ApiConfig
from leadscore.serving.guard import HttpMiddleware
from leadscore.serving.hot_reads import HotPages, SlowReadError
from leadscore.serving.store import ScoreStore

_SCORES_TEXT = {"grade": 32, "owner": 255, "cursor": 2048}
"""``GET /v1/scores``'s parameters :class:`FastReads` takes, with the route's max length."""
_LEADS = "/v1/leads/"
_JSON = b"application/json"


def _whole(value: str, most: int) -> int | None:
    """A plain positive integer <= ``most`` (as the route's Query(ge=1, le=most) takes it)."""
    if not re.fullmatch(r"[1-9][0-9]{0,9}", value) or int(value) > most:
        return None
    return int(value)


class FastReads(HttpMiddleware):
    """``GET /v1/scores`` and ``GET /v1/leads/{id}`` with their common, plainly valid
    parameters, answered without FastAPI's routing and per-request parameter solving (half
    of a page's CPU: `make bench-api`): on a SQLite file by serving/hot_reads.py in the
    event loop, elsewhere (``hot`` False, or another database) by the route's own code on
    a worker thread.

    Anything else (another or a repeated parameter, an empty or over-long value, a number
    the route would refuse or coerce, no valid token, an error answer such as 404 or an
    invalid cursor's 400) goes on to the FastAPI route, which answers it as before. Sits
    inside ``AccessGate`` and checks the bearer token again itself.
    """

    def __init__(
        self,
        app: Any,
        store: ScoreStore,
        api_config: ApiConfig,
        auth: TokenAuth,
        hot: bool = True,
    ) -> None:
        super().__init__(app)
        self.store, self.api_config, self.auth = store, api_config, auth
        # on a SQLite file (and ``hot``), serving/hot_reads.py's reads; else the routes'
        self.pages = HotPages.of(store) if hot else None

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        call = self._plain(scope) if scope["method"] == "GET" else None
        if call is not None:
            try:
                try:
                    # in the event loop: a read from the SQLite file costs well under a
                    # millisecond of CPU and waits on nothing, and a hop to a worker thread
                    # and back cost a fifth of the process's time (`make bench-api`)
                    answer = call(True)
                except SlowReadError:
                    answer = await anyio.to_thread.run_sync(call, False)
            except HTTPException:
                answer = None  # the route answers it (the same error, the same way as ever)
            if isinstance(answer, bytes):  # a page's JSON (serving/hot_reads.py)
                length = str(len(answer)).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", length), (b"content-type", _JSON)],
                    }
                )
                await send({"type": "http.response.body", "body": answer})
                return
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _plain(self, scope: Any) -> Callable[[bool], Response | bytes | None] | None:
        """The read to run, or None to leave the request to FastAPI."""
        path: str = scope["path"]
        if scope.get("root_path") or not (path == "/v1/scores" or path.startswith(_LEADS)):
            return None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token is not None:
                    return None
                token = value.decode("latin-1")
        if (
            token is None
            or token[:7].lower() != "bearer "
            or not self.auth.valid(token[7:].strip())
        ):
            return None
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if path == "/v1/scores":
            return self._scores(query)
        lead_id = path[len(_LEADS) :]
        if not lead_id or "/" in lead_id or len(lead_id) > 255:
            return None
        history = None
        for key, value in query:
            if key != "history" or history is not None:
                return None
            history = _whole(value, 1000)
            if history is None:
                return None
        if self.pages is not None:
            pages = self.pages
            return lambda inline: pages.lead(self.api_config, lead_id, history, inline=inline)
        return _threaded(
            functools.partial(routes.lead_page, self.store, self.api_config, lead_id, history)
        )

    def _scores(
        self, query: list[tuple[str, str]]
    ) -> Callable[[bool], Response | bytes | None] | None:
        grades: list[str] = []
        single: dict[str, str] = {}
        for key, value in query:
            if key == "limit" and key not in single:
                single[key] = value
            elif key not in _SCORES_TEXT or not value or len(value) > _SCORES_TEXT[key]:
                return None
            elif key == "grade":
                grades.append(value)
            elif key in single:
                return None
            else:
                single[key] = value
        limit = None
        if "limit" in single and (limit := _whole(single["limit"], 100_000)) is None:
            return None
        grade, owner, cursor = grades or None, single.get("owner"), single.get("cursor")
        if self.pages is not None:  # the same answer from the stored bytes (hot_reads.py)
            pages = self.pages
            return lambda inline: pages.page(
                self.api_config, grade, owner, cursor, limit, inline=inline
            )
        return _threaded(
            functools.partial(
                routes.scores_page,
                self.store,
                self.api_config,
                grade=grade,
                owner=owner,
                cursor=cursor,
                limit=limit,
            )
        )


def _threaded(read: Callable[[], Response]) -> Callable[[bool], Response]:
    """``read`` as FastReads calls it, always on a worker thread."""

    def call(inline: bool) -> Response:
        if inline:
            raise SlowReadError
        return read()

    return call
