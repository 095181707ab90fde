"""Labels of a past batch with censoring: D < closed_at <= D + observed_days, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.models.monitor.outcomes import label_batch, observed_days

D = pd.Timestamp("2026-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def _outcomes() -> pd.DataFrame:
    rows = [
        (1, "converted", D + 10 * DAY),  # inside the window
        (2, "converted", D + 30 * DAY),  # on the window's last instant: counts
        (3, "converted", D + 30 * DAY + pd.Timedelta(hours=1)),  # after it: 0 so far
        (4, "lost", D + 5 * DAY),
        (5, "open", pd.NaT),
        # 6 absent: gone from the source
        (7, "converted", pd.NaT),  # converted, no date: unknown
        (8, "converted", D - DAY),  # closed before it was scored: unknown
        (9, "converted", D),  # closed at the scoring instant: not after D, unknown
    ]
    return pd.DataFrame(rows, columns=["lead_id", "status", "closed_at"])


def test_observed_days_are_whole_days_capped_at_the_horizon() -> None:
    assert observed_days(D, D + pd.Timedelta(days=30, hours=23), 90) == 30
    assert observed_days(D, D + 200 * DAY, 90) == 90
    assert observed_days(D, D - DAY, 90) == 0
    assert observed_days(D.tz_localize(None), D + 2 * DAY, 90) == 2  # naive means UTC


def test_a_young_batch_counts_conversions_so_far() -> None:
    now = D + pd.Timedelta(days=30, hours=12)
    labels = label_batch(range(1, 10), _outcomes(), as_of=D, now=now, horizon_days=90)
    assert labels.observed_days == 30 and not labels.mature
    assert labels.y.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert labels.known.tolist() == [True, True, True, True, True, False, False, False, False]
    assert (labels.n_known, labels.conversions) == (5, 2)


def test_a_mature_batch_counts_the_whole_horizon_and_no_further() -> None:
    outcomes = pd.concat(
        [
            _outcomes(),
            pd.DataFrame({"lead_id": [10], "status": ["converted"]}).assign(closed_at=D + 91 * DAY),
        ],
        ignore_index=True,
    )
    ids = np.arange(1, 11)
    labels = label_batch(ids, outcomes, as_of=D, now=D + 400 * DAY, horizon_days=90)
    assert labels.mature and labels.observed_days == 90
    assert labels.y.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # lead 10: day 91, too late
    assert labels.conversions == 3 and labels.n_known == 6


def test_nothing_is_observed_before_the_batch() -> None:
    labels = label_batch([1, 2, 4], _outcomes(), as_of=D, now=D, horizon_days=90)
    assert labels.observed_days == 0 and labels.conversions == 0 and labels.n_known == 3


def test_a_lead_listed_twice_keeps_its_last_row_and_naive_dates_are_utc() -> None:
    outcomes = pd.DataFrame(
        {
            "lead_id": ["a", "a", "b"],
            "status": ["open", "converted", "converted"],
            "closed_at": [pd.NaT, pd.Timestamp("2026-01-03"), pd.Timestamp("2026-01-02 12:00")],
        }
    )
    labels = label_batch(["b", "a", "z"], outcomes, as_of=D, now=D + 2 * DAY, horizon_days=90)
    assert labels.y.tolist() == [1, 1, 0]  # a: the open row is replaced; day 2 is inside
    assert labels.known.tolist() == [True, True, False]
    now = D + pd.Timedelta(days=1, hours=23)  # one whole day observed: both close later
    labels = label_batch(["b", "a", "z"], outcomes, as_of=D, now=now, horizon_days=90)
    assert labels.y.tolist() == [0, 0, 0] and labels.observed_days == 1


def test_an_empty_batch_has_no_labels() -> None:
    labels = label_batch([], _outcomes(), as_of=D, now=D + 100 * DAY, horizon_days=90)
    assert len(labels.y) == 0 and labels.n_known == 0 and labels.conversions == 0
