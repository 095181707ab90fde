"""Training examples are snapshots of open leads, not rows (DESIGN.md section 4).

The model answers, for a lead open at time T: will it convert within H days? Training
asks the same question of the past. Snapshots sit on a calendar grid every ``cadence``
days, anchored at the data's end; a lead contributes a snapshot at every grid time while
it was open. The label is "converted within H days after the snapshot". Snapshots whose
horizon runs past the end of the data are censored. Validation is out of time: the newest
``valid_window_days`` of snapshots; training keeps only snapshots whose label was fully
known before validation starts (an embargo of H days), and no lead sits on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.builder import AS_OF
from features.config import SnapshotConfig
from features.contract import CLOSED_AT, CONVERTED, CREATED_AT, LEAD_ID, STATUS

LABEL = "label"


@dataclass(frozen=True)
class Snapshots:
    """Entity rows (lead_id, as_of, label), newest last, and how many were censored."""

    rows: pd.DataFrame
    n_censored: int
    data_end: pd.Timestamp


@dataclass(frozen=True)
class Split:
    """Positions (into ``Snapshots.rows``) of the training and validation examples."""

    train: np.ndarray
    valid: np.ndarray
    kind: str
    valid_start: pd.Timestamp
    train_end: pd.Timestamp


def make_snapshots(
    leads: pd.DataFrame, data_end: pd.Timestamp, config: SnapshotConfig
) -> Snapshots:
    """Every (lead, grid time) at which the lead was open, with its horizon label."""
    cadence = pd.Timedelta(days=config.cadence_days)
    horizon = pd.Timedelta(days=config.horizon_days)
    created = leads[CREATED_AT].to_numpy(dtype="datetime64[ns]")
    closed = leads[CLOSED_AT].to_numpy(dtype="datetime64[ns]")
    end = data_end.tz_convert("UTC").tz_localize(None).to_datetime64().astype("datetime64[ns]")
    open_until = np.where(np.isnat(closed), end, closed)

    step = cadence.to_timedelta64().astype("timedelta64[ns]")
    # grid times are end - k * cadence, k >= 1; a lead is open at g if created <= g < open_until
    k_first = np.floor((end - open_until) / step).astype(np.int64) + 1
    k_first = np.maximum(k_first, 1)
    k_last = np.floor((end - created) / step).astype(np.int64)
    counts = np.clip(k_last - k_first + 1, 0, None)
    # a lead closed exactly on a grid time was no longer open there
    lead_pos = np.repeat(np.arange(len(leads)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    k = np.repeat(k_first, counts) + offsets
    as_of = end - k * step

    status = leads[STATUS].to_numpy()[lead_pos]
    closed_at = closed[lead_pos]
    label = (status == CONVERTED) & (closed_at <= as_of + horizon.to_timedelta64())
    censored = as_of + horizon.to_timedelta64() > end

    rows = pd.DataFrame(
        {
            LEAD_ID: leads[LEAD_ID].to_numpy()[lead_pos][~censored],
            AS_OF: pd.to_datetime(as_of[~censored]).tz_localize("UTC"),
            LABEL: label[~censored].astype(np.int8),
        }
    )
    rows = rows.sort_values([AS_OF, LEAD_ID], kind="stable").reset_index(drop=True)
    return Snapshots(rows=rows, n_censored=int(censored.sum()), data_end=data_end)


def out_of_time_split(snapshots: Snapshots, config: SnapshotConfig) -> Split:
    """Newest window validates; training ends H days before it; no lead on both sides."""
    rows = snapshots.rows
    horizon = pd.Timedelta(days=config.horizon_days)
    last_uncensored = snapshots.data_end - horizon
    valid_start = last_uncensored - pd.Timedelta(days=config.valid_window_days)
    train_end = valid_start - horizon
    is_valid = (rows[AS_OF] > valid_start).to_numpy()
    valid_leads = set(rows.loc[is_valid, LEAD_ID])
    is_train = (rows[AS_OF] <= train_end).to_numpy() & ~rows[LEAD_ID].isin(valid_leads).to_numpy()
    return Split(
        train=np.flatnonzero(is_train),
        valid=np.flatnonzero(is_valid),
        kind="out_of_time",
        valid_start=valid_start,
        train_end=train_end,
    )
