"""Frame checks before a publish: a bad scoring run fails before anything is written."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pandas as pd
from pandas.api.types import is_numeric_dtype

from leadscore.models.schema import CELLS
from leadscore.serving.store.schema import (
    FLOAT_COLUMNS,
    INT_COLUMNS,
    NULLABLE_INT_COLUMNS,
    SCORE_COLUMNS,
    TEXT_DTYPE,
)

_EXAMPLES = 5  # offending lead_ids quoted in a validation error
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def new_batch_id(now: datetime | None = None) -> str:
    """Return a sortable batch id: UTC timestamp plus a short random suffix.

    Example: ``20261122T031500Z-a1b2c3``. The timestamp makes ids sort by creation time
    (to the second); the suffix keeps two runs in the same second apart.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Check a scores frame against the contract and return a normalised copy.

    Raises ValueError naming the column and up to five offending lead_ids, so a bad
    scoring run fails before anything is written. The copy holds only
    :data:`SCORE_COLUMNS` with canonical dtypes (int64, nullable Int64, float64, text); the
    input frame
    is not modified.
    """
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores frame is missing required column(s): {missing}")
    if len(scores) == 0:
        raise ValueError(
            "scores frame is empty: refusing to publish a batch with no leads "
            "(it would replace the current batch with nothing)"
        )
    frame = scores.loc[:, list(SCORE_COLUMNS)].reset_index(drop=True)

    lead_id = frame["lead_id"]
    blank = lead_id.isna() | (lead_id.astype(str).str.strip() == "")
    if blank.any():
        rows = list(blank[blank].index[:_EXAMPLES])
        raise ValueError(f"column 'lead_id' has null or empty values (rows {rows})")
    lead_id = lead_id.astype(str)
    dup = None if lead_id.is_unique else lead_id.duplicated(keep=False)  # the usual: unique
    if dup is not None and dup.any():
        examples = list(dict.fromkeys(lead_id[dup]))[:_EXAMPLES]
        raise ValueError(f"column 'lead_id' has duplicate values, e.g. lead_id {examples}")

    def fail(column: str, bad: pd.Series, what: str) -> None:
        if bad.any():
            examples = lead_id[bad].head(_EXAMPLES).tolist()
            raise ValueError(
                f"column {column!r} {what} ({int(bad.sum())} rows), e.g. lead_id {examples}"
            )

    out: dict[str, pd.Series] = {"lead_id": lead_id}
    numeric: dict[str, pd.Series] = {}
    for column in (*FLOAT_COLUMNS, *INT_COLUMNS):
        raw = frame[column]
        if is_numeric_dtype(raw.dtype):  # numbers already: none can be non-numeric
            numeric[column] = raw.astype("float64")
            continue
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        fail(column, raw.notna() & values.isna(), "has non-numeric values")
        numeric[column] = values

    probability = numeric["probability"]
    fail("probability", ~probability.between(0.0, 1.0), "must be within [0, 1] and not null")
    score = numeric["score"]
    fail("score", ~score.between(0, 100), "must be within [0, 100] and not null")
    fail("score", score != score.round(), "must hold whole numbers")
    rank = numeric["rank"]
    fail("rank", ~(rank >= 1), "must be >= 1 and not null")
    fail("rank", rank != rank.round(), "must hold whole numbers")
    percentile = numeric["percentile"]
    fail("percentile", ~percentile.between(0.0, 100.0), "must be within [0, 100] and not null")
    fail("grade", frame["grade"].isna(), "has null values")
    for column in ("fit_score", "engagement_score"):
        value = numeric[column]
        fail(column, value.notna() & ~value.between(0, 100), "must be within [0, 100]")
    for column in NULLABLE_INT_COLUMNS:
        value = numeric[column]
        fail(column, value.notna() & (value != value.round()), "must hold whole numbers")
    rule_rank = numeric["rule_rank"]
    fail("rule_rank", rule_rank.notna() & ~(rule_rank >= 1), "must be >= 1")
    cell = frame["cell"]
    fail("cell", cell.notna() & ~cell.isin(CELLS), f"must be one of {list(CELLS)}")

    for column in SCORE_COLUMNS:
        if column in NULLABLE_INT_COLUMNS:
            out[column] = numeric[column].astype("Int64")
        elif column in INT_COLUMNS:
            out[column] = numeric[column].astype("int64")
        elif column in FLOAT_COLUMNS:
            out[column] = numeric[column]
        elif column != "lead_id":
            raw = frame[column]
            if raw.dtype == TEXT_DTYPE:  # already text: as is (a copy cost ~4 us a KB row)
                out[column] = raw
            else:
                out[column] = raw.where(raw.isna(), raw.astype(str)).astype(TEXT_DTYPE)
    out["lead_id"] = lead_id.astype(TEXT_DTYPE)
    # not copied again where pandas copies on write (3+): the frame shares what it can
    return pd.DataFrame(out, columns=list(SCORE_COLUMNS), copy=not _COPY_ON_WRITE)
