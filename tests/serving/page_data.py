"""Two small scoring batches for the page's tests (server side and in Chromium).

250 open leads with every column of the score row (v4 columns only where the store has
them), so search, sorts, paging, counts, filters, the quadrant, the model-vs-rules view
and the change feed all have something to show; the batch before it differs in known
ways (5 grades up, 5 down, 10 new leads, 1 lead left).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd

from leadscore.models.schema import SCORE_COLUMNS
from leadscore.serving.store import ScoreStore
from tests.serving.test_store import AS_OF

N = 250
OWNERS = ("ann", "bob", "cy")
INDUSTRIES = ("fintech", "retail", "50%off")
LONG_REASON = (
    "viewed the pricing page 3 times, last 1 day ago, and asked for a demo of the "
    "enterprise plan twice"
)


def grade_of(i: int) -> str:
    return "A" if i <= 20 else "B" if i <= 60 else "C" if i <= 150 else "D"


def cell_of(fit: int, engagement: int) -> str:
    if fit >= 50:
        return "call_now" if engagement >= 50 else "nurture"
    return "educate" if engagement >= 50 else "deprioritise"


def lead(i: int) -> dict:
    """Lead ``L{i:03d}``: rank i, every column filled."""
    fit, engagement = (i * 7) % 101, (i * 13) % 101
    rule_score = float((i * 53) % 250)
    company = "Acme_%" if i == 7 else "Acmex" if i == 8 else f"Co{i % 10}"
    employees = 100 if i == 9 else (i % 5) * 10
    return {
        "lead_id": f"L{i:03d}",
        "owner": OWNERS[i % 3],
        "segment": "@SUM(1)" if i == 11 else ("smb", "ent")[i % 2],
        "probability": (300 - i) / 400,
        "score": round(100 * (300 - i) / 400),
        "grade": grade_of(i),
        "rank": i,
        "percentile": 100.0 * (N - i) / N,
        "fit": 0.1 * fit,
        "engagement": 0.1 * engagement,
        "rule_score": rule_score,
        "rule_grade": "A" if rule_score >= 200 else "B" if rule_score >= 100 else "C",
        "reasons": json.dumps(
            [
                {"feature": "pricing", "text": LONG_REASON, "direction": "+", "contribution": 1.2},
                {
                    "feature": "role",
                    "text": "director in fintech, US",
                    "direction": "+",
                    "contribution": 0.5,
                },
                {
                    "feature": "unsub",
                    "text": "unsubscribed from email",
                    "direction": "-",
                    "contribution": -0.3,
                },
            ]
        ),
        "name": f"Person {i}",
        "company": company,
        "email": f"p{i}@co.example",
        "record_id": f"CRM-{i}",
        "fit_score": fit,
        "engagement_score": engagement,
        "cell": cell_of(fit, engagement),
        "rule_reasons": json.dumps(
            [
                {"text": "industry is fintech", "points": 27.0},
                {"text": "no reply for 30 days", "points": -10.0},
            ]
        ),
        "last_activity": "demo request",
        "last_activity_at": (AS_OF - timedelta(days=i % 40 + 1)).isoformat(),
        "attributes": json.dumps(
            {"industry": INDUSTRIES[i % 3], "employees": employees, "country": "US"},
            sort_keys=True,
            separators=(",", ":"),
        ),
        "timeline": json.dumps(
            [
                {
                    "type": "demo request",
                    "at": (AS_OF - timedelta(days=1)).isoformat(),
                    "value": None,
                },
                {
                    "type": "pricing-page view",
                    "at": (AS_OF - timedelta(days=3)).isoformat(),
                    "value": 3,
                },
            ]
        ),
    }


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a scores frame of the store's columns; rule_rank from the rule score."""
    data = pd.DataFrame(rows)
    order = data.sort_values(["rule_score", "rank"], ascending=[False, True]).index
    data.loc[order, "rule_rank"] = range(1, len(data) + 1)
    data["rule_rank"] = data["rule_rank"].astype("int64")
    for column in SCORE_COLUMNS:
        if column not in data:
            data[column] = None
    return data.loc[:, list(SCORE_COLUMNS)]


def current_rows() -> list[dict]:
    return [lead(i) for i in range(1, N + 1)]


def previous_rows() -> list[dict]:
    """The batch before: no L241-L250 (new now), L900 (left since), L001-L005 were C
    (up since), L201-L205 were A (down since)."""
    rows = []
    for i in range(1, N - 9):
        row = lead(i)
        if i <= 5:
            row["grade"] = "C"
        if 201 <= i <= 205:
            row["grade"] = "A"
        rows.append(row)
    gone = lead(N + 1)
    gone.update(lead_id="L900", rank=N + 1, percentile=0.0, name="Gone Person")
    rows.append(gone)
    return rows


def publish_both(store: ScoreStore) -> None:
    """The previous batch, then the current one (model 8)."""
    store.create()
    store.publish(frame(previous_rows()), model_version="7", as_of=AS_OF - timedelta(days=1))
    store.publish(frame(current_rows()), model_version="8", as_of=AS_OF)
