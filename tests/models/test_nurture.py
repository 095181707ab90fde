"""The nurture list's next step (models/nurture/next_step.py) on a small trained model.

The step must be the argmax of the probabilities a brute-force rebuild gives (one lead,
one type at a time, through ``build_features``), point in time (nothing at or after the
scoring time counts; the synthetic activity is at as_of - 1 s), only for leads in
``nurture.cells``, with a positive gain, and never an activity type marketing cannot
invite a lead to. One model is trained for the module (slow).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.accounts import AccountHistory
from leadscore.features.builder import build_features, entities_at
from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT
from leadscore.features.names import DECAYED_TOTAL
from leadscore.models.nurture.delta import one_more
from leadscore.models.nurture.forest import forest_of, lightgbm_columns, what_if_raw
from leadscore.models.nurture.next_step import (
    GAIN_DECIMALS,
    SYNTHETIC_LAG,
    best_steps,
    next_step_probabilities,
    reachable_types,
    synthetic_time,
    what_if,
    with_next_steps,
)
from leadscore.models.scoring import (
    RAW_SCORE,
    Partition,
    StageTimes,
    partition_features,
    score_partition,
)
from tests.conftest import train_small_model

ONE_SECOND = pd.Timedelta(seconds=1)


def test_best_step_is_the_largest_gain_first_on_a_tie_and_above_min_gain():
    current = np.array([0.10, 0.10, 0.50, 0.30, 0.20])
    probabilities = np.array(
        [
            [0.12, 0.15, 0.11],  # the second type gains most
            [0.13, 0.13, 0.12],  # a tie: the first type (declared order)
            [0.49, 0.50, 0.40],  # no type raises it
            [0.30004, 0.3, 0.3],  # a gain that reads 0.0000 is no step
            [0.26, 0.21, 0.2],  # 0.06 is not above min_gain 0.07 in the next call
        ]
    )
    steps, gains = best_steps(current, probabilities, ["a", "b", "c"])
    assert steps.tolist() == ["b", "a", None, None, "a"]
    np.testing.assert_allclose(gains, [0.05, 0.03, np.nan, np.nan, 0.06])
    steps, gains = best_steps(current, probabilities, ["a", "b", "c"], min_gain=0.055)
    assert steps.tolist() == [None, None, None, None, "a"]
    steps, gains = best_steps(current, probabilities[:, :0], [])
    assert steps.tolist() == [None] * 5 and np.isnan(gains).all()


def test_synthetic_activity_is_one_second_before_the_scoring_time():
    assert synthetic_time(pd.Timestamp("2026-11-22 03:15")) == pd.Timestamp(
        "2026-11-22 03:14:59", tz="UTC"
    )


class _Reads:
    """A stand-in model: its log-odds is one feature column, its calibration the identity."""

    def __init__(self, column: str) -> None:
        self.features = [column]

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.features[0]].to_numpy(dtype=np.float64)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        return raw


def test_the_lead_s_step_leaves_its_account_s_other_contacts_as_they_were(small_config):
    """An account's engagement is the other contacts' (features/accounts.py): one more
    activity of the lead itself raises its own decayed total, not the others'."""
    day, d0 = pd.Timedelta(days=1), pd.Timestamp("2026-01-01", tz="UTC")
    leads = pd.DataFrame(
        {
            LEAD_ID: ["L1", "L2"],
            "created_at": pd.Series([d0, d0], dtype="datetime64[ns, UTC]"),
            "account_id": ["A", "A"],
        }
    )
    acts = pd.DataFrame(
        {
            LEAD_ID: ["L1", "L2"],
            ACTIVITY_TYPE: ["email_open", "meeting_booked"],
            OCCURRED_AT: pd.Series([d0 + day, d0 + 12 * day], dtype="datetime64[ns, UTC]"),
        }
    )
    accounts = AccountHistory.of(leads, acts, {"account": "account_id"}, 10)
    as_of, types = d0 + 20 * day, ["email_open", "meeting_booked"]
    part = Partition(leads, acts)
    X = partition_features(part, as_of, small_config, accounts=accounts)
    for column, step in (("account_engagement", 0.0), (DECAYED_TOTAL, 2 ** (-1 / 86_400 / 10))):
        got = what_if(part, as_of, _Reads(column), small_config, types, accounts=accounts)
        expected = X[column].to_numpy() + step
        np.testing.assert_allclose(got, np.column_stack([expected, expected]), rtol=1e-12)
    assert X["account_engagement"].to_numpy() == pytest.approx([2**-0.8, 2**-1.9])


@pytest.fixture(scope="module")
def scored():
    """A model trained on a small CRM; its open leads scored as of the data end."""
    m = train_small_model(1500, seed=11)
    leads = m.crm.leads[m.crm.leads["status"] == "open"].reset_index(drop=True)
    part = Partition(leads, m.crm.activities)
    X = partition_features(part, m.end, m.settings.features)
    frame = score_partition(X, m.model, m.rules, m.registry, m.settings.scoring, leads)
    return m, part, X, frame


def _with_activities(settings, activities: list[str] | None):
    nurture = settings.nurture.model_copy(update={"activities": activities})
    return settings.model_copy(update={"nurture": nurture})


@pytest.mark.slow
def test_steps_only_for_nurture_and_educate_leads_with_positive_gains(scored):
    m, part, X, frame = scored
    times = StageTimes()
    out = with_next_steps(frame, X, part, m.end, m.model, m.settings, times=times)
    assert times.seconds["nurture"] > 0
    listed = out["cell"].isin(["nurture", "educate"])
    assert listed.sum() > 20 and (~listed).sum() > 20
    has_step = out["next_step"].notna()
    assert has_step.sum() > 10  # most nurture leads have a step that moves them
    assert not (has_step & ~listed).any()  # call_now / deprioritise leads: null
    assert out.loc[~listed, "next_step_gain"].isna().all()
    gains = out.loc[has_step, "next_step_gain"]
    assert (gains > 0).all() and (gains <= 1).all()
    assert (gains == gains.round(GAIN_DECIMALS)).all()
    assert out.loc[~has_step, "next_step_gain"].isna().all()
    # the rest of the row is the scores it was given
    nurture_columns = ["next_step", "next_step_gain"]
    pd.testing.assert_frame_equal(
        out.drop(columns=nurture_columns), frame.drop(columns=nurture_columns)
    )


@pytest.mark.slow
def test_the_step_is_the_argmax_of_a_brute_force_rebuild(scored):
    """One lead and one type at a time, with the row appended by hand at as_of - 1 s."""
    m, part, X, frame = scored
    out = with_next_steps(frame, X, part, m.end, m.model, m.settings)
    types = reachable_types(m.settings.features, m.settings.nurture)
    labels = [m.settings.features.type_label(t) for t in types]
    listed = out[out["cell"].isin(["nurture", "educate"])]
    sample = pd.concat([listed[listed["next_step"].notna()].head(4), listed.head(2)])
    acts = part.activities
    for _, row in sample.iterrows():
        lead = part.leads[part.leads[LEAD_ID] == row[LEAD_ID]]
        own = acts[acts[LEAD_ID] == row[LEAD_ID]][[LEAD_ID, ACTIVITY_TYPE, OCCURRED_AT]]
        probabilities = []
        for kind in types:
            extra = pd.DataFrame(
                {LEAD_ID: [row[LEAD_ID]], ACTIVITY_TYPE: [kind], OCCURRED_AT: [m.end - ONE_SECOND]}
            )
            log = pd.concat([own, extra], ignore_index=True)
            Xi = build_features(lead, log, entities_at(lead, m.end), m.settings.features)
            probabilities.append(m.model.calibrated(m.model.raw_score(Xi))[0])
        gains = np.array(probabilities) - row["probability"]
        best = int(np.argmax(gains))
        if round(gains[best], GAIN_DECIMALS) > 0:
            assert row["next_step"] == labels[best]
            assert row["next_step_gain"] == pytest.approx(gains[best], abs=1e-4)
        else:
            assert row["next_step"] is None and np.isnan(row["next_step_gain"])


@pytest.mark.slow
def test_activities_at_or_after_the_scoring_time_change_nothing(scored):
    m, part, X, frame = scored
    before = with_next_steps(frame, X, part, m.end, m.model, m.settings)
    listed = before.loc[before["cell"].isin(["nurture", "educate"]), LEAD_ID]
    later = pd.DataFrame(  # every nurture lead books a meeting and views pricing, too late
        {
            LEAD_ID: np.repeat(listed.to_numpy(), 3),
            ACTIVITY_TYPE: np.tile(
                ["meeting_booked", "pricing_page_view", "webinar_attended"], len(listed)
            ),
            OCCURRED_AT: np.tile(
                [m.end, m.end + pd.Timedelta(hours=1), m.end + pd.Timedelta(days=3)], len(listed)
            ),
        }
    )
    moved = Partition(part.leads, pd.concat([part.activities, later], ignore_index=True))
    after = with_next_steps(frame, X, moved, m.end, m.model, m.settings)
    pd.testing.assert_frame_equal(before, after)
    # the what-if is the lead with a real activity at as_of - 1 s (one at as_of counts not)
    config, types = m.settings.features, ["pricing_page_view"]
    leads = part.leads.set_index(LEAD_ID).loc[listed].reset_index()
    guesses = what_if(Partition(leads, part.activities), m.end, m.model, config, types)[:, 0]
    now = before.set_index(LEAD_ID).loc[listed, "probability"].to_numpy()
    pick = int(np.flatnonzero(guesses != now)[0])
    lead = leads.iloc[[pick]]
    seen = []
    for when in (m.end - ONE_SECOND, m.end):
        row = later.iloc[:1].assign(**{LEAD_ID: lead[LEAD_ID].iloc[0], OCCURRED_AT: when})
        real = Partition(lead, pd.concat([part.activities, row], ignore_index=True))
        seen.append(m.model.calibrated(m.model.raw_score(partition_features(real, m.end, config))))
    assert seen[0][0] == guesses[pick] and seen[1][0] == now[pick]


@pytest.mark.slow
def test_types_marketing_cannot_invite_to_are_never_proposed(scored):
    m, part, X, frame = scored
    every = with_next_steps(frame, X, part, m.end, m.model, _with_activities(m.settings, None))
    unreachable = {"email open", "demo request", "meeting booked", "form submission"}
    assert set(every["next_step"].dropna()) & unreachable  # the restriction matters here
    shipped = with_next_steps(frame, X, part, m.end, m.model, m.settings)
    reachable = {m.settings.features.type_label(t) for t in m.settings.nurture.activities}
    assert set(shipped["next_step"].dropna()) <= reachable
    only = _with_activities(m.settings, ["page_view", "webinar_signup"])
    narrow = with_next_steps(frame, X, part, m.end, m.model, only)
    assert set(narrow["next_step"].dropna()) <= {"page view", "webinar sign-up"}
    assert narrow["next_step"].notna().any()
    none = with_next_steps(frame, X, part, m.end, m.model, _with_activities(m.settings, []))
    assert none["next_step"].isna().all() and none["next_step_gain"].isna().all()


@pytest.mark.slow
def test_a_flat_export_has_no_next_step(scored):
    m, part, X, frame = scored
    flat = Partition(part.leads, None)
    out = with_next_steps(frame, X, flat, m.end, m.model, m.settings)
    assert out["next_step"].isna().all() and out["next_step_gain"].isna().all()
    with pytest.raises(ValueError, match="activity log"):
        what_if(flat, m.end, m.model, m.settings.features, ["page_view"])


@pytest.mark.slow
def test_a_spilled_partition_gives_the_same_steps(scored):
    """As ``PartFile.load`` gives a partition: Arrow-backed text, the activities' lead id
    a categorical of the partition's ids (other leads' rows read as missing)."""
    m, part, X, frame = scored
    plain = with_next_steps(frame, X, part, m.end, m.model, m.settings)
    text = [c for c in part.leads.columns if part.leads[c].dtype == object]
    leads = part.leads.astype({c: "string[pyarrow]" for c in text})
    codes = pd.Index(part.leads[LEAD_ID]).get_indexer(part.activities[LEAD_ID])
    ids = pd.Categorical.from_codes(codes, categories=part.leads[LEAD_ID].astype(str))
    acts = part.activities.assign(
        **{LEAD_ID: ids, ACTIVITY_TYPE: part.activities[ACTIVITY_TYPE].astype("string[pyarrow]")}
    )
    spilled = with_next_steps(frame, X, Partition(leads, acts), m.end, m.model, m.settings)
    pd.testing.assert_frame_equal(plain, spilled)


@pytest.mark.slow
def test_the_delta_path_is_the_rebuild_for_every_type_and_nurture_lead(scored):
    """Every declared type (demo requests, meetings, unsubscribes too), every lead on the
    list: the probabilities by delta and tabulated trees are the rebuild's, exactly."""
    m, part, X, frame = scored
    types = list(m.settings.features.activity_types)
    rows = np.flatnonzero(frame["cell"].isin(m.settings.nurture.cells).to_numpy())
    own = frame[RAW_SCORE].to_numpy()[rows]
    fast = next_step_probabilities(X, rows, part, m.end, m.model, m.settings.features, types,
                                   own=own)  # fmt: skip
    leads = part.leads.iloc[rows]
    slow = what_if(Partition(leads, part.activities), m.end, m.model, m.settings.features, types)
    assert np.array_equal(fast, slow)
    assert (fast != frame["probability"].to_numpy()[rows, None]).mean() > 0.3  # they move


@pytest.mark.slow
def test_the_tabulated_trees_give_lightgbm_s_log_odds_to_the_last_bit(scored):
    """Missing numbers, missing and unseen categories, and every type's moved rows: the
    trees' sums in LightGBM's order equal ``raw_score`` bit for bit."""
    m, _, X, frame = scored
    forest = forest_of(m.model)
    assert forest is not None and forest_of(m.model) is forest  # built once per model
    odd = X.copy()
    numeric, categorical = m.model.numeric, m.model.categorical
    odd.loc[odd.index[::7], numeric[0]] = np.nan
    odd.loc[odd.index[1::5], categorical[0]] = None
    odd.loc[odd.index[2::5], categorical[1]] = "never seen"
    rows = np.arange(len(odd))
    config, types = m.settings.features, list(m.settings.features.activity_types)
    moves, _ = one_more(odd, rows, config, types, SYNTHETIC_LAG.value)
    position = {name: j for j, name in enumerate(forest.features)}
    by_position = [{position[n]: v for n, v in mv.items() if n in position} for mv in moves]
    own, raw = what_if_raw(forest, lightgbm_columns(m.model, odd, rows), by_position)
    assert np.array_equal(own, m.model.raw_score(odd))
    scored_as = what_if_raw(forest, lightgbm_columns(m.model, X, rows), [])[0]
    assert np.array_equal(scored_as, frame[RAW_SCORE].to_numpy())
    for k, moved in enumerate(moves):
        rows_k = odd.assign(**{n: v.apply(odd[n].to_numpy(np.float64)) for n, v in moved.items()})
        assert np.array_equal(raw[:, k], m.model.raw_score(rows_k)), types[k]
