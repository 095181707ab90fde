"""The request-size limit against a real uvicorn server, over raw sockets: a body over
``api.max_body_bytes`` is answered 413 before it is read (and before the token is
checked), and the connection is closed so the rest never reaches the server."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from tests.serving.live import uvicorn_serving
from tests.serving.test_api import TOKEN, two_batches

LIMIT = 65_536


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("limit")
    store, _ = two_batches(f"sqlite:///{folder}/s.db")
    with pytest.MonkeyPatch.context() as env:
        env.delenv(TOKENS_ENV, raising=False)
        env.delenv(PAGE_TOKENS_ENV, raising=False)
        app = create_app(store.config, ApiConfig(tokens=[TOKEN], max_body_bytes=LIMIT))
    with uvicorn_serving(app) as port:
        yield port
    store.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (5 s at most)."""
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    else:
        pytest.fail(f"the server kept the connection open; got {data[:200]!r}")
    return data


def test_a_declared_50_mb_body_is_refused_before_one_byte_is_sent(server: int) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
        )  # no token, and not one byte of the body
        started = time.monotonic()
        answer = _read_until_closed(sock)
        assert time.monotonic() - started < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head.lower()
    assert b"request body over 65536 bytes" in body


def test_a_chunked_body_is_cut_at_the_limit(server: int) -> None:
    """An endless chunked body (the terminating chunk is never sent): the server answers
    413 once the limit has passed, and closes the connection."""
    chunk = b"x" * 8192
    with _connect(server) as sock:
        sock.sendall(
            f"POST /v1/score HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        try:
            while sent <= 2 * LIMIT:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed first: fine
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"request body over 65536 bytes" in answer


def test_parallel_oversized_posts_do_not_grow_the_server(server: int) -> None:
    """The issue's attack: 8 parallel 50 MB posts without a token. Each is answered 413
    at once and its connection closed; the server's memory (this process) barely moves
    (it grew by ~800 MB when the bodies were read)."""

    def rss_mb() -> float:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(x for x in status if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    payload = b"x" * 1_048_576
    statuses: list[bytes] = []

    def attack() -> None:
        with _connect(server) as sock:
            sock.sendall(
                b"POST /v1/score HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
            )
            try:
                for _ in range(50):
                    sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass
            try:
                statuses.append(_read_until_closed(sock)[:12])
            except OSError:
                statuses.append(b"reset")

    before = rss_mb()
    threads = [threading.Thread(target=attack) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 8
    assert all(s in (b"HTTP/1.1 413", b"reset", b"") for s in statuses), statuses
    assert statuses.count(b"HTTP/1.1 413") >= 1
    assert rss_mb() - before < 100


def test_a_body_under_the_limit_is_still_served(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    conn.request("POST", "/v1/score", body=b"{}", headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 401  # no token: refused before the body is parsed
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    conn.request("POST", "/v1/score", body=b"{}", headers=auth)
    assert conn.getresponse().status == 422  # read, and validated
    conn.close()
