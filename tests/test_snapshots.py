"""Training snapshots: grid, labels, censoring and the out-of-time split, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import SnapshotConfig
from features.snapshots import make_snapshots, out_of_time_split
from tests.conftest import ts

END = ts("2026-03-01")
CONFIG = SnapshotConfig(horizon_days=28, cadence_days=14, valid_window_days=14)


def _leads(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["lead_id", "created_at", "status", "closed_at"])
    for c in ("created_at", "closed_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[ns, UTC]")
    return frame


def test_grid_labels_and_censoring_by_hand():
    # grid: Feb 15, Feb 1, Jan 18, Jan 4, Dec 21 (end - k * 14 days, k >= 1)
    leads = _leads(
        [
            ("A", "2026-01-01", "converted", "2026-02-10"),  # open at Jan 4, Jan 18, Feb 1
            ("B", "2026-02-10", "open", None),  # open at Feb 15 only: censored
        ]
    )
    snaps = make_snapshots(leads, END, CONFIG)
    rows = snaps.rows
    assert rows["lead_id"].tolist() == ["A", "A", "A"]
    assert rows["as_of"].tolist() == [ts("2026-01-04"), ts("2026-01-18"), ts("2026-02-01")]
    # converted Feb 10: within 28 days of Jan 18 and Feb 1, not of Jan 4 (Feb 1 < Feb 10)
    assert rows["label"].tolist() == [0, 1, 1]
    assert snaps.n_censored == 1


def test_a_lead_closed_on_a_grid_day_is_not_open_that_day():
    leads = _leads([("A", "2026-01-01", "lost", "2026-01-18")])
    rows = make_snapshots(leads, END, CONFIG).rows
    assert rows["as_of"].tolist() == [ts("2026-01-04")]
    assert rows["label"].tolist() == [0]


def test_a_conversion_after_the_horizon_is_a_negative():
    leads = _leads([("A", "2025-12-01", "converted", "2026-02-20")])
    rows = make_snapshots(leads, END, CONFIG).rows
    labels = dict(zip(rows["as_of"], rows["label"], strict=True))
    assert labels[ts("2026-01-18")] == 0  # Jan 18 + 28 = Feb 15 < Feb 20
    assert labels[ts("2026-02-01")] == 1


def test_out_of_time_split_has_an_embargo_and_no_shared_lead():
    rng = np.random.default_rng(1)
    n = 400
    created = ts("2025-01-01") + pd.to_timedelta(rng.integers(0, 380, n), unit="D")
    life = pd.to_timedelta(rng.integers(10, 120, n), unit="D")
    closed = created + life
    status = np.where(rng.random(n) < 0.2, "converted", "lost")
    still_open = closed >= END
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": created,
            "status": np.where(still_open, "open", status),
            "closed_at": pd.Series(closed).where(~still_open),
        }
    ).astype({"created_at": "datetime64[ns, UTC]", "closed_at": "datetime64[ns, UTC]"})
    config = SnapshotConfig(horizon_days=28, cadence_days=14, valid_window_days=56)
    snaps = make_snapshots(leads, END, config)
    split = out_of_time_split(snaps, config)
    train, valid = snaps.rows.iloc[split.train], snaps.rows.iloc[split.valid]
    assert len(train) > 100 and len(valid) > 20
    assert set(train["lead_id"]).isdisjoint(valid["lead_id"])
    # every training label was fully known before validation starts
    assert (train["as_of"] + pd.Timedelta(days=28) <= split.valid_start).all()
    assert (valid["as_of"] > split.valid_start).all()
    # and no snapshot's horizon runs past the end of the data
    assert (snaps.rows["as_of"] + pd.Timedelta(days=28) <= END).all()
