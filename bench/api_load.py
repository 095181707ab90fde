"""Load test of the HTTP API on 127.0.0.1: open-loop requests at a fixed rate, p50/p99.

Builds a throw-away SQLite store (``--leads`` synthetic leads, two batches so leads have
history and a change feed), starts ``uvicorn`` serving ``serving.api.create_app`` in a
subprocess on a free loopback port, then sends ``--rate`` requests per second for
``--duration`` seconds: half ``GET /v1/scores`` (a page of 100, random filters or a cursor
from an earlier page), half ``GET /v1/leads/{id}`` (a random lead). Requests are sent on
schedule whatever the server's pace (open loop), and latency is measured from the
scheduled send time, so a slow server cannot hide its queueing (no coordinated omission).

Prints one JSON line: requests, errors, achieved rate, p50/p90/p99/max in ms (overall and
per endpoint), and exits 1 if any request failed. Target on 2 cores: p99 < 50 ms.

    .venv/bin/python bench/api_load.py --rate 200 --duration 30      # = make bench-api
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import inspect
import json
import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import orjson
import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy import inspect as sa_inspect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leadscore.serving.routes import encode_cursor  # noqa: E402
from leadscore.serving.store import SCHEMA_VERSION, ScoreStore, StoreConfig  # noqa: E402

TOKEN = "bench-token"
TARGET_P99_MS = 20
TIMEOUT_S = 10.0
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
GRADES = ("A", "B", "C", "D")


POOL = 997
"""Distinct values generated per JSON column; rows pick one by index, so a 1M-lead batch
costs little memory to build while every row still carries a full-sized value."""
OWNERS = 40
CONCEPTS = ("visits", "pricing_page", "email_engagement", "lead_source", "company_size",
            "industry", "seniority", "recency", "webinar", "country")  # fmt: skip
ACTIVITIES = ("Email Opened", "Page Visited on Website", "Olark Chat Conversation",
              "Form Submitted on Website", "Converted to Lead", "Email Link Clicked",
              "Webinar Attended", "Had a Phone Conversation")  # fmt: skip


@functools.cache
def _order(n: int, seed: int) -> np.ndarray:
    """The leads in rank order of the batch of ``seed``."""
    return np.random.default_rng(seed).permutation(n)


@functools.cache
def _pools(seed: int) -> dict[str, np.ndarray]:
    """``POOL`` realistic values of each JSON column, sized like a real batch's rows
    (reasons ~640 B, rule_reasons ~230, attributes ~200, timeline ~900: common.md)."""
    rng = np.random.default_rng(seed)

    def reasons() -> str:
        picks = rng.choice(len(CONCEPTS), 5, replace=False)
        signs = ["+", "+", "+", "-", "-"]
        items = []
        for concept, sign in zip(picks, signs, strict=True):
            value = round(float(rng.uniform(0.05, 1.2)) * (1 if sign == "+" else -1), 4)
            items.append({
                "concept": CONCEPTS[concept],
                "text": f"{CONCEPTS[concept].replace('_', ' ').title()} "
                f"{int(rng.integers(1, 40))} (average {int(rng.integers(1, 9))})",
                "direction": sign, "contribution": value,
                "share": round(float(rng.uniform(0.02, 0.4)), 3),
                "features": {f"{CONCEPTS[concept]}_n": value},
            })  # fmt: skip
        return json.dumps(items)

    def rule_reasons() -> str:
        return json.dumps([
            {"text": f"{CONCEPTS[int(rng.integers(len(CONCEPTS)))]} {int(rng.integers(1, 20))} "
             f"(5 or more)", "points": float(rng.choice([15.0, 10.0, 5.0, -5.0]))}
            for _ in range(5)
        ])  # fmt: skip

    def attributes() -> str:
        return json.dumps({
            "city": rng.choice(["Mumbai", "Berlin", "Lyon", "Austin", "Osaka"]),
            "country": rng.choice(["India", "Germany", "France", "United States", "Japan"]),
            "employees": int(rng.integers(5, 5000)), "industry": rng.choice(
                ["Banking", "Retail", "Software", "Healthcare", "Logistics"]),
            "lead_source": rng.choice(["Google", "Direct Traffic", "Referral Sites"]),
            "occupation": rng.choice(["Unemployed", "Working Professional", "Student"]),
            "do_not_email": bool(rng.integers(2)), "total_visits": int(rng.integers(0, 30)),
        }, sort_keys=True)  # fmt: skip

    def timeline() -> str:
        n = int(rng.integers(8, 16))
        days = np.sort(rng.integers(0, 90, n))
        return json.dumps([
            {"type": ACTIVITIES[int(rng.integers(len(ACTIVITIES)))],
             "at": f"2026-{10 - d // 30:02d}-{28 - d % 28:02d}T{int(rng.integers(24)):02d}:"
                   f"{int(rng.integers(60)):02d}:00Z",
             "value": None if rng.random() < 0.6 else float(rng.integers(1, 30))}
            for d in days
        ])  # fmt: skip

    makers = {"reasons": reasons, "rule_reasons": rule_reasons, "attributes": attributes,
              "timeline": timeline}  # fmt: skip
    return {name: np.array([make() for _ in range(POOL)], dtype=object)
            for name, make in makers.items()}  # fmt: skip


def synthetic_batch(n: int, seed: int, start: int = 0, part: int | None = None) -> pd.DataFrame:
    """Rows ``start`` .. ``start + part`` of a realistic n-lead batch: every score column
    filled (display, facts, timeline, reasons v2), ~2.2 KB a row as in a real batch.

    Lead i is ``L{i:07d}``; ranks follow a fixed permutation per seed, so two seeds give
    two batches of the same leads with different scores (history, a change feed)."""
    part = n - start if part is None else part
    order = _order(n, seed)  # order[k] = the lead at rank k + 1
    pools = _pools(1000 + seed)
    rank = np.arange(start + 1, start + part + 1)
    probability = 0.9 * np.exp(-5.0 * (rank - 1) / n)  # decreasing with rank
    score = np.rint(100 * probability).astype(int)
    ids = order[start : start + part]
    pick = (ids * 7919 + seed) % POOL
    cells = np.array(["call_now", "nurture", "educate", "deprioritise"], dtype=object)
    return pd.DataFrame(
        {
            "lead_id": [f"L{i:07d}" for i in ids],
            "owner": [f"rep{i % OWNERS:02d}@example.com" for i in ids],
            "segment": np.array(["smb", "mid_market", "enterprise"], dtype=object)[ids % 3],
            "probability": probability,
            "score": score,
            "grade": np.select([score >= 40, score >= 20, score >= 8], ["A", "B", "C"], "D"),
            "rank": rank,
            "percentile": 100.0 * (n - rank) / max(n - 1, 1),
            "fit": ((ids % 1000) / 500.0 - 1).round(4),
            "engagement": ((ids % 997) / 498.5 - 1).round(4),
            "rule_score": (ids % 101).astype(float),
            "rule_grade": np.array(["A", "B", "C", "D"], dtype=object)[ids % 4],
            "reasons": pools["reasons"][pick],
            "name": [f"Contact {i}" for i in ids],
            "company": [f"Company {i % 50000} GmbH" for i in ids],
            "email": [f"contact{i}@company{i % 50000}.example.com" for i in ids],
            "record_id": [f"00Q{i:012d}" for i in ids],
            "fit_score": ids % 101,
            "engagement_score": (ids * 7) % 101,
            "cell": cells[(ids + seed) % 4],
            "rule_rank": rank,
            "rule_reasons": pools["rule_reasons"][pick],
            "last_activity": np.array(ACTIVITIES, dtype=object)[ids % len(ACTIVITIES)],
            "last_activity_at": "2026-10-30T09:15:00Z",
            "attributes": pools["attributes"][pick],
            "timeline": pools["timeline"][pick],
            "next_step": np.where(ids % 4 == 1, "Webinar Attended", None),
            "next_step_gain": np.where(ids % 4 == 1, 0.0123, np.nan),
        }
    )


def build_store(path: Path, n: int) -> str:
    """Publish two n-lead batches through the real ScoreStore (history and a change feed
    for every lead), in partitions of 100k rows; return the store's URL."""
    url = f"sqlite:///{path}"
    store = ScoreStore(StoreConfig(url=url))
    store.create()
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    step = 100_000
    for day, seed in enumerate((1, 2)):
        parts = (synthetic_batch(n, seed, s, min(step, n - s)) for s in range(0, n, step))
        store.publish_stream(parts, model_version="1", as_of=as_of + timedelta(days=day))
    store.close()
    return url


def cached_store(out: Path, n: int, rebuild: bool = False) -> str:
    """The bench's store of n leads under ``out`` (built once: ~2 min and ~4.5 GB at 1M),
    keyed by the schema version and this generator, so a change to either rebuilds it."""
    key = hashlib.sha256(
        (inspect.getsource(_pools.__wrapped__) + inspect.getsource(synthetic_batch)).encode()
    ).hexdigest()[:8]
    path = out / f"api-store-{n}-v{SCHEMA_VERSION}-{key}.db"
    if rebuild or not path.exists():
        for old in out.glob(f"api-store-{n}-*"):
            old.unlink()
        partial = path.with_name(path.name + ".building")
        for stale in out.glob(partial.name + "*"):
            stale.unlink()
        print(f"building the bench store ({n} leads x 2 batches) at {path}", file=sys.stderr)
        build_store(partial, n)
        partial.rename(path)
    return f"sqlite:///{path}"


PROPOSED_INDEXES = {
    "ix_scores_batch_grade_rank": ("batch_id", "grade", "rank"),
    "ix_scores_batch_owner_rank": ("batch_id", "owner", "rank"),
}
"""Indexes a grade or owner page needs at 1M leads (else it walks the rank index past
every better lead: 15-40 s for a first page of grade B-D on a cold cache), proposed for
serving/store/schema.py; ``--proposed-indexes`` adds them to the bench's store."""


def add_indexes(url: str, indexes: dict[str, tuple[str, ...]]) -> None:
    """Create ``indexes`` on the store's scores table if missing (minutes at 1M)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for name, columns in indexes.items():
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON scores ({', '.join(columns)})"
            )
    engine.dispose()


def scores_indexes(url: str) -> list[str]:
    """The scores table's indexes, as ``name(columns)``: what the pages could use."""
    engine = create_engine(url)
    found = sa_inspect(engine).get_indexes("scores")
    engine.dispose()
    return sorted(f"{ix['name']}({','.join(ix['column_names'])})" for ix in found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from leadscore.serving.api import ApiConfig, create_app
from leadscore.serving.store import StoreConfig
app = create_app(StoreConfig(url={url!r}), ApiConfig(tokens=[{token!r}]))
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    code = SERVER.format(root=str(ROOT), url=url, token=TOKEN, port=port)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API server did not come up within 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report CPU per request: a
    figure that, unlike latency, stays meaningful when other jobs share the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    if profile:  # py-spy (pip install py-spy) samples the server while it is measured
        spy = subprocess.Popen(
            [PY_SPY, "record", "--pid", str(server_pid), "--duration", str(int(duration)),
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
    server = start_server(url, port)
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
        server.wait(10)
    result.update(
        leads=args.leads,
        store=url.rsplit("/", 1)[-1],
        indexes=scores_indexes(url),
        cores=os.cpu_count(),
        load_average_before=round(load_before, 2),  # > ~0.5: other jobs share the cores
        target_p99_ms=TARGET_P99_MS,
    )
    print(json.dumps(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
