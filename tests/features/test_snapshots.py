"""Training snapshots: grid, labels, censoring and the out-of-time split, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.features.config import SnapshotConfig
from leadscore.features.snapshots import (
    flat_examples,
    make_snapshots,
    ordered_split,
    out_of_time_split,
    recent_open,
    training_examples,
)
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


def test_recent_open_reaches_the_data_end_where_labelled_snapshots_stop_a_horizon_earlier():
    # grid within 28 days of the end: Mar 1 (the end itself), Feb 15, Feb 1
    leads = _leads(
        [
            ("A", "2026-01-01", "converted", "2026-02-10"),  # open at Feb 1 only
            ("B", "2026-02-10", "open", None),  # open at Feb 15 and Mar 1
            ("C", "2026-02-20", "lost", "2026-03-01"),  # closed on the end: not open there
            ("D", "2026-03-02", "open", None),  # created after the end: never
        ]
    )
    rows = recent_open(leads, END, days=28, cadence_days=14)
    got = sorted(zip(rows["lead_id"], rows["as_of"], strict=True))
    assert got == [
        ("A", ts("2026-02-01")),
        ("B", ts("2026-02-15")),
        ("B", ts("2026-03-01")),
    ]
    # the labelled snapshots of the same leads end a horizon (28 days) before Mar 1
    assert make_snapshots(leads, END, CONFIG).rows["as_of"].max() == ts("2026-02-01")


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


def _random_leads(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """Leads created over a year, open 10-120 days, 20% converting; late ones still open."""
    rng = np.random.default_rng(seed)
    created = ts("2025-01-01") + pd.to_timedelta(rng.integers(0, 380, n), unit="D")
    life = pd.to_timedelta(rng.integers(10, 120, n), unit="D")
    closed = created + life
    status = np.where(rng.random(n) < 0.2, "converted", "lost")
    still_open = closed >= END
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": created,
            "status": np.where(still_open, "open", status),
            "closed_at": pd.Series(closed).where(~still_open),
        }
    ).astype({"created_at": "datetime64[ns, UTC]", "closed_at": "datetime64[ns, UTC]"})


def test_out_of_time_split_has_an_embargo_and_no_shared_lead():
    leads = _random_leads()
    config = SnapshotConfig(
        horizon_days=28, cadence_days=14, valid_window_days=56, split="lead_disjoint"
    )
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


def test_time_split_keeps_embargoed_snapshots_of_leads_open_in_validation():
    """By hand: A is open Dec 7 - Feb 20. Validation starts Jan 4 (end - 28 - 28 days),
    training ends Dec 7 (valid start - 28). A's Dec 7 snapshot trains in the time split
    (its label window closes Jan 4, before anything validation sees) and not in the
    lead-disjoint one, because A's Jan 18 and Feb 1 snapshots validate."""
    config = SnapshotConfig(horizon_days=28, cadence_days=14, valid_window_days=28)
    leads = _leads(
        [
            ("A", "2025-12-01", "converted", "2026-02-20"),  # grid: Dec 7 .. Feb 1 (+ Feb 15)
            ("B", "2025-11-01", "lost", "2025-12-20"),  # grid: Nov 9, Nov 23, Dec 7
        ]
    )
    snaps = make_snapshots(leads, END, config)
    rows = snaps.rows
    time = out_of_time_split(snaps, config)
    disjoint = out_of_time_split(snaps, config.model_copy(update={"split": "lead_disjoint"}))
    assert time.valid_start == ts("2026-01-04") and time.train_end == ts("2025-12-07")
    assert time.words == "snapshots of the newest 28 days (out of time, with a 28-day embargo)"
    assert disjoint.words == (
        "snapshots of the newest 28 days (out of time, with a 28-day embargo; no lead on both "
        "sides)"
    )

    def keys(positions: np.ndarray) -> list[tuple[str, pd.Timestamp]]:
        return list(
            zip(rows["lead_id"].iloc[positions], rows["as_of"].iloc[positions], strict=True)
        )

    assert (
        keys(time.valid)
        == keys(disjoint.valid)
        == [("A", ts("2026-01-18")), ("A", ts("2026-02-01"))]
    )
    assert rows["label"].iloc[time.valid].tolist() == [0, 1]  # converts Feb 20
    assert keys(time.train) == [
        ("B", ts("2025-11-09")),
        ("B", ts("2025-11-23")),
        ("A", ts("2025-12-07")),
        ("B", ts("2025-12-07")),
    ]
    assert ("A", ts("2025-12-07")) not in keys(disjoint.train)
    # A's training label is a negative known on Jan 4: it did not convert by then
    assert rows["label"].iloc[time.train].tolist() == [0, 0, 0, 0]


def test_time_split_never_trains_on_a_label_window_that_reaches_validation():
    leads = _random_leads(seed=2)
    config = SnapshotConfig(horizon_days=28, cadence_days=14, valid_window_days=56)
    assert config.split == "time"  # the default
    snaps = make_snapshots(leads, END, config)
    split = out_of_time_split(snaps, config)
    train, valid = snaps.rows.iloc[split.train], snaps.rows.iloc[split.valid]
    assert len(train) > 100 and len(valid) > 20
    # no leakage: every training label window (as_of + H) ends by the validation start
    assert (train["as_of"] + pd.Timedelta(days=28) <= split.valid_start).all()
    assert (valid["as_of"] > split.valid_start).all()
    # leads do sit on both sides (their older snapshots train), and the lead-disjoint
    # split's training rows are exactly the time split's minus those leads' rows
    shared = set(train["lead_id"]) & set(valid["lead_id"])
    assert shared
    disjoint = out_of_time_split(snaps, config.model_copy(update={"split": "lead_disjoint"}))
    kept = ~train["lead_id"].isin(shared).to_numpy()
    np.testing.assert_array_equal(disjoint.train, split.train[kept])
    np.testing.assert_array_equal(disjoint.valid, split.valid)
    # every snapshot up to the embargo trains: nothing older than train_end is lost
    older = np.flatnonzero((snaps.rows["as_of"] <= split.train_end).to_numpy())
    np.testing.assert_array_equal(split.train, older)


def test_a_flat_export_with_dates_asks_the_horizon_question_by_hand():
    """One example per lead as of created_at, H = 28 days, data end Mar 1 (censor after Feb 1)."""
    leads = _leads(
        [
            ("won_fast", "2026-01-01", "converted", "2026-01-20"),  # within 28 days: 1
            ("won_late", "2026-01-01", "converted", "2026-02-15"),  # after 45 days: 0
            ("won_undated", "2026-01-02", "converted", None),  # time unknown: counted within
            ("lost", "2026-01-03", "lost", "2026-01-10"),  # 0
            ("lost_undated", "2026-01-04", "lost", None),  # 0
            ("open_old", "2026-01-05", "open", None),  # no conversion in 28 days: 0
            ("open_young", "2026-02-10", "open", None),  # horizon past the end: censored
            ("won_young", "2026-02-10", "converted", "2026-02-12"),  # censored too
            ("lost_young", "2026-02-02", "lost", "2026-02-05"),  # censored
            ("on_the_edge", "2026-02-01", "lost", "2026-02-03"),  # Feb 1 + 28 = Mar 1: kept
        ]
    )
    snaps = flat_examples(leads, END, CONFIG)
    rows = snaps.rows
    assert dict(zip(rows["lead_id"], rows["label"], strict=True)) == {
        "won_fast": 1,
        "won_late": 0,
        "won_undated": 1,
        "lost": 0,
        "lost_undated": 0,
        "open_old": 0,
        "on_the_edge": 0,
    }
    assert rows["as_of"].tolist() == leads["created_at"].iloc[[0, 1, 2, 3, 4, 5, 9]].tolist()
    assert snaps.n_censored == 3 and snaps.data_end == END


def test_a_flat_export_without_dates_keeps_one_example_per_closed_lead():
    leads = _leads(
        [
            ("won", None, "converted", None),
            ("open", None, "open", None),
            ("lost", None, "lost", None),
            ("won_late", None, "converted", None),
        ]
    )
    for end in (pd.NaT, END):  # no created_at: the horizon cannot apply
        snaps = flat_examples(leads, end, CONFIG)
        assert snaps.rows["lead_id"].tolist() == ["won", "lost", "won_late"]
        assert snaps.rows["label"].tolist() == [1, 0, 1]
        assert snaps.rows["as_of"].isna().all() and snaps.n_censored == 0


def test_a_dated_flat_split_embargoes_one_horizon_before_validation():
    """Ten leads, H = 90: the newest two (from Jun 1) validate; training ends Mar 3, so the
    leads created within 90 days before Jun 1 (their labels settle after it) are in
    neither side. Listed newest first: the split goes by date, not file order."""
    created = {
        "L9": "2026-07-01",
        "L8": "2026-06-01",  # the first validation lead: the cut
        "L7": "2026-05-22",  # 10 days before the cut: label settled Aug 20, after it
        "L6": "2026-04-15",
        "L5": "2026-03-04",  # 89 days before
        "L4": "2026-03-03",  # exactly 90 days before: label settled on the cut day
        "L3": "2026-02-21",  # 100 days before
        "L2": "2026-02-01",
        "L1": "2026-01-15",
        "L0": "2026-01-01",
    }
    leads = _leads(
        [
            (lead, day, "converted" if i % 3 == 0 else "lost", day)
            for i, (lead, day) in enumerate(created.items())
        ]
    )
    config = SnapshotConfig(horizon_days=90, valid_fraction=0.2)
    snaps, split = training_examples(
        leads, ts("2026-12-31"), config, has_activity_log=False, order="time"
    )
    ids = snaps.rows["lead_id"]
    assert ids.iloc[split.train].tolist() == ["L0", "L1", "L2", "L3", "L4"]
    assert ids.iloc[split.valid].tolist() == ["L8", "L9"]
    assert split.embargoed == 3  # L5, L6, L7
    assert split.valid_start == ts("2026-06-01") and split.train_end == ts("2026-03-03")
    assert split.words == (
        "the newest 20% of leads by created date (out of time; training ends 90 days before "
        "the first of them, so the 3 leads created in between are in neither side)"
    )
    # no horizon given: the old cut, every older lead trains
    plain = ordered_split(snaps, 0.2, by_time=True)
    assert len(plain.train) == 8 and plain.embargoed == 0
    assert plain.words == "the newest 20% of leads by created date (out of time)"
    # by file order there are no dates to embargo by: the same rows with or without H
    by_rows = ordered_split(snaps, 0.2, by_time=False, horizon_days=90)
    assert by_rows.train.tolist() == list(range(8)) and by_rows.valid.tolist() == [8, 9]
    assert by_rows.embargoed == 0 and pd.isna(by_rows.train_end)
