"""The recent conversion rate (features.market): what was known before T, and nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.features.builder import AS_OF, build_features, entities_at
from leadscore.features.config import FeatureConfig, MarketConfig
from leadscore.features.market import RECENT_CONVERSION_RATE, OutcomeHistory, periods
from leadscore.features.registry import MARKET, build_registry
from leadscore.features.snapshots import make_snapshots
from leadscore.models.scoring import partition_features, partition_leads
from leadscore.pipelines.settings import load_settings
from leadscore.pipelines.sources import load_crm
from leadscore.synthetic import generate_crm
from tests.conftest import ROOT, two_file_settings

START = pd.Timestamp("2026-01-01", tz="UTC")


def _leads(n: int, seed: int) -> pd.DataFrame:
    """Closed and open leads with distinct close times (no ties to argue about)."""
    rng = np.random.default_rng(seed)
    created = START + pd.to_timedelta(np.sort(rng.choice(10**6, n, replace=False)), unit="s")
    closed = created + pd.to_timedelta(rng.choice(10**7, n, replace=False), unit="s")
    status = rng.choice(["converted", "lost", "open"], n, p=[0.3, 0.5, 0.2])
    return pd.DataFrame(
        {
            "lead_id": [f"L{i:05d}" for i in range(n)],
            "created_at": created,
            "status": status,
            "closed_at": pd.Series(closed).where(status != "open"),
        }
    )


def _brute_force(leads: pd.DataFrame, as_of: pd.Timestamp, config: MarketConfig) -> float:
    closed = leads[(leads["status"] != "open") & (leads["closed_at"] < as_of)]
    last = closed.sort_values("closed_at").tail(config.leads)
    if len(last) < config.min_leads:
        return np.nan
    return float((last["status"] == "converted").mean())


def test_the_rate_is_the_share_converted_among_the_last_n_closed_before_t() -> None:
    leads = _leads(600, 1)
    config = MarketConfig(leads=50, min_leads=10)
    times = START + pd.to_timedelta(np.linspace(0, 1.2e7, 40), unit="s")
    entities = pd.DataFrame({"lead_id": "L00000", AS_OF: times})
    got = OutcomeHistory.of(leads, config).rate(
        entities, entities[AS_OF].to_numpy(dtype="datetime64[ns]"), config
    )
    expected = [_brute_force(leads, t, config) for t in times]
    np.testing.assert_allclose(got, expected, equal_nan=True)
    assert np.isnan(got[0]) and not np.isnan(got[-1])  # too few known at first, then a rate
    assert 0.2 < np.nanmean(got) < 0.6


def test_outcomes_known_at_or_after_t_never_count() -> None:
    """Rewrite every outcome that became known at or after T: no rate at T moves. Rewrite
    one known before T: it does."""
    leads = _leads(600, 2)
    config = MarketConfig(leads=80, min_leads=10)
    t = leads["closed_at"].dropna().sort_values().iloc[300]
    entities = pd.DataFrame({"lead_id": leads["lead_id"].iloc[:5], AS_OF: t})
    as_of = entities[AS_OF].to_numpy(dtype="datetime64[ns]")

    def rate(table: pd.DataFrame) -> np.ndarray:
        return OutcomeHistory.of(table, config).rate(entities, as_of, config)

    base = rate(leads)
    future = leads["closed_at"] >= t  # including the lead closed exactly at T
    flipped = leads.copy()
    flipped.loc[future & (leads["status"] == "lost"), "status"] = "converted"
    flipped.loc[future & (leads["status"] == "converted"), "status"] = "lost"
    np.testing.assert_array_equal(rate(flipped), base)
    reopened = leads.copy()
    reopened.loc[future, ["status", "closed_at"]] = ["open", pd.NaT]
    np.testing.assert_array_equal(rate(reopened), base)

    just_before = leads.index[leads["closed_at"] < t][
        leads.loc[leads["closed_at"] < t, "closed_at"].argmax()
    ]
    changed = leads.copy()
    changed.loc[just_before, "status"] = (
        "lost" if leads.loc[just_before, "status"] == "converted" else "converted"
    )
    assert not np.array_equal(rate(changed), base)


def test_snapshot_rates_use_only_the_past() -> None:
    """On a synthetic CRM's training snapshots: the rate of every snapshot at or before T
    is unchanged when every outcome known from T on is rewritten."""
    crm = generate_crm(1500, seed=8)
    config = FeatureConfig(market=MarketConfig(leads=200, min_leads=20))
    end = crm.leads["created_at"].max().floor("D") + pd.Timedelta(days=1)
    settings = load_settings(ROOT / "leadscore.yaml")
    rows = make_snapshots(crm.leads, end, settings.snapshots).rows
    t = rows[AS_OF].quantile(0.5)
    past = rows[rows[AS_OF] <= t].reset_index(drop=True)

    def rates(leads: pd.DataFrame) -> np.ndarray:
        return build_features(leads, None, past, config)[RECENT_CONVERSION_RATE].to_numpy()

    base = rates(crm.leads)
    later = crm.leads["closed_at"] >= t
    rewritten = crm.leads.copy()
    rewritten.loc[later, "status"] = "converted"
    np.testing.assert_array_equal(rates(rewritten), base)
    assert np.isfinite(base).mean() > 0.9 and np.nanstd(base) > 0


def test_periods_follow_runs_of_equal_values() -> None:
    frame = pd.DataFrame(
        {"month": ["may", "may", "may", "jun", "jun", "may"], "day": [1, 1, 2, 2, 2, 2]}
    )
    assert periods(frame, ["month", "day"]).tolist() == [0, 0, 1, 2, 2, 3]
    assert periods(frame, ["month"]).tolist() == [0, 0, 0, 1, 1, 2]
    with pytest.raises(KeyError, match="period_columns not in the leads table: \\['week'\\]"):
        periods(frame, ["week"])


def test_period_mode_sees_earlier_periods_only() -> None:
    """A row's own period (its contact day) is not over when it is asked: none of that
    day's outcomes count, all of the previous day's do."""
    day = np.repeat(np.arange(6), 5)  # 6 days of 5 contacts, in file order
    leads = pd.DataFrame(
        {
            "lead_id": [f"row-{i + 1}" for i in range(len(day))],
            "status": np.where(day % 2 == 0, "converted", "lost"),
            "closed_at": pd.NaT,
            "day": day,
        }
    )
    config = MarketConfig(leads=5, min_leads=5, period_columns=["day"])
    history = OutcomeHistory.of(leads, config)
    no_time = np.full(len(leads), np.datetime64("NaT"), dtype="datetime64[ns]")
    rate = history.rate(leads, no_time, config)
    # day 0 knows nothing; day d knows day d-1 (5 outcomes): converted on even days
    expected = [np.nan] + [1.0 if (d - 1) % 2 == 0 else 0.0 for d in range(1, 6)]
    np.testing.assert_array_equal(rate, np.repeat(expected, 5))


def test_the_feature_is_declared_in_its_own_family() -> None:
    config = FeatureConfig(market=MarketConfig(leads=300))
    registry = build_registry(config, behaviour=False)
    assert registry.names == [RECENT_CONVERSION_RATE]
    spec = registry[RECENT_CONVERSION_RATE]
    assert spec.family == MARKET and spec.kind == "numeric"
    assert (
        spec.render({RECENT_CONVERSION_RATE: 0.314}) == "31% of the last 300 closed leads converted"
    )
    assert RECENT_CONVERSION_RATE not in build_registry(FeatureConfig()).names


def test_scoring_partitions_read_the_whole_tables_history(tmp_path: Path) -> None:
    """Partitions hold open leads only: they score with the table's outcomes, and refuse
    to score without them rather than read a rate off no closed lead at all."""
    crm = generate_crm(800, seed=9)
    config = FeatureConfig(market=MarketConfig(leads=100, min_leads=20))
    end = crm.leads["created_at"].max().floor("D") + pd.Timedelta(days=1)
    open_leads = crm.leads[crm.leads["status"] == "open"]
    whole = build_features(crm.leads, None, entities_at(open_leads, end), config)
    history = OutcomeHistory.of(crm.leads, config.market)
    parts = partition_leads(open_leads, None, rows=37)
    got = pd.concat([partition_features(p, end, config, history) for p in parts])
    expected = whole.set_index("lead_id").loc[got["lead_id"], RECENT_CONVERSION_RATE]
    np.testing.assert_array_equal(got[RECENT_CONVERSION_RATE].to_numpy(), expected.to_numpy())
    assert np.isfinite(expected).all()
    with pytest.raises(ValueError, match="needs the leads table's outcome history"):
        partition_features(parts[0], end, config)


@pytest.mark.slow
@pytest.mark.parametrize("chunk_rows", [97, 10**7])
def test_the_streamed_history_equals_the_whole_tables(tmp_path: Path, chunk_rows: int) -> None:
    """The score flow reads the leads in chunks; the history it keeps is the whole load's."""
    from leadscore.pipelines.partitioned import stream_crm

    crm = generate_crm(500, seed=10)
    paths = {n: tmp_path / f"{n}.parquet" for n in ("leads", "activities")}
    crm.leads.to_parquet(paths["leads"])
    crm.activities.head(150).to_parquet(paths["activities"])  # the history is the leads'
    base = two_file_settings(paths, chunk_rows=chunk_rows)
    market = MarketConfig(leads=60, min_leads=10)
    settings = base.model_copy(
        update={"features": base.features.model_copy(update={"market": market})}
    )
    streamed = stream_crm(settings, tmp_path)
    whole = OutcomeHistory.of(load_crm(settings).leads, settings.features.market)
    assert streamed.history is not None
    np.testing.assert_array_equal(streamed.history.known_at, whole.known_at)
    np.testing.assert_array_equal(streamed.history.converted, whole.converted)
    assert whole.converted[-1] == (crm.leads["status"] == "converted").sum()
