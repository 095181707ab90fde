"""Errors as JSON: a 422 listing what was invalid, an opaque 500 for anything unexpected."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from leadscore.serving.guard import HttpMiddleware

log = logging.getLogger("leadscore.serving.api")


class NoStackTraces(HttpMiddleware):
    """ASGI middleware: an unexpected exception becomes an opaque 500 (traceback logged).

    Plain ASGI rather than ``BaseHTTPMiddleware``, which costs about a millisecond per
    request. If the response had already started, the connection is just closed.
    """

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
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


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with each error's location, message and type (no echo of the input)."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)
