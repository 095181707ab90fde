"""The API's outer guard (serving/guard.py), the page's sessions and log-in
(serving/session.py, serving/login.py): OWASP API Top 10 hardening, in process.

The body limit against a real uvicorn server over a raw socket is in test_body_limit.py.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.page import PAGE_CSP
from leadscore.serving.session import LoginThrottle, SessionStore, same_origin
from tests.serving.test_api import AUTH, TOKEN, two_batches

PAGE_TOKEN = "rep-token"
COOKIE = "leadscore_session"


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    """Build apps over one store with the given ``api`` settings."""
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    store, _ = two_batches(f"sqlite:///{tmp_path}/s.db")

    def build(**api):
        return create_app(
            store.config, ApiConfig(tokens=[TOKEN], page_tokens=[PAGE_TOKEN], **api), store=store
        )

    yield build
    store.close()


def _login(client: TestClient, token: str, **headers: str):
    return client.post(
        "/ui/login", data={"token": token, "next": "/ui"}, headers=headers, follow_redirects=False
    )


def _set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


def _session_cookie(response) -> str:
    (cookie,) = [c for c in _set_cookies(response) if c.startswith(f"{COOKIE}=")]
    return cookie


# ------------------------------------------------------------------- request size


def test_a_body_over_the_limit_is_413_before_the_token_is_checked(make_app):
    client = TestClient(make_app(max_body_bytes=4096))
    big = b'{"lead": "' + b"x" * 5000 + b'"}'
    for headers in ({}, AUTH):  # no token, or a good one: 413 either way, never 401/422
        response = client.post(
            "/v1/score", content=big, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json() == {"detail": "request body over 4096 bytes (api.max_body_bytes)"}
        assert response.headers["connection"] == "close"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert _login(client, "x" * 5000).status_code == 413  # the page's form too
    # under the limit: the token decides (401 before the body is even parsed)
    assert client.post("/v1/score", content=b"{not json").status_code == 401
    assert client.post("/v1/score", headers=AUTH, content=b"{not json").status_code == 422


def test_a_chunked_body_is_counted_as_it_streams_and_cut_at_the_limit(make_app):
    client = TestClient(make_app(max_body_bytes=4096))
    sent: list[int] = []

    def chunks():
        for _ in range(100):  # 100 KB offered
            sent.append(1024)
            yield b"x" * 1024

    response = client.post("/v1/score", headers=AUTH, content=chunks())
    assert response.status_code == 413
    assert "content-length" not in response.request.headers  # really streamed
    small = client.post("/v1/score", headers=AUTH, content=iter([b"{", b"}"]))
    assert small.status_code == 422  # under the limit, streamed: read and validated


# -------------------------------------------------------------------- who may call


def _flat(routes):
    """Every route with a path, included routers' routes too (no prefix is used)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _flat(route.original_router.routes)
        else:
            yield route


def test_every_route_but_healthz_needs_a_token(make_app):
    """Deny by default: each route the app has, called without credentials, is refused
    (401; the page sends the browser to its log-in form), and so is a path it has not."""
    app = make_app()
    client = TestClient(app)
    open_ = {"/healthz", "/ui/login", "/docs-assets"}
    seen = set()
    for route in _flat(app.routes):
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        methods = getattr(route, "methods", None) or {"GET"}
        for method in sorted(methods - {"HEAD"}):
            seen.add(f"{method} {route.path}")
            response = client.request(method, path, follow_redirects=False)
            if route.path in open_ or (route.path == "/ui/logout"):
                assert response.status_code < 500, (method, path)
            elif route.path.startswith("/ui"):
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/ui/login?next=")
            else:
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.headers["www-authenticate"] == "Bearer"
    assert {"GET /v1/scores", "POST /v1/score", "GET /docs", "GET /openapi.json"} <= seen
    assert client.get("/healthz").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200  # no data in it
    assert client.get("/no/such/route").status_code == 401  # no map of what exists
    assert client.get("/no/such/route", headers=AUTH).status_code == 404
    # a page token opens the page, never the API
    rep = {"Authorization": f"Bearer {PAGE_TOKEN}"}
    assert client.get("/ui", headers=rep).status_code == 200
    assert client.get("/v1/scores", headers=rep).status_code == 401
    assert client.get("/docs", headers=rep).status_code == 401


def test_docs_open_for_an_api_token_session_only(make_app):
    client = TestClient(make_app())
    assert client.get("/docs").status_code == 401
    assert _login(client, PAGE_TOKEN).status_code == 303
    assert client.get("/ui").status_code == 200
    for path in ("/docs", "/openapi.json"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert "log in at /ui/login with an API token" in refused.json()["detail"]
    assert _login(client, TOKEN).status_code == 303
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    csp = docs.headers["content-security-policy"]
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/]{43}='; ", csp), csp
    assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert client.get("/openapi.json").json()["info"]["title"] == "leadscore API"
    assert client.get("/v1/scores").status_code == 401  # the session never opens /v1
    client.post("/ui/logout")
    assert client.get("/docs").status_code == 401


# ------------------------------------------------------------------------ sessions


def test_the_cookie_is_a_signed_expiring_session_id_not_the_token(make_app):
    app = make_app(session_hours=8)
    client = TestClient(app)
    ok = _login(client, PAGE_TOKEN)
    assert ok.status_code == 303 and ok.headers["location"] == "/ui"
    cookie = _session_cookie(ok)
    value = cookie.split(";")[0].split("=", 1)[1]
    assert PAGE_TOKEN not in cookie and re.fullmatch(r"[\w-]{43}\.[\w-]{43}", value)
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=28800"} <= attributes
    assert "secure" not in attributes  # plain http, not configured
    assert "leadscore_token=" in "".join(_set_cookies(ok))  # the old raw-token cookie: deleted
    assert client.get("/ui").status_code == 200

    # tampered: one character of the id, or of the signature -> the log-in form
    for i in (0, len(value) - 1):
        forged = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
        assert len(forged) == len(value) and forged != value
        client.cookies.set(COOKIE, forged)
        redirect = client.get("/ui", follow_redirects=False)
        assert redirect.status_code == 303 and redirect.headers["location"].startswith("/ui/login")
        assert f'{COOKIE}=""' in redirect.headers["set-cookie"]  # and the bad cookie dropped
    client.cookies.set(COOKIE, PAGE_TOKEN)  # the raw token as a cookie opens nothing
    assert client.get("/ui", follow_redirects=False).status_code == 303

    # expired: 8 h later the same cookie opens nothing
    client.cookies.set(COOKIE, value)
    assert client.get("/ui").status_code == 200
    sessions = app.state.sessions
    real = sessions.clock
    sessions.clock = lambda: real() + 8 * 3600 + 1
    assert client.get("/ui", follow_redirects=False).status_code == 303
    sessions.clock = real
    assert client.get("/ui", follow_redirects=False).status_code == 303  # gone for good


def test_logout_ends_the_session_and_a_new_login_gets_a_new_id(make_app):
    client = TestClient(make_app())
    first = _session_cookie(_login(client, PAGE_TOKEN)).split(";")[0].split("=", 1)[1]
    second = _session_cookie(_login(client, PAGE_TOKEN)).split(";")[0].split("=", 1)[1]
    assert first != second
    client.cookies.set(COOKIE, first)  # the previous log-in's id died with the new one
    assert client.get("/ui", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, second)
    assert client.get("/ui").status_code == 200
    out = client.post("/ui/logout", follow_redirects=False)
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]
    client.cookies.set(COOKIE, second)  # a copy kept after log-out
    assert client.get("/ui", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("api", "base_url", "peer", "forwarded", "secure"),
    [
        ({}, "http://testserver", "testclient", None, False),
        ({}, "https://testserver", "testclient", None, True),
        ({"secure_cookies": True}, "http://testserver", "testclient", None, True),
        ({"trusted_proxies": ["10.0.0.1"]}, "http://testserver", "10.0.0.1", "https", True),
        ({"trusted_proxies": ["10.0.0.1"]}, "http://testserver", "10.0.0.9", "https", False),
    ],
)
def test_the_cookie_is_secure_over_https(make_app, api, base_url, peer, forwarded, secure):
    client = TestClient(make_app(**api), base_url=base_url, client=(peer, 1234))
    headers = {"x-forwarded-proto": forwarded} if forwarded else {}
    cookie = _session_cookie(_login(client, PAGE_TOKEN, **headers))
    assert ("; secure" in cookie.lower()) is secure, cookie
    hsts = client.get("/healthz", headers=headers).headers.get("strict-transport-security")
    https = secure and "secure_cookies" not in api  # really over https, not just configured
    assert (hsts == "max-age=31536000") is https


def test_session_store_unit():
    now = [1000.0]
    store = SessionStore(3600, clock=lambda: now[0], capacity=2)
    a = store.create("api")
    assert store.get(a).kind == "api"
    b = store.create("page")
    assert store.get(b).kind == "page"
    c = store.create("page")  # over capacity: the oldest goes
    assert store.get(a) is None and store.get(c) is not None
    assert store.get(None) is None and store.get("") is None and store.get("x.y.z") is None
    assert store.get(b.split(".")[0] + ".forged") is None
    other = SessionStore(3600, clock=lambda: now[0])  # another process's key
    assert other.get(b) is None
    now[0] += 3600
    assert store.get(b) is None  # expired
    store.end("nonsense")  # harmless


# ------------------------------------------------------------------------ throttling


def test_login_throttle_backs_off_exponentially_and_resets():
    now = [0.0]
    throttle = LoginThrottle(3, 1.0, 10.0, clock=lambda: now[0])
    assert [throttle.failed("ip") for _ in range(3)] == [0, 0, 0]
    assert throttle.retry_after("ip") == 0
    waits = [throttle.failed("ip") for _ in range(6)]
    assert waits == [1, 2, 4, 8, 10, 10]  # doubles, capped
    assert throttle.retry_after("ip") == 10 and throttle.retry_after("other") == 0
    now[0] += 9.5
    assert throttle.retry_after("ip") == 1
    now[0] += 0.5
    assert throttle.retry_after("ip") == 0
    assert throttle.failed("ip") == 10  # still counting: the next failure waits as long
    throttle.succeeded("ip")
    assert throttle.retry_after("ip") == 0 and throttle.failed("ip") == 0
    throttle.failed("ip"), throttle.failed("ip"), throttle.failed("ip")
    now[0] += 30  # quiet longer than the longest wait after the lock: forgotten
    assert throttle.retry_after("ip") == 0 and throttle.failed("ip") == 0


def test_login_is_throttled_per_client_with_retry_after(make_app):
    app = make_app(login_free_failures=2, login_backoff_seconds=30, login_backoff_max_seconds=600)
    client = TestClient(app, client=("10.1.1.1", 5000))
    for _ in range(2):
        wrong = _login(client, "guess")
        assert wrong.status_code == 401 and "retry-after" not in wrong.headers
        assert "Unknown token.</p>" in wrong.text
    third = _login(client, "guess")
    assert third.status_code == 401 and third.headers["retry-after"] == "30"
    assert "Unknown token. Wait 30 s before trying again." in third.text
    # while waiting, every attempt is 429, the right token too (no guessing through it)
    blocked = _login(client, PAGE_TOKEN)
    assert blocked.status_code == 429 and 0 < int(blocked.headers["retry-after"]) <= 30
    assert "Too many wrong tokens from your address: try again in" in blocked.text
    assert blocked.headers["content-security-policy"] == PAGE_CSP
    # another client is not affected
    other = TestClient(app, client=("10.1.1.2", 5000))
    assert _login(other, PAGE_TOKEN).status_code == 303
    # the wait over, the next failure doubles it; a success resets
    throttle = app.state.login_throttle
    real = throttle.clock
    throttle.clock = lambda: real() + 31
    assert _login(client, "guess").headers["retry-after"] == "60"
    throttle.clock = lambda: real() + 31 + 61
    assert _login(client, PAGE_TOKEN).status_code == 303
    assert _login(client, "guess").status_code == 401
    assert "retry-after" not in _login(client, "guess").headers  # free failures again


def test_throttling_counts_the_client_behind_a_trusted_proxy(make_app):
    app = make_app(login_free_failures=1, trusted_proxies=["10.0.0.1"])
    proxy = TestClient(app, client=("10.0.0.1", 5000))
    one = {"x-forwarded-for": "198.51.100.7"}
    assert _login(proxy, "guess", **one).status_code == 401
    assert _login(proxy, "guess", **one).headers["retry-after"] == "1"
    assert _login(proxy, PAGE_TOKEN, **one).status_code == 429
    two = {"x-forwarded-for": "198.51.100.8"}
    assert _login(proxy, PAGE_TOKEN, **two).status_code == 303  # a different client


# ---------------------------------------------------------------------------- origin


def test_login_refuses_a_foreign_origin(make_app):
    client = TestClient(make_app(allowed_origins=["https://leads.example.com/"]))
    foreign = [
        {"origin": "https://evil.example"},
        {"origin": "null"},  # a sandboxed frame, a file, a cross-origin redirect
        {"origin": "http://testserver:8080"},  # another port is another origin
        {"origin": "https://testserver"},  # another scheme too
        {"referer": "https://evil.example/page"},  # no Origin: the Referer decides
    ]
    for headers in foreign:
        refused = _login(client, PAGE_TOKEN, **headers)
        assert refused.status_code == 403, headers
        assert "Cross-origin post refused." in refused.text and COOKIE not in refused.headers.get(
            "set-cookie", ""
        )
    for headers in (
        {"origin": "http://testserver"},
        {"origin": "https://leads.example.com"},  # api.allowed_origins
        {"referer": "http://testserver/ui/login?next=/ui"},
        {},  # neither header: not a browser, so not a forgery
    ):
        assert _login(client, PAGE_TOKEN, **headers).status_code == 303, headers
    # log-out too: a foreign post does not end the session
    assert client.post("/ui/logout", headers={"origin": "https://evil.example"}).status_code == 403
    assert client.get("/ui").status_code == 200


def test_same_origin_unit():
    own = "http://h:8000"
    assert same_origin("http://h:8000", None, own)
    assert same_origin("HTTP://H:8000", None, own)
    assert not same_origin("http://h:8001", "http://h:8000/ui", own)  # Origin wins
    assert same_origin(None, "http://h:8000/ui/login", own)
    assert not same_origin(None, "not a url", own)
    assert same_origin(None, None, own)


# --------------------------------------------------------------------------- headers


def test_security_headers_on_every_page_and_api_response(make_app):
    client = TestClient(make_app())
    _login(client, PAGE_TOKEN)
    pages = [
        client.get("/ui"),
        client.get("/ui/leads/a"),
        client.get("/ui/leads/nope"),  # 404 page
        client.get("/ui/login"),
    ]
    assert [p.status_code for p in pages] == [200, 200, 404, 200]
    for page in pages:
        assert page.headers["content-security-policy"] == PAGE_CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text and "style=" not in page.text
    assert "script-src" not in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/]{43}='", PAGE_CSP)
    anon = TestClient(make_app())
    for response in (
        anon.get("/ui", follow_redirects=False),
        anon.get("/v1/scores"),
        anon.get("/healthz"),
        anon.get("/v1/scores", headers=AUTH),
        anon.get("/v1/leads/nope", headers=AUTH),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # plain http
    assert anon.get("/v1/scores", headers=AUTH).headers["referrer-policy"] == "no-referrer"
    asset = anon.get("/docs-assets/swagger-ui.css")
    assert asset.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in asset.headers  # Swagger UI's files may be cached
