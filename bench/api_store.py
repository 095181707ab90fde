"""The store `make bench-api` serves: n leads x 2 batches published through the real
ScoreStore, sized like a real batch's rows, built once and cached under bench/out.

Rows carry every score column (display, facts, a timeline, reasons v2) at ~2.4 KB, as a
real 1M-lead batch's do; the JSON values come from a pool of ``POOL`` per column, so
building 1M rows takes little memory. The two batches hold the same leads with different
ranks, so every lead has history and the change feed is real.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy import inspect as sa_inspect

from leadscore.serving.store import SCHEMA_VERSION, ScoreStore, StoreConfig

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
"""Indexes that would make a grade or owner page an index range, proposed once but not
in the schema (they doubled the nightly publish); the pages now read their ranks from
the batch's page index in memory (serving/store/page_index.py) instead. Kept so
``--proposed-indexes`` can compare."""


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
