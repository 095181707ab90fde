"""Load test of the HTTP API on 127.0.0.1: open-loop requests at a fixed rate, p50/p95/p99.

Serves the cached store of ``--leads`` leads x 2 batches (bench/api_store.py: built once
under bench/out through the real ScoreStore, rows sized like a real batch's) with
``leadscore serve`` (``--workers``: by default as many as it runs by default) in a
subprocess on a free loopback port, then, after ``--warmup`` unmeasured seconds, sends
``--rate`` requests per second for ``--duration`` seconds: half ``GET /v1/scores`` (a page
of 100: the first, a cursor from an earlier page, a deep keyset page, a grade, an owner),
half ``GET /v1/leads/{id}`` (a random lead). Requests are sent on schedule whatever the
server's pace (open loop), and latency is measured from the scheduled send time, so a
slow server cannot hide its queueing (no coordinated omission).

Prints one JSON line: requests, errors, the achieved send rate and the completed rate,
p50/p95/p99/max in ms per endpoint and per variant, server and client CPU per request,
the store's indexes; exits 1 if any request failed. Target (issue #19): p99 <= 20 ms.

    .venv/bin/python bench/api_load.py --rate 500 --duration 30      # = make bench-api
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import orjson
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_store import (  # noqa: E402
    OWNERS,
    PROPOSED_INDEXES,
    add_indexes,
    cached_store,
    scores_indexes,
)
from leadscore.pipelines.cli import default_workers  # noqa: E402
from leadscore.serving.config import TOKENS_ENV  # noqa: E402
from leadscore.serving.routes import encode_cursor  # noqa: E402

TOKEN = "bench-token"
TARGET_P99_MS = 20
TIMEOUT_S = 10.0
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
LEADSCORE = str(Path(sys.executable).with_name("leadscore"))
GRADES = ("A", "B", "C", "D")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, workers: int, out: Path) -> subprocess.Popen[bytes]:
    """``leadscore serve`` over the store, as it runs in production (its workers, its
    event loop and HTTP parser), with a config naming the store and the port."""
    settings = yaml.safe_load((ROOT / "leadscore.yaml").read_text(encoding="utf-8"))
    settings["store"] = {**settings.get("store", {}), "url": url}
    settings["api"] = {**settings.get("api", {}), "host": "127.0.0.1", "port": port}
    config = out / f"api-bench-{port}.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = {**os.environ, TOKENS_ENV: TOKEN}
    cmd = [LEADSCORE, "serve", "--config", str(config), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, cwd=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API server did not come up within 120 s (or exited)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn's workers): a
    figure that, unlike latency, stays meaningful when other jobs share the cores."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1000
    return {
        "n": len(values),
        **{f"p{q}_ms": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)},
        "max_ms": round(float(arr.max()), 2),
    }


class Connection:
    """One keep-alive HTTP/1.1 connection with a minimal, cheap request/response loop.

    httpx costs 2-5 ms of client CPU per request, which on 2 shared cores made the load
    generator the bottleneck; raw asyncio streams cost a fraction of that, so the numbers
    measure the server.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body


ENDPOINTS = {"scores": "GET /v1/scores", "lead": "GET /v1/leads/{id}"}


async def drive(
    port: int,
    n_leads: int,
    batch_id: str,
    rate: float,
    duration: float,
    server_pid: int,
    warmup: float,
    profile: str | None = None,
) -> dict:
    """Open-loop load: request i is due at start + i / rate, measured from that instant.

    Due requests go to a pool of keep-alive connections; when all are busy a request
    waits, and that wait counts in its latency (as it would for a real client). The
    first ``warmup`` seconds run the same load unmeasured (connections, caches).
    """
    rng = random.Random(7)
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    cursors: list[str] = []
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(Connection(port))

    def target() -> tuple[str, str, str]:
        """(endpoint, variant, path): half pages of 100 (the first page, a cursor from an
        earlier page, a deep keyset page of a sync part-way, a grade, an owner), half a
        random lead."""
        if rng.random() < 0.5:
            params: dict = {"limit": 100}
            pick = rng.random()
            if pick < 0.2:
                variant = "first page"
            elif pick < 0.35 and cursors:
                variant, params["cursor"] = "next page", rng.choice(cursors)
            elif pick < 0.5:
                variant = "deep page"
                params["cursor"] = encode_cursor(batch_id, rng.randrange(n_leads - 100), None)
            elif pick < 0.75:
                variant, params["grade"] = "grade", rng.choice(GRADES)
            else:
                variant, params["owner"] = "owner", f"rep{rng.randrange(OWNERS):02d}@example.com"
            return "scores", variant, "/v1/scores?" + urlencode(params)
        return "lead", "lead", f"/v1/leads/L{rng.randrange(n_leads):07d}"

    async def one(due: float, kind: str, variant: str, path: str, record: bool) -> None:
        conn = await pool.get()
        try:
            status, body = await asyncio.wait_for(conn.get(path), TIMEOUT_S)
            if status != 200:
                errors.append(f"{kind} {status}")
            elif kind == "scores" and len(cursors) < 500:
                cursor = orjson.loads(body).get("next_cursor")
                if cursor:
                    cursors.append(cursor)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(f"{kind} {type(exc).__name__}")
            conn = Connection(port)  # drop the broken connection
        finally:
            pool.put_nowait(conn)
        if record:
            elapsed = time.perf_counter() - due
            latencies.setdefault(kind, []).append(elapsed)
            latencies.setdefault(f"{kind}: {variant}", []).append(elapsed)

    async def run(seconds: float, record: bool) -> float:
        """Send ``rate`` requests a second for ``seconds``; the send phase's length."""
        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, *target(), record)))
        sent = time.perf_counter() - start
        await asyncio.gather(*tasks)
        return sent

    await run(warmup, record=False)
    errors.clear()
    spy = None
    if profile:  # py-spy (pip install py-spy) samples the server's workers while it is
        # measured, the thread holding the GIL only (--gil: where the CPU goes)
        spy = subprocess.Popen(
            [PY_SPY, "record", "--pid", str(server_pid), "--subprocesses", "--gil",
             "--duration", str(int(duration)),
             "--format", "raw", "--nonblocking", "--output", profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    server_cpu = cpu_seconds(server_pid)
    client_cpu = time.process_time()
    wall = time.perf_counter()
    sent = await run(duration, record=True)
    wall = time.perf_counter() - wall
    if spy is not None:
        spy.wait(60)
    server_cpu = cpu_seconds(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    while not pool.empty():
        conn = pool.get_nowait()
        if conn.writer is not None:
            conn.writer.close()
    total = int(rate * duration)
    return {
        "requests": total,
        "errors": len(errors),
        "error_examples": errors[:5],
        "target_rate": rate,
        "achieved_rate": round(total / sent, 1),  # the schedule kept by the sender
        "completed_rate": round(total / wall, 1),  # answers (a backlog drains after)
        "server_cpu_ms_per_request": round(1000 * server_cpu / total, 2),
        "client_cpu_ms_per_request": round(1000 * client_cpu / total, 2),
        **{ENDPOINTS[k]: percentiles(latencies.get(k, [])) for k in ENDPOINTS},
        "variants": {k: percentiles(v) for k, v in sorted(latencies.items()) if k not in ENDPOINTS},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (max 120)")
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads per batch")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="server processes (default: `leadscore serve`'s, %(default)s)",
    )
    parser.add_argument("--profile", help="write a py-spy raw profile of the server here")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    parser.add_argument(
        "--proposed-indexes",
        action="store_true",
        help="add PROPOSED_INDEXES to the cached store first (not yet in the store's schema)",
    )
    args = parser.parse_args()
    duration = min(args.duration, 120.0)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    url = cached_store(out, args.leads, args.rebuild)
    if args.proposed_indexes:
        add_indexes(url, PROPOSED_INDEXES)
    port = free_port()
    server = start_server(url, port, args.workers, out)
    try:
        current = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["current_batch"]
        load_before = os.getloadavg()[0]
        result = asyncio.run(
            drive(
                port,
                args.leads,
                current,
                args.rate,
                duration,
                server.pid,
                args.warmup,
                args.profile,
            )
        )
    finally:
        server.terminate()
        server.wait(30)
        (out / f"api-bench-{port}.yaml").unlink(missing_ok=True)
    result.update(
        leads=args.leads,
        store=url.rsplit("/", 1)[-1],
        indexes=scores_indexes(url),
        cores=os.cpu_count(),
        workers=args.workers,
        load_average_before=round(load_before, 2),  # > ~0.5: other jobs share the cores
        target_p99_ms=TARGET_P99_MS,
    )
    print(json.dumps(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
