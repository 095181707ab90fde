"""One more activity by delta (models/nurture/delta.py) against the rebuild it replaces.

The what-if features of a nurture lead are computed from its scored feature row; they must
be the builder's own values, bit for bit, for every column and every activity type, on
hand-made edge cases (no activity, "never" and beyond, window edges, an activity exactly
at the synthetic time or after it, at and after ``as_of``, undeclared and negative-points
types, high intent) and on a random log. No model: cheap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.features.builder import build_features, entities_at
from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT
from leadscore.features.names import DAYS_SINCE_ANY, DECAYED_TOTAL, ENGAGEMENT_POINTS
from leadscore.models.nurture.delta import one_more
from leadscore.models.nurture.next_step import (
    SYNTHETIC_LAG,
    next_step_probabilities,
    synthetic_time,
    what_if,
)
from leadscore.models.scoring import Partition

AS_OF = pd.Timestamp("2026-03-01 06:00", tz="UTC")
SECOND, DAY = pd.Timedelta(seconds=1), pd.Timedelta(days=1)


def _edge_cases() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One lead a case; the activities each lead has (type, time before AS_OF)."""
    cases: dict[str, list[tuple[str, pd.Timedelta]]] = {
        "none": [],
        "ancient": [("email_open", 4000 * DAY), ("unsubscribe", 3650 * DAY)],  # beyond never
        "window edges": [
            ("email_open", 7 * DAY),  # age 7.0: not in the 7-day window
            ("email_open", 7 * DAY - SECOND),
            ("webinar_signup", 30 * DAY + SECOND),
            ("webinar_signup", 30 * DAY),
        ],
        "at the synthetic time": [("email_open", SECOND), ("meeting_booked", SECOND)],
        "younger than it": [("webinar_signup", SECOND / 2), ("email_open", 3 * DAY)],
        "at and after as_of": [("meeting_booked", 0 * DAY), ("email_open", -DAY)],
        "undeclared type": [("chat", 2 * DAY), ("chat", 40 * DAY)],
        "negative points": [("unsubscribe", 1 * DAY), ("unsubscribe", 9 * DAY)],
        "high intent": [("meeting_booked", 12 * DAY), ("email_open", 0.25 * DAY)],
        "many": [(t, k * 0.37 * DAY) for k in range(1, 40) for t in ("email_open", "unsubscribe")],
    }
    ids = [f"L{i}" for i in range(len(cases))]
    leads = pd.DataFrame(
        {
            LEAD_ID: ids,
            "created_at": pd.Series([AS_OF - 5000 * DAY] * len(ids), dtype="datetime64[ns, UTC]"),
            "industry": ["a"] * len(ids),
            "employees": [10.0] * len(ids),
        }
    )
    pairs = zip(ids, cases.values(), strict=True)
    rows = [(i, t, AS_OF - ago) for i, acts in pairs for t, ago in acts]
    acts = pd.DataFrame(rows, columns=[LEAD_ID, ACTIVITY_TYPE, OCCURRED_AT])
    acts[OCCURRED_AT] = acts[OCCURRED_AT].astype("datetime64[ns, UTC]")
    return leads, acts


def _random_log(n_leads: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"R{i:03d}" for i in range(n_leads)]
    leads = pd.DataFrame(
        {
            LEAD_ID: ids,
            "created_at": pd.Series([AS_OF - 400 * DAY] * n_leads, dtype="datetime64[ns, UTC]"),
            "industry": rng.choice(["a", "b"], n_leads),
            "employees": rng.integers(1, 500, n_leads).astype(float),
        }
    )
    n = 30 * n_leads
    types = ["email_open", "webinar_signup", "meeting_booked", "unsubscribe", "chat"]
    ago = (rng.exponential(20.0, n) * DAY.value).astype(np.int64)  # many near as_of
    edges = np.array([7 * DAY.value, 30 * DAY.value, 0, -DAY.value, SECOND.value])
    special = rng.random(n) < 0.05  # window edges, at and after as_of, at as_of - 1 s
    ago[special] = rng.choice(edges, int(special.sum()))
    acts = pd.DataFrame(
        {
            LEAD_ID: rng.choice(ids, n),
            ACTIVITY_TYPE: rng.choice(types, n),
            OCCURRED_AT: pd.Series(pd.DatetimeIndex(AS_OF.value - ago, tz="UTC").as_unit("ns")),
        }
    )
    return leads, acts


def _check_against_the_rebuild(leads, acts, config) -> np.ndarray:
    """Every column of every lead, per declared type: moved by delta == rebuilt with one
    more activity at as_of - 1 s. Returns the leads flagged for a rebuild."""
    X = build_features(leads, acts, entities_at(leads, AS_OF), config)
    types = list(config.activity_types)
    rows = np.arange(len(leads))
    delta = one_more(X, rows, config, types, SYNTHETIC_LAG.value)
    assert delta is not None
    moves, younger = delta
    stamp = synthetic_time(AS_OF)
    keep = ~younger
    for kind, moved in zip(types, moves, strict=True):
        extra = pd.DataFrame(
            {
                LEAD_ID: leads[LEAD_ID].to_numpy(),
                ACTIVITY_TYPE: kind,
                OCCURRED_AT: pd.Series([stamp] * len(leads), dtype="datetime64[ns, UTC]"),
            }
        )
        log = pd.concat([acts, extra], ignore_index=True)
        rebuilt = build_features(leads, log, entities_at(leads, AS_OF), config)
        for column in X.columns[2:]:
            got = X[column].to_numpy()
            if column in moved:
                got = moved[column].apply(got.astype(np.float64))
            want = rebuilt[column].to_numpy()
            assert np.array_equal(got[keep], want[keep]), (kind, column)
    return younger


def test_one_more_is_the_rebuild_bit_for_bit_on_edge_cases(small_config):
    leads, acts = _edge_cases()
    younger = _check_against_the_rebuild(leads, acts, small_config)
    assert leads[LEAD_ID][younger].tolist() == ["L4"]  # only "younger than it" is rebuilt


def test_one_more_is_the_rebuild_bit_for_bit_on_a_random_log(small_config):
    leads, acts = _random_log(300, seed=5)
    younger = _check_against_the_rebuild(leads, acts, small_config)
    assert not younger.any()


def test_the_moved_columns_are_exactly_those_that_move(small_config):
    """No column is moved that the rebuild leaves as it was, and the summaries move."""
    leads, acts = _edge_cases()
    X = build_features(leads, acts, entities_at(leads, AS_OF), small_config)
    moves, _ = one_more(X, np.arange(len(leads)), small_config, ["email_open"], 10**9)
    assert set(moves[0]) == {
        "n_email_open_7d", "n_email_open_30d", "decay_email_open", "days_since_email_open",
        DAYS_SINCE_ANY, DECAYED_TOTAL, ENGAGEMENT_POINTS,
    }  # fmt: skip
    moves, _ = one_more(X, np.arange(len(leads)), small_config, ["meeting_booked"], 10**9)
    assert "days_since_last_high_intent" in moves[0]


class _Reads:
    """A stand-in model (no trees): its log-odds is one feature column."""

    def __init__(self, column: str) -> None:
        self.features = [column]

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.features[0]].to_numpy(dtype=np.float64)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        return raw


def test_a_model_without_trees_gets_the_rebuild_s_answer(small_config):
    """Scored through ``raw_score`` over the (lead, type) rows, and a lead with an
    activity younger than the added one rebuilt: the rebuild's numbers, exactly."""
    leads, acts = _edge_cases()
    X = build_features(leads, acts, entities_at(leads, AS_OF), small_config)
    part, types = Partition(leads, acts), list(small_config.activity_types)
    rows = np.array([0, 2, 3, 4, 8, 9])  # some leads, "younger than it" (4) among them
    for column in (DECAYED_TOTAL, ENGAGEMENT_POINTS, "days_since_last_high_intent"):
        model = _Reads(column)
        got = next_step_probabilities(X, rows, part, AS_OF, model, small_config, types)
        want = what_if(Partition(leads.iloc[rows], acts), AS_OF, model, small_config, types)
        if column == ENGAGEMENT_POINTS:  # the builder's own BLAS product varies in the last
            # bit with the rows around (one lead rebuilt alone: a dot, not a gemv)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
            assert np.array_equal(np.delete(got, 3, axis=0), np.delete(want, 3, axis=0))
        else:
            assert np.array_equal(got, want), column
