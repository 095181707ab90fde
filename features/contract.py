"""The data contract of leads and activities (DESIGN.md section 3), enforced on entry.

``prepare_leads`` and ``prepare_activities`` rename a user's columns onto the contract,
coerce types (timestamps end in UTC), and split the rows into clean rows and a quarantine
frame with one reason per bad row, so that every input lead ends scored or quarantined.
Table-level faults (a missing required column) raise ``ContractError`` naming the source
and the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEAD_ID = "lead_id"
CREATED_AT = "created_at"
STATUS = "status"
CLOSED_AT = "closed_at"
OWNER = "owner"
SEGMENT = "segment"
ACTIVITY_TYPE = "activity_type"
OCCURRED_AT = "occurred_at"
VALUE = "value"

OPEN, CONVERTED, LOST = "open", "converted", "lost"
STATUSES = (OPEN, CONVERTED, LOST)

LEAD_REQUIRED = (LEAD_ID, CREATED_AT, STATUS, CLOSED_AT)
ACTIVITY_REQUIRED = (LEAD_ID, ACTIVITY_TYPE, OCCURRED_AT)

QUARANTINE_COLUMNS = ("source", "row", LEAD_ID, "reason")


class ContractError(ValueError):
    """A table-level violation: the whole input is unusable as it stands."""


@dataclass(frozen=True)
class Checked:
    """Rows that passed the contract, and the rows that did not with their reason."""

    rows: pd.DataFrame
    quarantine: pd.DataFrame


def _require(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: required column(s) {missing} missing; found {list(frame.columns)}"
        )


def to_utc(values: pd.Series) -> pd.Series:
    """Parse timestamps (any offset, or naive = UTC) to ``datetime64[ns, UTC]``; bad -> NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed.astype("datetime64[ns, UTC]")


def _as_text(values: pd.Series) -> pd.Series:
    """Strings with real nulls, whatever the input dtype (ids may arrive as integers)."""
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA).astype(object).where(text.notna(), None)


def _quarantine(source: str, frame: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    bad = reasons.notna()
    return pd.DataFrame(
        {
            "source": source,
            "row": frame.index[bad].to_numpy(),
            LEAD_ID: frame.loc[bad, LEAD_ID].to_numpy(),
            "reason": reasons[bad].to_numpy(),
        },
        columns=list(QUARANTINE_COLUMNS),
    )


def _first_reason(frame: pd.DataFrame, rules: list[tuple[pd.Series, str]]) -> pd.Series:
    """The first failed rule's reason per row (None where every rule passed)."""
    reasons = pd.Series(None, index=frame.index, dtype=object)
    for failed, reason in rules:
        reasons = reasons.mask(reasons.isna() & failed.fillna(False).astype(bool), reason)
    return reasons


def prepare_leads(
    raw: pd.DataFrame,
    *,
    source: str = "leads",
    column_mapping: Mapping[str, str] | None = None,
    attributes_categorical: list[str] | None = None,
    attributes_numeric: list[str] | None = None,
) -> Checked:
    """Rename, type and check the leads table; quarantine rows that break the contract."""
    frame = raw.rename(columns=dict(column_mapping or {})).reset_index(drop=True)
    _require(frame, LEAD_REQUIRED, source)
    out = frame.copy()
    out[LEAD_ID] = _as_text(frame[LEAD_ID])
    out[STATUS] = _as_text(frame[STATUS]).map(lambda s: s.lower() if isinstance(s, str) else s)
    out[CREATED_AT] = to_utc(frame[CREATED_AT])
    out[CLOSED_AT] = to_utc(frame[CLOSED_AT])
    for column in (OWNER, SEGMENT, *(attributes_categorical or [])):
        if column in out.columns:
            out[column] = _as_text(frame[column])
    for column in attributes_numeric or []:
        if column in out.columns:
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")

    is_open = out[STATUS] == OPEN
    reasons = _first_reason(
        out,
        [
            (out[LEAD_ID].isna(), "lead_id is empty"),
            (out[LEAD_ID].duplicated(keep=False), "lead_id is duplicated"),
            (~out[STATUS].isin(STATUSES), f"status is not one of {list(STATUSES)}"),
            (out[CREATED_AT].isna(), "created_at is missing or not a timestamp"),
            (is_open & out[CLOSED_AT].notna(), "open lead has a closed_at"),
            (~is_open & out[CLOSED_AT].isna(), "closed lead has no valid closed_at"),
            (out[CLOSED_AT] < out[CREATED_AT], "closed_at is before created_at"),
        ],
    )
    return Checked(rows=out[reasons.isna()], quarantine=_quarantine(source, out, reasons))


def prepare_activities(
    raw: pd.DataFrame,
    known_leads: pd.DataFrame,
    *,
    source: str = "activities",
    column_mapping: Mapping[str, str] | None = None,
) -> Checked:
    """Rename, type and check the activity log against the clean leads; sort by lead, time."""
    frame = raw.rename(columns=dict(column_mapping or {})).reset_index(drop=True)
    _require(frame, ACTIVITY_REQUIRED, source)
    out = pd.DataFrame(
        {
            LEAD_ID: _as_text(frame[LEAD_ID]),
            ACTIVITY_TYPE: _as_text(frame[ACTIVITY_TYPE]),
            OCCURRED_AT: to_utc(frame[OCCURRED_AT]),
            VALUE: pd.to_numeric(frame[VALUE], errors="coerce").astype("float64")
            if VALUE in frame.columns
            else np.nan,
        },
        index=frame.index,
    )
    created = out[LEAD_ID].map(known_leads.set_index(LEAD_ID)[CREATED_AT])
    reasons = _first_reason(
        out,
        [
            (out[LEAD_ID].isna(), "lead_id is empty"),
            (~out[LEAD_ID].isin(known_leads[LEAD_ID]), "activity for an unknown lead"),
            (out[ACTIVITY_TYPE].isna(), "activity_type is empty"),
            (out[OCCURRED_AT].isna(), "occurred_at is missing or not a timestamp"),
            (out[OCCURRED_AT] < created, "activity before the lead was created"),
        ],
    )
    clean = out[reasons.isna()].sort_values([LEAD_ID, OCCURRED_AT], kind="stable")
    return Checked(rows=clean, quarantine=_quarantine(source, out, reasons))


def data_end(leads: pd.DataFrame, activities: pd.DataFrame | None) -> pd.Timestamp:
    """The export day: midnight UTC after the latest timestamp in the data.

    Scoring "now" defaults to this instant, and training censors snapshots against it.
    """
    stamps = [leads[CREATED_AT].max(), leads[CLOSED_AT].max()]
    if activities is not None and len(activities):
        stamps.append(activities[OCCURRED_AT].max())
    latest = max(s for s in stamps if pd.notna(s))
    return latest.floor("D") + pd.Timedelta(days=1)
