"""Flat exports (no activity log): exclusions, splits, minimum data, and the bank proof."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from leadscore.features.builder import build_features
from leadscore.features.registry import build_registry
from leadscore.features.snapshots import (
    LABEL,
    Snapshots,
    ordered_split,
    random_split,
    training_examples,
)
from leadscore.models import training
from leadscore.models.segments import SegmentedModel
from leadscore.pipelines.settings import Settings, SettingsError, load_settings
from leadscore.pipelines.sources import load_crm
from tests.conftest import ROOT


def _flat_csv(path: Path, n: int = 1500) -> Path:
    rng = np.random.default_rng(4)
    converted = rng.random(n) < 0.15
    pd.DataFrame(
        {
            "lead_id": [f"F{i}" for i in range(n)],
            "status": np.where(converted, "converted", "lost"),
            "industry": rng.choice(["software", "retail", "fintech"], n),
            "employees": rng.integers(1, 5000, n),
            "leak": converted.astype(int),  # known only after the outcome: a perfect leak
        }
    ).to_csv(path, index=False)
    return path


def _settings(csv: Path, **data: object) -> Settings:
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"] = {"leads": {"path": str(csv)}, "activities": None, "order": "none", **data}
    raw["features"]["attributes"] = {"categorical": ["industry"], "numeric": ["employees"]}
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
    raw["rules"]["penalties"] = []
    return Settings.model_validate(raw)


def _fit_flat(settings: Settings) -> tuple[training.FittedModel, pd.DataFrame, np.ndarray]:
    """The model fitted on a flat export's training rows; its validation features, labels."""
    crm = load_crm(settings)
    snaps, split = training_examples(
        crm.leads, crm.end, settings.snapshots, has_activity_log=False, order="none"
    )
    X = build_features(crm.leads, None, snaps.rows, settings.features)
    y = snaps.rows[LABEL].to_numpy()
    registry = build_registry(settings.features, behaviour=False)
    model = training.fit_model(X.iloc[split.train], y[split.train], registry, settings.model)
    return model, X.iloc[split.valid], y[split.valid]


def _valid_auc(settings: Settings) -> tuple[float, list[str]]:
    model, X_valid, y_valid = _fit_flat(settings)
    return roc_auc_score(y_valid, model.raw_score(X_valid)), model.features


def test_excluded_columns_never_reach_the_model(tmp_path: Path):
    csv = _flat_csv(tmp_path / "leads.csv")
    excluded = _settings(csv, exclude=["leak"])
    assert "leak" not in load_crm(excluded).leads.columns
    auc, features = _valid_auc(excluded)
    assert "leak" not in features
    assert auc < 0.7  # the attributes here are noise
    # the same leak declared as an attribute would be found at once: the test can fail
    raw = excluded.model_dump(mode="json")
    raw["data"]["exclude"] = []
    raw["features"]["attributes"]["categorical"].append("leak")
    leaky_auc, leaky_features = _valid_auc(Settings.model_validate(raw))
    assert "leak" in leaky_features and leaky_auc > 0.99


def test_an_excluded_column_declared_as_an_attribute_is_a_settings_error(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"]["exclude"] = ["industry"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match="excluded columns are declared as model attributes"):
        load_settings(tmp_path / "c.yaml")


def _sensitive_csv(path: Path, n: int = 3000, shuffled: bool = False) -> Path:
    """A flat export whose protected columns predict conversion (as a biased history would).

    ``shuffled`` permutes them across leads: a model that never sees them cannot notice.
    """
    rng = np.random.default_rng(8)
    gender = rng.choice(["f", "m"], n)
    age = rng.integers(18, 80, n)
    segment = rng.choice(["budget", "luxury"], n)
    logit = -2.5 + 2.0 * (gender == "m") + 0.06 * (age - 45) + 0.4 * (segment == "luxury")
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "lead_id": [f"S{i}" for i in range(n)],
            "status": np.where(converted, "converted", "lost"),
            "industry": rng.choice(["software", "retail", "fintech"], n),
            "employees": rng.integers(1, 5000, n),
            "segment": segment,
            "Gender": gender,  # the export's own spelling: matched whatever its case
            "age": age,
        }
    )
    if shuffled:
        shuffle = np.random.default_rng(9)
        frame["Gender"], frame["age"] = shuffle.permutation(gender), shuffle.permutation(age)
        assert (frame["Gender"] != gender).any()
    frame.to_csv(path, index=False)
    return path


def _sensitive_settings(csv: Path, sensitive: list[str], extra: dict | None = None) -> Settings:
    """Flat export, one model per segment (small floors, no held-out check, so every
    segment has a booster of its own to inspect), the given sensitive columns."""
    raw = _settings(csv, sensitive=sensitive).model_dump(mode="json")
    raw["features"]["attributes"]["categorical"] += ["segment", *(extra or {}).get("cat", [])]
    raw["features"]["attributes"]["numeric"] += (extra or {}).get("num", [])
    raw["model"]["segments"] = {
        "column": "segment",
        "min_examples": 300,
        "min_positives": 30,
        "min_auc_gain": None,
    }
    return Settings.model_validate(raw)


@pytest.mark.slow
def test_sensitive_columns_never_reach_any_model(tmp_path: Path):
    protected = ["GENDER", "age"]
    settings = _sensitive_settings(_sensitive_csv(tmp_path / "a.csv"), protected)
    leads = load_crm(settings).leads
    assert not {"Gender", "age"} & set(leads.columns)
    model, X_valid, y_valid = _fit_flat(settings)
    assert isinstance(model, SegmentedModel)
    assert set(model.segments_) == {"budget", "luxury"}  # three boosters: both and the shared
    assert model.features == ["industry", "segment", "employees"]
    for fitted in model.models().values():
        assert fitted.booster_.feature_name_ == model.features
    auc = roc_auc_score(y_valid, model.raw_score(X_valid))
    # shuffling the protected columns across leads changes no score, to the last bit
    shuffled = _sensitive_settings(_sensitive_csv(tmp_path / "b.csv", shuffled=True), protected)
    model_b, X_valid_b, _ = _fit_flat(shuffled)
    assert X_valid_b["lead_id"].tolist() == X_valid["lead_id"].tolist()
    np.testing.assert_array_equal(model_b.predict_proba(X_valid_b), model.predict_proba(X_valid))
    # the control: declared as attributes, the same columns are found at once (this test
    # would fail if they leaked)
    leaky = _sensitive_settings(tmp_path / "a.csv", [], extra={"cat": ["Gender"], "num": ["age"]})
    leaky_auc, leaky_features = _valid_auc(leaky)
    assert {"Gender", "age"} <= set(leaky_features)
    assert auc < 0.6 and leaky_auc > 0.7  # measured: 0.506 and 0.774


def _examples(labels: list[int]) -> Snapshots:
    rows = pd.DataFrame(
        {"lead_id": [f"L{i}" for i in range(len(labels))], "as_of": pd.NaT, LABEL: labels}
    )
    return Snapshots(rows=rows, n_censored=0, data_end=pd.NaT)


def test_row_order_split_validates_on_the_last_rows():
    split = ordered_split(_examples([0, 1] * 10), valid_fraction=0.2, by_time=False)
    assert split.kind == "out_of_time"
    assert split.words == (
        "the last 20% of rows in file order (the file has no dates; out of time as far as "
        "the file lists leads in time order)"
    )
    assert split.valid.tolist() == [16, 17, 18, 19]
    assert split.train.tolist() == list(range(16))


def test_random_split_is_seeded_and_stratified():
    labels = [1] * 20 + [0] * 80
    a = random_split(_examples(labels), valid_fraction=0.25, seed=3)
    b = random_split(_examples(labels), valid_fraction=0.25, seed=3)
    assert a.kind == "random" and a.valid.tolist() == b.valid.tolist()
    assert a.words == (
        "a random 25% of leads with a known outcome, stratified by outcome (not out of time: "
        "an optimistic estimate)"
    )
    assert np.asarray(labels)[a.valid].sum() == 5 and len(a.valid) == 25
    assert set(a.train).isdisjoint(a.valid) and len(a.train) + len(a.valid) == 100
    # training rows in a seeded random order: the calibration slice (the last training
    # rows) is a random share, not the file's tail
    assert a.train.tolist() == b.train.tolist() and a.train.tolist() != sorted(a.train)
    assert a.train[-15:].min() < 75  # sorted, they would be the file's last 15 rows


def test_minimum_data_refusal_says_what_is_missing():
    ids = pd.Series([f"L{i}" for i in range(500)])
    y = np.r_[np.ones(50), np.zeros(450)]
    with pytest.raises(training.InsufficientDataError) as error:
        training.check_minimum(ids, y, min_leads=1000, min_conversions=120)
    assert "500 leads (need 1000)" in str(error.value)
    assert "50 converted leads (need 120)" in str(error.value)
    assert training.check_minimum(ids, y, 0, 0) == {"train_leads": 500, "train_converted_leads": 50}


@pytest.mark.slow
def test_a_flat_export_is_trained_scored_and_explained_by_the_flows(
    tmp_path: Path, prefect_harness
):
    from leadscore.pipelines.score_flow import score_flow
    from leadscore.pipelines.train_flow import train_flow
    from leadscore.serving.store import ScoreStore, StoreConfig

    rng = np.random.default_rng(9)
    n = 2400
    tier = rng.choice(["gold", "silver", "bronze"], n)
    visits = rng.poisson(3, n).astype(float)
    logit = -2.6 + 1.5 * (tier == "gold") + 0.35 * visits
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    status = np.where(converted, "Won", "Lost").astype(object)
    status[-150:] = "Open"  # the newest rows are still open
    pd.DataFrame(
        {
            "Account": [f"A{i:05d}" for i in range(n)],
            "Stage": status,
            "tier": tier,
            "web_visits": visits,
        }
    ).to_csv(tmp_path / "export.csv", index=False)
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"] = {
        "leads": {"path": "export.csv"},
        "activities": None,
        "column_mapping": {"Account": "lead_id"},
        "outcome": {"column": "Stage", "converted": ["Won"], "lost": ["Lost"], "open": ["Open"]},
        "order": "rows",
    }
    raw["features"]["attributes"] = {
        "categorical": ["tier"],
        "numeric": ["web_visits"],
        "engagement": ["web_visits"],
        "labels": {"web_visits": "web visits"},
    }
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"].update(
        icp={"tier": {"weight": 1, "values": {"gold": 10, "silver": 5}}}, penalties=[]
    )
    config = tmp_path / "flat.yaml"
    config.write_text(yaml.safe_dump(raw))
    trained = train_flow(str(config))
    assert trained["split"] == "out_of_time"
    assert trained["model"]["roc_auc"] > trained["rules"]["roc_auc"]
    scored = score_flow(str(config))
    assert scored["scored"] == 150 and scored["closed"] == n - 150
    batch = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path / 'data' / 'scores.db'}")).read_batch()
    assert set(batch["lead_id"]) == {f"A{i:05d}" for i in range(n - 150, n)}
    texts = " ".join(batch["reasons"])
    assert "web visits: " in texts and "tier: " in texts  # the lead's own facts
    assert (batch["fit"] != 0).any() and (batch["engagement"] != 0).any()

    # the next export has every lead closed: a clear error, and the last batch stays
    from leadscore.pipelines.score_flow import NothingToScoreError

    export = pd.read_csv(tmp_path / "export.csv")
    export.assign(Stage=export["Stage"].replace("Open", "Lost")).to_csv(
        tmp_path / "export.csv", index=False
    )
    refused = rf"no open lead to score \({n} leads in: {n} closed"
    with pytest.raises(NothingToScoreError, match=refused):
        score_flow(str(config))
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path / 'data' / 'scores.db'}"))
    assert store.current_batch().batch_id == scored["batch_id"]


def test_a_flat_export_in_row_order_is_backtested_by_position(tmp_path: Path):
    """Rolling origin by row: origin 0 is the training run's own split; origin k holds
    back the newest k slices. Every window's metrics are the ones its rows give."""
    from leadscore.models.backtest import backtest_ordered
    from leadscore.models.evaluate import full_metrics
    from leadscore.pipelines.cli import run_backtest

    settings = _settings(_flat_csv(tmp_path / "flat.csv", n=2000), order="rows")
    table, summary = run_backtest(settings, windows=3)
    assert table["origin"].tolist() == [0, 1, 2]
    assert table["n_valid"].tolist() == [400, 400, 400]
    assert table["n_train"].tolist() == [1600, 1200, 800]
    assert table["valid_start"].tolist() == ["row 1601", "row 1201", "row 801"]
    assert table["data_end"].tolist() == ["row 2000", "row 1600", "row 1200"]
    assert table["valid_end"].tolist() == table["data_end"].tolist()

    crm = load_crm(settings)
    snaps, split = training_examples(
        crm.leads, crm.end, settings.snapshots, has_activity_log=False, order="rows"
    )
    X = build_features(crm.leads, None, snaps.rows, settings.features)
    y = snaps.rows[LABEL].to_numpy()
    np.testing.assert_array_equal(split.valid, np.arange(1600, 2000))  # = origin 0
    registry = build_registry(settings.features, behaviour=False)
    train, valid = np.arange(1200), np.arange(1200, 1600)  # origin 1
    model = training.fit_model(X.iloc[train], y[train], registry, settings.model)
    expected = full_metrics(
        y[valid], model.raw_score(X.iloc[valid]), model.predict_proba(X.iloc[valid])[:, 1]
    )
    assert table.loc[1, "model_roc_auc"] == pytest.approx(expected["roc_auc"])
    assert table.loc[1, "model_brier"] == pytest.approx(expected["brier"])
    assert summary["model_roc_auc_worst"] == pytest.approx(table["model_roc_auc"].min())

    def not_here(*_: object) -> None:
        raise ValueError("not fitted here")

    too_many = backtest_ordered(snaps, X, 0.2, not_here, not_here, windows=6, by_time=False)
    assert too_many["error"].tolist() == [
        *["not fitted here"] * 4,
        "the training rows hold one class only (or none)",  # origin 4: nothing older
        "no rows left",
    ]


def test_a_randomly_split_flat_export_is_not_backtested(tmp_path: Path):
    from leadscore.pipelines.cli import run_backtest

    settings = _settings(_flat_csv(tmp_path / "flat.csv"), order="none")
    with pytest.raises(ValueError, match="backtest needs an order"):
        run_backtest(settings, windows=2)


@pytest.mark.parametrize(
    ("written", "outcome"),
    [
        ("1,0,,1,0", "{column: Converted, converted: [1], lost: [0]}"),  # floats: a blank
        ("1,0,0,1,0", "{column: Converted, converted: [1.0], lost: ['0']}"),  # integers
        ("True,False,False,TRUE,false", "{column: Converted, converted: [1], lost: [no]}"),
        ("Yes,no,NO,yes ,No", "{column: Converted, converted: [yes], lost: [false]}"),
    ],
)
def test_an_outcome_column_of_any_type_loads_through_the_settings(
    tmp_path: Path, written: str, outcome: str
):
    values = written.split(",")
    industries = ["software", "retail", "fintech", "retail", "software"]
    lines = [
        f"L{i},{v},{industry},{10 * (i + 1)}"
        for i, (v, industry) in enumerate(zip(values, industries, strict=True))
    ]
    csv = tmp_path / "leads.csv"
    csv.write_text("lead_id,Converted,industry,employees\n" + "\n".join(lines) + "\n")
    settings = _settings(csv, outcome=yaml.safe_load(outcome), validation={"max_bad_row_share": 1})
    crm = load_crm(settings)
    statuses = dict(zip(crm.leads["lead_id"], crm.leads["status"], strict=True))
    blank = values.index("") if "" in values else None
    expected = {f"L{i}": "converted" if i in (0, 3) else "lost" for i in range(5) if i != blank}
    assert statuses == expected
    assert crm.quarantine["reason"].tolist() == (["status is empty"] if blank else [])


def test_a_dated_flat_export_is_labelled_by_the_horizon_and_censored(tmp_path: Path):
    """Leads created one a day over 120 days; H = 30: the last 30 days' leads are censored,
    a conversion 40 days after creation is a negative, an old open lead too."""
    n = 120
    created = pd.date_range("2026-01-01", periods=n, freq="D")
    lag = np.where(np.arange(n) % 3 == 0, 10, 40)  # every third converts in 10 days, else 40
    status = np.where(np.arange(n) % 2 == 0, "converted", "open").astype(object)
    closed = pd.Series(created + pd.to_timedelta(lag, unit="D")).where(status == "converted")
    pd.DataFrame(
        {
            "lead_id": [f"D{i:03d}" for i in range(n)],
            "created_at": created.strftime("%Y-%m-%d"),
            "closed_at": closed.dt.strftime("%Y-%m-%d"),
            "status": status,
            "industry": "software",
            "employees": 10,
        }
    ).to_csv(tmp_path / "dated.csv", index=False)
    raw = _settings(tmp_path / "dated.csv", order="time").model_dump(mode="json")
    raw["snapshots"]["horizon_days"] = 30
    settings = Settings.model_validate(raw)
    crm = load_crm(settings, now=pd.Timestamp("2026-12-01", tz="UTC"))
    assert crm.end == pd.Timestamp("2026-06-09", tz="UTC")  # the day after the last closed_at
    snaps, split = training_examples(
        crm.leads, crm.end, settings.snapshots, has_activity_log=False, order="time"
    )
    assert snaps.n_censored == 0  # the newest lead, Apr 30, is 40 days before the end
    # converted within 30 days: even ids that are multiples of 3, i.e. multiples of 6
    expected = [int(i % 6 == 0) for i in range(n)]
    assert snaps.rows["label"].tolist() == expected
    assert split.kind == "out_of_time" and len(split.valid) == 24
    # validation from Apr 7 (the 97th day); training ends 30 days before: Mar 8 (day 67)
    assert len(split.train) == 67 and split.embargoed == 29
    assert split.words == (
        "the newest 20% of leads by created date (out of time; training ends 30 days before "
        "the first of them, so the 29 leads created in between are in neither side)"
    )
    dated_rows = ordered_split(snaps, 0.2, by_time=False)
    assert dated_rows.words.startswith("the last 20% of rows in file order (out of time as")
    # the same export cut on its last creation day (Apr 30): leads created after Apr 1
    # (29) are censored, open or not
    cut = tmp_path / "cut.csv"
    frame = pd.read_csv(tmp_path / "dated.csv")
    frame.loc[pd.to_datetime(frame["closed_at"]) > created[-1], ["status", "closed_at"]] = [
        "open",
        None,
    ]
    frame.to_csv(cut, index=False)
    settings = Settings.model_validate(
        {**raw, "data": {**raw["data"], "leads": {"path": str(cut)}}}
    )
    crm = load_crm(settings, now=pd.Timestamp("2026-12-01", tz="UTC"))
    snaps, _ = training_examples(
        crm.leads, crm.end, settings.snapshots, has_activity_log=False, order="time"
    )
    assert crm.end == pd.Timestamp("2026-05-01", tz="UTC")
    assert snaps.n_censored == 29 and len(snaps.rows) == n - 29
    assert snaps.rows["label"].tolist() == expected[: n - 29]


def test_a_dated_flat_export_is_backtested_with_the_training_runs_embargo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`leadscore backtest` on a flat export by created date: each origin's training ends
    one horizon before its validation slice, and model.kind auto's inner slice gets the
    same gap (the model fit is spied on, not run)."""
    from leadscore.models import backtest, recipe
    from leadscore.models.selection import SliceSpec
    from leadscore.pipelines.cli import run_backtest

    n = 400
    created = pd.date_range("2025-01-01", periods=n, freq="D")
    converted = np.arange(n) % 5 == 0
    closed = created + pd.to_timedelta(np.where(converted, 10, 5), unit="D")
    pd.DataFrame(
        {
            "lead_id": [f"T{i:03d}" for i in range(n)],
            "created_at": created.strftime("%Y-%m-%d"),
            "closed_at": closed.strftime("%Y-%m-%d"),
            "status": np.where(converted, "converted", "lost"),
            "industry": "software",
            "employees": 10,
        }
    ).to_csv(tmp_path / "dated.csv", index=False)
    raw = _settings(tmp_path / "dated.csv", order="time").model_dump(mode="json")
    raw["snapshots"]["horizon_days"] = 30
    raw["model"]["kind"] = "auto"
    settings = Settings.model_validate(raw)
    fits: list[tuple[SliceSpec, pd.Timestamp, int]] = []

    def spy(X: pd.DataFrame, y: np.ndarray, *_: object, order: SliceSpec, **__: object):
        fits.append((order, X["as_of"].max(), len(X)))
        raise ValueError("spied")

    monkeypatch.setattr(backtest.training, "fit_model", spy)
    table, _ = run_backtest(settings, windows=2)
    assert table["error"].tolist() == ["spied", "spied"]
    horizon = pd.Timedelta(days=30)
    assert [order for order, _, _ in fits] == [SliceSpec("time", horizon)] * 2
    starts = pd.to_datetime(table["valid_start"])
    assert (pd.to_datetime(table["train_end"]) == starts - horizon).all()
    for (_, last_trained, rows), start, n_train in zip(fits, starts, table["n_train"], strict=True):
        assert last_trained == start - horizon and rows == n_train
    # origin 0 is the training run's own split, embargo included
    crm = load_crm(settings)
    data = recipe.examples(crm.leads, crm.activities, crm.end, settings)
    assert table["n_train"].iloc[0] == len(data.split.train) and data.split.embargoed == 29
    assert table["n_valid"].iloc[0] == len(data.split.valid)
