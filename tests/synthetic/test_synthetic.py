"""Tests of the embedded synthetic CRM: contract, determinism, hidden dynamics, oracle, I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import leadscore.synthetic as synthetic
from leadscore.synthetic import (
    ACTIVITY_TYPES,
    DEFAULT_END,
    UNDECLARED_TYPE,
    SyntheticCRM,
    generate_crm,
    oracle_probability,
    write_crm,
)
from leadscore.synthetic.world import (
    CAMPAIGN_DAYS,
    HAZARD_A,
    HAZARD_B,
    HAZARD_C,
    HAZARD_D,
    TRUE_HALF_LIFE_DAYS,
    TRUE_WEIGHTS,
)

N_LEADS = 3_000
SEED = 11
ORACLE_PATHS = 16  # the oracle's estimate is smooth (Rao-Blackwellized): few paths suffice

LEAD_COLUMNS = [
    "lead_id", "created_at", "status", "closed_at", "owner", "segment",
    "industry", "country", "seniority", "department", "company_size", "lead_source",
    "employees", "annual_revenue_musd", "contact_name", "company_name", "email",
]  # fmt: skip
STRING_LEAD_COLUMNS = [
    "lead_id", "status", "owner", "segment",
    "industry", "country", "seniority", "department", "company_size", "lead_source",
    "contact_name", "company_name", "email",
]  # fmt: skip
ACTIVITY_COLUMNS = ["lead_id", "activity_type", "occurred_at", "value"]
SIZE_SEGMENT = {
    "1-10": "smb", "11-50": "smb", "51-200": "mid_market",
    "201-1000": "mid_market", "1001-5000": "enterprise", "5000+": "enterprise",
}  # fmt: skip
SIZE_BOUNDS = {
    "1-10": (1, 10), "11-50": (11, 50), "51-200": (51, 200),
    "201-1000": (201, 1000), "1001-5000": (1001, 5000), "5000+": (5001, np.inf),
}  # fmt: skip


@pytest.fixture(scope="module")
def crm() -> SyntheticCRM:
    return generate_crm(N_LEADS, SEED)


def _is_utc(dtype: object) -> bool:
    return isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC via the Mann-Whitney rank statistic (ties get average ranks)."""
    ranks = pd.Series(scores).rank().to_numpy()
    pos = labels.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _snapshots(leads: pd.DataFrame, cadence_days: int, horizon_days: int) -> pd.DataFrame:
    """Snapshots of each lead every cadence while open, uncensored, with the horizon label."""
    created = leads["created_at"].to_numpy(dtype="datetime64[ns]")
    closed = leads["closed_at"].fillna(DEFAULT_END).to_numpy(dtype="datetime64[ns]")
    steps = np.arange(1, 400 // cadence_days + 2)
    as_of = created[:, None] + steps[None, :] * np.timedelta64(cadence_days, "D")
    horizon = np.timedelta64(horizon_days, "D")
    keep = (as_of < closed[:, None]) & (as_of + horizon <= DEFAULT_END.to_datetime64())
    row, step = np.nonzero(keep)
    as_of = as_of[row, step]
    converted = leads["status"].to_numpy()[row] == "converted"
    closed_at = leads["closed_at"].to_numpy(dtype="datetime64[ns]")[row]
    label = converted & (closed_at <= as_of + horizon)
    return pd.DataFrame(
        {
            "lead_id": leads["lead_id"].to_numpy()[row],
            "as_of": pd.to_datetime(as_of, utc=True),
            "label": label,
        }
    )


# --- determinism --------------------------------------------------------------------------


def test_same_seed_gives_identical_frames() -> None:
    first, second = generate_crm(400, 5), generate_crm(400, 5)
    for name in ("leads", "activities", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_different_seed_gives_different_frames() -> None:
    first, second = generate_crm(400, 5), generate_crm(400, 6)
    assert not first.leads.equals(second.leads)
    assert not first.activities.equals(second.activities)
    assert not np.allclose(first.truth["fit_logit"], second.truth["fit_logit"])
    assert first.truth["calendar_key"][0] != second.truth["calendar_key"][0]


# --- contract -----------------------------------------------------------------------------


def test_leads_columns_and_dtypes(crm: SyntheticCRM) -> None:
    leads = crm.leads
    assert list(leads.columns) == LEAD_COLUMNS
    assert len(leads) == N_LEADS
    for column in STRING_LEAD_COLUMNS:
        assert pd.api.types.is_string_dtype(leads[column]), column
    assert _is_utc(leads["created_at"].dtype)
    assert _is_utc(leads["closed_at"].dtype)
    assert leads["employees"].dtype == np.float64
    assert leads["annual_revenue_musd"].dtype == np.float64
    assert leads["lead_id"].is_unique
    assert leads["lead_id"].str.fullmatch(r"L\d{7}").all()


def test_lead_lifecycle(crm: SyntheticCRM) -> None:
    leads = crm.leads
    assert set(leads["status"]) == {"open", "converted", "lost"}
    is_open = leads["status"] == "open"
    assert (leads["closed_at"].isna() == is_open).all()
    closed = leads[~is_open]
    assert (closed["created_at"] <= closed["closed_at"]).all()
    assert (closed["closed_at"] < DEFAULT_END).all()
    start = DEFAULT_END - pd.Timedelta(days=730)
    assert leads["created_at"].between(start, DEFAULT_END, inclusive="left").all()
    assert 0.10 <= is_open.mean() <= 0.20


def test_conversion_rates_are_realistic(crm: SyntheticCRM) -> None:
    status = crm.leads["status"]
    closed = status[status != "open"]
    assert 0.05 <= (closed == "converted").mean() <= 0.15
    assert 0.05 <= (status == "converted").mean() <= 0.15


def test_attributes_are_consistent(crm: SyntheticCRM) -> None:
    leads = crm.leads
    assert (leads["segment"] == leads["company_size"].map(SIZE_SEGMENT)).all()
    bounds = leads["company_size"].map(SIZE_BOUNDS)
    known = leads["employees"].notna()
    low = bounds[known].str[0].astype(float)
    high = bounds[known].str[1].astype(float)
    assert leads.loc[known, "employees"].between(low, high).all()
    log_emp = np.log(leads["employees"])
    log_rev = np.log(leads["annual_revenue_musd"])
    assert log_emp.corr(log_rev) > 0.8
    assert leads["owner"].nunique() == 12
    assert leads["industry"].nunique() == 8
    assert leads["country"].nunique() == 8
    for column in ("industry", "department", "annual_revenue_musd"):
        assert 0.003 <= leads[column].isna().mean() <= 0.04, column
    assert leads[["lead_id", "status", "segment", "company_size"]].notna().all().all()


def test_activities_contract(crm: SyntheticCRM) -> None:
    acts = crm.activities
    assert list(acts.columns) == ACTIVITY_COLUMNS
    assert pd.api.types.is_string_dtype(acts["lead_id"])
    assert pd.api.types.is_string_dtype(acts["activity_type"])
    assert _is_utc(acts["occurred_at"].dtype)
    assert acts["value"].dtype == np.float64
    assert acts["value"].isna().mean() > 0.8
    assert 15 <= len(acts) / N_LEADS <= 40

    created = acts["lead_id"].map(crm.leads.set_index("lead_id")["created_at"])
    assert created.notna().all()
    assert (acts["occurred_at"] >= created).all()
    assert (acts["occurred_at"] < DEFAULT_END).all()

    ordered = acts.sort_values(["lead_id", "occurred_at"], kind="stable")
    assert ordered.index.equals(acts.index)


def test_activity_types(crm: SyntheticCRM) -> None:
    types = crm.activities["activity_type"]
    assert set(types) == {*ACTIVITY_TYPES, UNDECLARED_TYPE}
    assert 0.001 <= (types == UNDECLARED_TYPE).mean() <= 0.006


def test_truth_is_one_row_per_lead(crm: SyntheticCRM) -> None:
    truth = crm.truth
    assert truth["lead_id"].tolist() == crm.leads["lead_id"].tolist()
    hidden = {"persona", "fit_logit", "interest", "created_at", "true_industry"}
    assert hidden | {"burst_key", "calendar_key"} <= set(truth.columns)
    assert truth["created_at"].equals(crm.leads["created_at"])
    observed = crm.leads["industry"].notna()
    assert (truth.loc[observed, "true_industry"] == crm.leads.loc[observed, "industry"]).all()
    assert truth["true_industry"].notna().all()
    assert truth["burst_key"].dtype == np.int64
    assert truth["burst_key"].is_unique
    assert truth["calendar_key"].nunique() == 1  # one marketing calendar per CRM
    assert "non_icp" in set(truth["persona"])
    assert truth["persona"].nunique() >= 3
    assert (truth["interest"] > 0).all()
    icp = truth["persona"] != "non_icp"
    assert truth.loc[icp, "fit_logit"].mean() > truth.loc[~icp, "fit_logit"].mean() + 1.0


def test_converted_leads_leave_post_close_activities(crm: SyntheticCRM) -> None:
    closed_at = crm.activities["lead_id"].map(crm.leads.set_index("lead_id")["closed_at"])
    after_close = crm.activities[crm.activities["occurred_at"] > closed_at]
    status = after_close["lead_id"].map(crm.leads.set_index("lead_id")["status"])
    assert (status == "converted").sum() > 0
    assert set(after_close.loc[status == "lost", "activity_type"]) <= {"email_open"}


# --- hidden dynamics ----------------------------------------------------------------------


def _engagement_before_close(crm: SyntheticCRM, window_days: int) -> pd.DataFrame:
    """True decayed engagement at the close, from activities in the window before it."""
    closed = crm.leads.loc[crm.leads["status"] != "open", ["lead_id", "status", "closed_at"]]
    acts = crm.activities.merge(closed, on="lead_id")
    age = acts["closed_at"] - acts["occurred_at"]
    acts = acts[(age > pd.Timedelta(0)) & (age <= pd.Timedelta(days=window_days))]
    age_days = (acts["closed_at"] - acts["occurred_at"]).dt.total_seconds() / 86_400
    weight = acts["activity_type"].map(TRUE_WEIGHTS).fillna(0.0)
    contrib = weight * np.exp2(-age_days / TRUE_HALF_LIFE_DAYS)
    engagement = contrib.groupby(acts["lead_id"]).sum()
    closed["engagement"] = closed["lead_id"].map(engagement).fillna(0.0)
    return closed


def test_recent_engagement_drives_conversion(crm: SyntheticCRM) -> None:
    closed = _engagement_before_close(crm, window_days=30)
    by_status = closed.groupby("status")["engagement"]
    means, medians = by_status.mean(), by_status.median()
    assert means["converted"] > 3 * means["lost"]
    assert medians["converted"] > 3 * max(medians["lost"], 1.0)


# --- oracle -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def snapshots(crm: SyntheticCRM) -> pd.DataFrame:
    return _snapshots(crm.leads, cadence_days=14, horizon_days=90)


@pytest.fixture(scope="module")
def snapshot_oracle(crm: SyntheticCRM, snapshots: pd.DataFrame) -> np.ndarray:
    return oracle_probability(
        crm.truth, crm.activities, snapshots, horizon_days=90, paths=ORACLE_PATHS
    )


@pytest.fixture(scope="module")
def entities(snapshots: pd.DataFrame) -> pd.DataFrame:
    return snapshots.groupby("lead_id").head(2).reset_index(drop=True)[["lead_id", "as_of"]]


def _hazard_at_as_of(crm: SyntheticCRM, rows: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """The former oracle: the true conversion hazard at as_of, compounded over the horizon
    (engagement held fixed, loss ignored)."""
    pairs = crm.activities.merge(rows[["lead_id", "as_of"]].reset_index(), on="lead_id")
    age_days = (pairs["as_of"] - pairs["occurred_at"]).dt.total_seconds() / 86_400
    pairs, age_days = pairs[age_days > 0], age_days[age_days > 0]
    weight = pairs["activity_type"].map(TRUE_WEIGHTS).fillna(0.0)
    engagement = (weight * np.exp2(-age_days / TRUE_HALF_LIFE_DAYS)).groupby(pairs["index"]).sum()
    engagement = engagement.reindex(range(len(rows)), fill_value=0.0).to_numpy()
    truth = crm.truth.set_index("lead_id").loc[rows["lead_id"]]
    logit = (
        HAZARD_A
        + HAZARD_B * truth["fit_logit"].to_numpy()
        + HAZARD_C * np.log1p(np.maximum(engagement, 0.0))
        + HAZARD_D * truth["log_interest"].to_numpy()
    )
    return 1.0 - (1.0 - 1.0 / (1.0 + np.exp(-logit))) ** horizon_days


def test_oracle_auc_is_high_but_not_perfect(
    crm: SyntheticCRM, snapshots: pd.DataFrame, snapshot_oracle: np.ndarray
) -> None:
    labels = snapshots["label"].to_numpy()
    assert 0.02 <= labels.mean() <= 0.2
    prob = snapshot_oracle
    assert prob.shape == (len(snapshots),)
    assert ((prob >= 0) & (prob <= 1)).all()
    auc = _auc(labels, prob)
    assert 0.88 <= auc <= 0.97
    # simulating loss and the coming engagement beats the hazard frozen at as_of
    assert auc > _auc(labels, _hazard_at_as_of(crm, snapshots, 90)) + 0.01


def test_oracle_is_calibrated(snapshots: pd.DataFrame, snapshot_oracle: np.ndarray) -> None:
    """The oracle replays the world that made the labels, so its probabilities come true."""
    labels, prob = snapshots["label"].to_numpy(), snapshot_oracle
    assert prob.mean() == pytest.approx(labels.mean(), abs=0.01)
    top = prob >= np.quantile(prob, 0.9)
    assert prob[top].mean() == pytest.approx(labels[top].mean(), rel=0.2)
    bottom = prob <= np.median(prob)
    assert labels[bottom].mean() < 0.01
    assert prob[bottom].mean() < 0.01


def test_oracle_replays_the_generators_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """White-box: at a day boundary, the hidden state the oracle rebuilds from ``truth`` and
    the activities equals the generator's own (engagement, last activity, unsubscribe, and
    the activity rate's calendar, burst, age and interest factors)."""
    day = DEFAULT_END.value // 1_000_000_000 // 86_400 - 100
    seen: dict[str, np.ndarray] = {}
    step = synthetic.simulate_day

    def spy(units, state, active, today, exogenous, **kwargs):
        if np.ndim(today) == 0 and today == day:
            seen["active"] = active.copy()
            seen["engagement"] = state.engagement[active].copy()
            seen["last_activity"] = state.last_activity[active].copy()
            seen["unsubscribed"] = state.unsubscribed[active].copy()
            seen["exogenous"] = np.array(exogenous)
        return step(units, state, active, today, exogenous, **kwargs)

    monkeypatch.setattr(synthetic.generator, "simulate_day", spy)
    world = generate_crm(1_500, 3)
    monkeypatch.undo()

    as_of = pd.Timestamp(day * 86_400, unit="s", tz="UTC")
    lead_ids = world.truth["lead_id"].to_numpy()[seen["active"]]
    born = world.truth.set_index("lead_id").loc[lead_ids, "created_at"].to_numpy() <= as_of
    rows = synthetic.oracle_rows(
        world.truth, world.activities, pd.DataFrame({"lead_id": lead_ids[born], "as_of": as_of}), 90
    )
    assert born.sum() > 100
    np.testing.assert_allclose(rows.engagement, seen["engagement"][born], rtol=1e-12, atol=1e-12)
    assert not rows.engagement_carry.any()
    np.testing.assert_array_equal(rows.last_activity, seen["last_activity"][born])
    np.testing.assert_array_equal(rows.unsubscribed, seen["unsubscribed"][born])
    calendar = synthetic.activity_calendar(day, 1, rows.calendar_key[0])[0, rows.industry]
    exogenous = synthetic.exogenous_rate(
        rows.log_interest, rows.created, day, calendar, rows.burst_left
    )
    np.testing.assert_allclose(exogenous, seen["exogenous"][born], rtol=1e-12)
    assert (rows.burst_left > 0).any()


def test_oracle_is_deterministic_per_seed(crm: SyntheticCRM, entities: pd.DataFrame) -> None:
    first = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS)
    again = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS)
    np.testing.assert_array_equal(again, first)
    other = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS, seed=1)
    assert not np.array_equal(other, first)
    assert np.abs(other - first).mean() < 0.15 * first.mean()  # other noise, same probability


def test_oracle_rows_do_not_depend_on_each_other(crm: SyntheticCRM, entities: pd.DataFrame) -> None:
    full = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS)
    some = entities.iloc[::-7]
    alone = oracle_probability(crm.truth, crm.activities, some, 90, paths=ORACLE_PATHS)
    np.testing.assert_array_equal(alone, full[some.index.to_numpy()])


def test_oracle_ignores_activities_at_or_after_as_of(
    crm: SyntheticCRM, entities: pd.DataFrame
) -> None:
    base = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS)

    # A lead's second snapshot sees the first as the past; move everything at/after the
    # *first* snapshot of each lead a week later and plant a meeting exactly at it.
    first = entities.groupby("lead_id").head(1).set_index("lead_id")["as_of"]
    cutoff = crm.activities["lead_id"].map(first)
    after = crm.activities["occurred_at"] >= cutoff
    moved = crm.activities.copy()
    moved.loc[after, "occurred_at"] += pd.Timedelta(days=7)
    planted = pd.DataFrame(
        {
            "lead_id": first.index,
            "activity_type": "meeting_booked",
            "occurred_at": first.to_numpy(),
            "value": np.nan,
        }
    )
    moved = pd.concat([moved, planted], ignore_index=True)
    shifted = oracle_probability(crm.truth, moved, entities, 90, paths=ORACLE_PATHS)

    is_first = ~entities.duplicated("lead_id").to_numpy()
    np.testing.assert_array_equal(shifted[is_first], base[is_first])
    assert not np.allclose(shifted[~is_first], base[~is_first])


def test_oracle_knows_the_present_not_the_future(crm: SyntheticCRM, entities: pd.DataFrame) -> None:
    """The hidden keys fix the world's bursts and campaigns past and future; the oracle
    may read from them only what is running at as_of. Another key that leaves a row's state
    at as_of alone leaves its probability alone, to the bit: the future is drawn per path."""
    base = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS)

    keys = crm.truth["burst_key"].to_numpy().view(np.uint64)
    other_bursts = crm.truth.assign(burst_key=synthetic.mix64(keys ^ np.uint64(99)).view(np.int64))
    moved = oracle_probability(other_bursts, crm.activities, entities, 90, paths=ORACLE_PATHS)
    state = synthetic.oracle_rows(crm.truth, crm.activities, entities, 90).burst_left
    state_moved = synthetic.oracle_rows(other_bursts, crm.activities, entities, 90).burst_left
    same = state == state_moved
    assert same.sum() > 0.8 * len(entities) and (~same).sum() > 0
    np.testing.assert_array_equal(moved[same], base[same])
    assert not np.allclose(moved[~same], base[~same])

    rows = synthetic.oracle_rows(crm.truth, crm.activities, entities, 90)
    # campaigns started before as_of (the same day too, when as_of is after midnight) and
    # still running on the as_of day
    days = rows.begin[:, None] // 86_400 - np.arange(CAMPAIGN_DAYS)
    started = days * 86_400 < rows.begin[:, None]

    def running(key: np.uint64) -> np.ndarray:
        starts, targets = synthetic.campaign_starts(days, key)
        return (started & starts & (targets == rows.industry[:, None])).any(axis=1)

    key = rows.calendar_key[0]
    other_key = key ^ np.uint64(0x5DEECE66D)
    other_calendar = crm.truth.assign(calendar_key=np.int64(other_key.view(np.int64)))
    moved = oracle_probability(other_calendar, crm.activities, entities, 90, paths=ORACLE_PATHS)
    quiet = ~running(key) & ~running(other_key)
    assert quiet.sum() > 0.8 * len(entities) and (~quiet).sum() > 0
    np.testing.assert_array_equal(moved[quiet], base[quiet])
    assert not np.allclose(moved[~quiet], base[~quiet])


def test_oracle_is_order_and_dtype_agnostic(crm: SyntheticCRM, entities: pd.DataFrame) -> None:
    base = oracle_probability(crm.truth, crm.activities, entities, 90, paths=ORACLE_PATHS)
    shuffled = crm.activities.sample(frac=1.0, random_state=0)
    micro = entities.assign(as_of=entities["as_of"].astype("datetime64[us, UTC]"))
    again = oracle_probability(crm.truth, shuffled, micro, 90, paths=ORACLE_PATHS)
    np.testing.assert_array_equal(again, base)


def test_oracle_rewards_recent_not_lifetime_engagement() -> None:
    as_of = pd.Timestamp("2026-06-01", tz="UTC")
    names = ["old", "recent", "quiet"]
    truth = pd.DataFrame(
        {
            "lead_id": names,
            "fit_logit": 1.0,
            "interest": 1.0,
            "created_at": as_of - pd.Timedelta(days=230),
            "true_industry": "software",
            "burst_key": 7,  # the same bursts for all three
            "calendar_key": 11,
        }
    )
    old = as_of - pd.to_timedelta(np.arange(200, 220), unit="D")  # 20 meetings long ago
    recent = as_of - pd.to_timedelta([2, 5], unit="D")  # 2 meetings this week
    activities = pd.DataFrame(
        {
            "lead_id": ["old"] * len(old) + ["recent"] * len(recent),
            "activity_type": "meeting_booked",
            "occurred_at": old.append(recent),
            "value": np.nan,
        }
    )
    entities = pd.DataFrame({"lead_id": names, "as_of": as_of})
    p_old, p_recent, p_quiet = oracle_probability(
        truth, activities, entities, horizon_days=90, paths=1024
    )
    assert p_recent > 5 * p_old
    assert p_old == pytest.approx(p_quiet, rel=0.15)


def test_oracle_rejects_bad_input(crm: SyntheticCRM, entities: pd.DataFrame) -> None:
    unknown = pd.DataFrame({"lead_id": ["L9999999"], "as_of": [DEFAULT_END]})
    with pytest.raises(ValueError, match="absent from truth"):
        oracle_probability(crm.truth, crm.activities, unknown, horizon_days=90)
    stale = crm.truth.drop(columns=["burst_key"])
    with pytest.raises(ValueError, match="regenerate"):
        oracle_probability(stale, crm.activities, entities, horizon_days=90)
    early = entities.head(3).assign(as_of=lambda e: e["as_of"] - pd.Timedelta(days=800))
    with pytest.raises(ValueError, match="before its lead was created"):
        oracle_probability(crm.truth, crm.activities, early, horizon_days=90)
    with pytest.raises(ValueError, match="positive"):
        oracle_probability(crm.truth, crm.activities, entities, horizon_days=90, paths=0)


# --- generation edge cases and I/O -------------------------------------------------------


def test_custom_window_and_naive_end() -> None:
    small = generate_crm(50, 1, end=pd.Timestamp("2025-01-01"), days=60)
    assert _is_utc(small.leads["created_at"].dtype)
    assert (small.activities["occurred_at"] < pd.Timestamp("2025-01-01", tz="UTC")).all()
    assert small.leads["created_at"].min() >= pd.Timestamp("2024-11-02", tz="UTC")


def test_end_need_not_be_midnight() -> None:
    end = pd.Timestamp("2025-03-01 13:30:00", tz="UTC")
    small = generate_crm(300, 2, end=end, days=40)
    created = small.leads["created_at"]
    assert created.between(end - pd.Timedelta(days=40), end, inclusive="left").all()
    assert (small.activities["occurred_at"] < end).all()
    assert (small.leads["closed_at"].dropna() < end).all()
    assert (small.leads["status"] == "open").any()


def test_write_crm_round_trips_through_parquet(crm: SyntheticCRM, tmp_path) -> None:
    paths = write_crm(crm, tmp_path / "synthetic")
    assert set(paths) == {"leads", "activities", "truth"}
    for name, path in paths.items():
        assert path.name == f"{name}.parquet"
        assert path.exists()
        back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(back, getattr(crm, name))
    leads = pd.read_parquet(paths["leads"])
    assert _is_utc(leads["created_at"].dtype)
    assert _is_utc(leads["closed_at"].dtype)
