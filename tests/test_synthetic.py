"""Tests of the embedded synthetic CRM: contract, determinism, hidden dynamics, oracle, I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.synthetic import (
    ACTIVITY_TYPES,
    DEFAULT_END,
    TRUE_HALF_LIFE_DAYS,
    TRUE_WEIGHTS,
    UNDECLARED_TYPE,
    SyntheticCRM,
    generate_crm,
    oracle_probability,
    write_crm,
)

N_LEADS = 3_000
SEED = 11

LEAD_COLUMNS = [
    "lead_id", "created_at", "status", "closed_at", "owner", "segment",
    "industry", "country", "seniority", "department", "company_size", "lead_source",
    "employees", "annual_revenue_musd",
]  # fmt: skip
STRING_LEAD_COLUMNS = [
    "lead_id", "status", "owner", "segment",
    "industry", "country", "seniority", "department", "company_size", "lead_source",
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
    assert {"persona", "fit_logit", "interest"} <= set(truth.columns)
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


def test_oracle_auc_is_high_but_not_perfect(crm: SyntheticCRM) -> None:
    snaps = _snapshots(crm.leads, cadence_days=14, horizon_days=90)
    assert 0.02 <= snaps["label"].mean() <= 0.2
    prob = oracle_probability(crm.truth, crm.activities, snaps, horizon_days=90)
    assert prob.shape == (len(snaps),)
    assert ((prob >= 0) & (prob <= 1)).all()
    assert 0.83 <= _auc(snaps["label"].to_numpy(), prob) <= 0.95


# --- oracle -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def entities(crm: SyntheticCRM) -> pd.DataFrame:
    snaps = _snapshots(crm.leads, cadence_days=14, horizon_days=90)
    return snaps.groupby("lead_id").head(2).reset_index(drop=True)[["lead_id", "as_of"]]


def test_oracle_ignores_activities_at_or_after_as_of(
    crm: SyntheticCRM, entities: pd.DataFrame
) -> None:
    base = oracle_probability(crm.truth, crm.activities, entities, horizon_days=90)

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
    shifted = oracle_probability(crm.truth, moved, entities, horizon_days=90)

    is_first = ~entities.duplicated("lead_id")
    np.testing.assert_array_equal(shifted[is_first.to_numpy()], base[is_first.to_numpy()])
    assert not np.allclose(shifted[~is_first.to_numpy()], base[~is_first.to_numpy()])


def test_oracle_is_order_and_dtype_agnostic(crm: SyntheticCRM, entities: pd.DataFrame) -> None:
    base = oracle_probability(crm.truth, crm.activities, entities, horizon_days=90)
    shuffled = crm.activities.sample(frac=1.0, random_state=0)
    micro = entities.assign(as_of=entities["as_of"].astype("datetime64[us, UTC]"))
    again = oracle_probability(crm.truth, shuffled, micro, horizon_days=90)
    np.testing.assert_allclose(again, base, rtol=1e-9)


def test_oracle_rewards_recent_not_lifetime_engagement() -> None:
    as_of = pd.Timestamp("2026-06-01", tz="UTC")
    truth = pd.DataFrame({"lead_id": ["old", "recent", "quiet"], "fit_logit": 1.0, "interest": 1.0})
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
    entities = pd.DataFrame({"lead_id": ["old", "recent", "quiet"], "as_of": as_of})
    p_old, p_recent, p_quiet = oracle_probability(truth, activities, entities, horizon_days=90)
    assert p_recent > 10 * p_old
    assert p_old == pytest.approx(p_quiet, rel=0.05)


def test_oracle_rejects_unknown_leads(crm: SyntheticCRM) -> None:
    entities = pd.DataFrame({"lead_id": ["L9999999"], "as_of": [DEFAULT_END]})
    with pytest.raises(ValueError, match="absent from truth"):
        oracle_probability(crm.truth, crm.activities, entities, horizon_days=90)


# --- generation edge cases and I/O -------------------------------------------------------


def test_custom_window_and_naive_end() -> None:
    small = generate_crm(50, 1, end=pd.Timestamp("2025-01-01"), days=60)
    assert _is_utc(small.leads["created_at"].dtype)
    assert (small.activities["occurred_at"] < pd.Timestamp("2025-01-01", tz="UTC")).all()
    assert small.leads["created_at"].min() >= pd.Timestamp("2024-11-02", tz="UTC")


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
