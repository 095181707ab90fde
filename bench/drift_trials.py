"""Does the monitor see the injected drift, and only it? Weekly batches of a drifting world.

A champion is trained with the project's recipe (``models.recipe.train``) on the synthetic
CRM as its export read before the change, with its reference profile (``models.monitor``:
``reference_from_examples`` over its training examples, as the train flow attaches it).
Then, night after night, the open leads of the export as it read that night are scored
and counted against the reference (``batch_counts``) and their drift computed
(``drift_table``); a night alarms when a feature's PSI or the prediction's PSI is above
the configured threshold (``monitor.thresholds``), exactly the monitor's drift rule.

Reported (``python -m bench.drift_trials``, the figures of docs/drift-simulation.md):
the delay, in weekly batches after the change, of the first alarm of each change; the
false-alarm rate of a stable world (alarms / nights, several seeds); and the live ROC-AUC
on matured post-change leads of the champion trained before a new lead source and of one
retrained after it. Pure functions over frames: no flow, no MLflow, no store.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.features.builder import build_features, entities_at
from leadscore.models import recipe
from leadscore.models.monitor.drift import drift_table, max_feature_psi, prediction_psi
from leadscore.models.monitor.profile import (
    ReferenceProfile,
    batch_counts,
    reference_from_examples,
)
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.synthetic import DEFAULT_END, SyntheticCRM, generate_crm
from leadscore.synthetic.drift import Change, parse_change
from leadscore.synthetic.export import export_as_of

ROOT = Path(__file__).resolve().parents[1]
WEEK = pd.Timedelta(days=7)


def settings() -> Settings:
    """The shipped configuration (the synthetic CRM's)."""
    return load_settings(ROOT / "leadscore.yaml")


@dataclass(frozen=True)
class Champion:
    """A model trained on the export as it read at ``trained_at``, with its reference."""

    model: Any
    reference: ReferenceProfile
    trained_at: pd.Timestamp


def train_champion(crm: SyntheticCRM, at: pd.Timestamp, config: Settings) -> Champion:
    """The recipe on the export as of ``at``; the reference profile from its examples."""
    seen = export_as_of(crm, at)
    trained = recipe.train(seen.leads, seen.activities, at, config)
    model, data = trained.model, trained.data
    examples = np.concatenate([data.split.train, data.split.valid])
    X = data.X.iloc[examples][model.input_columns_]
    reference = reference_from_examples(
        X,
        model.predict_proba(X)[:, 1],
        as_of=data.snapshots.rows["as_of"].iloc[examples],
        days=config.monitor.reference_days,
        bins=config.monitor.bins,
    )
    return Champion(model, reference, at)


@dataclass(frozen=True)
class Batch:
    """The open leads of one night: features, probabilities, labels once matured."""

    night: pd.Timestamp
    lead_id: np.ndarray
    X: pd.DataFrame
    proba: np.ndarray


def night_batch(crm: SyntheticCRM, night: pd.Timestamp, model: Any, config: Settings) -> Batch:
    """The open leads of the export as of ``night``, scored by ``model``."""
    seen = export_as_of(crm, night)
    open_leads = seen.leads[seen.leads["status"] == "open"]
    X = build_features(seen.leads, seen.activities, entities_at(open_leads, night), config.features)
    X = X[model.input_columns_]
    return Batch(night, open_leads["lead_id"].to_numpy(), X, model.predict_proba(X)[:, 1])


def alarm(batch: Batch, champion: Champion, config: Settings) -> list[str]:
    """The monitor's drift reasons for the batch: features, then the prediction, whose PSI
    is above the configured thresholds."""
    counts = batch_counts(batch.X, batch.proba, champion.reference)
    table = drift_table(counts, batch_id=f"{batch.night:%Y%m%d}", as_of=batch.night)
    limits = config.monitor.thresholds
    reasons = []
    if limits.max_feature_psi is not None:
        over = table[(table["feature"] != "prediction") & (table["psi"] > limits.max_feature_psi)]
        reasons += [f"PSI of {r.feature} {r.psi:.2f}" for r in over.itertuples()]
    predicted = prediction_psi(table)
    limit = limits.max_prediction_psi
    if limit is not None and predicted is not None and predicted > limit:
        reasons.append(f"PSI of the prediction {predicted:.2f}")
    return reasons


def max_psi(batch: Batch, champion: Champion) -> tuple[str, float] | None:
    """The feature of highest PSI in the batch (for the record)."""
    counts = batch_counts(batch.X, batch.proba, champion.reference)
    return max_feature_psi(drift_table(counts, batch_id="-", as_of=batch.night))


def nights_after(start: pd.Timestamp, count: int) -> list[pd.Timestamp]:
    """``count`` weekly nights, the first one at ``start``."""
    return [start + WEEK * k for k in range(count)]


def detection_delay(
    crm: SyntheticCRM, champion: Champion, change_at: pd.Timestamp, weeks: int, config: Settings
) -> tuple[int | None, list[str]]:
    """Weekly batches after the change until the first alarm (1: the first night after it),
    and that night's reasons; None if no alarm within ``weeks``."""
    first = change_at.ceil("D") + WEEK
    for k, night in enumerate(nights_after(first, weeks), start=1):
        reasons = alarm(night_batch(crm, night, champion.model, config), champion, config)
        if reasons:
            return k, reasons
    return None, []


def false_alarms(
    crm: SyntheticCRM, champion: Champion, nights: Sequence[pd.Timestamp], config: Settings
) -> list[list[str]]:
    """The alarms of each night (an empty list: quiet)."""
    return [alarm(night_batch(crm, n, champion.model, config), champion, config) for n in nights]


def live_roc_auc(
    crm: SyntheticCRM, model: Any, nights: Sequence[pd.Timestamp], config: Settings
) -> tuple[float, int, int]:
    """ROC-AUC of ``model`` on the open leads of ``nights`` pooled, each judged on whether
    it converted within the horizon after its night (matured: the world must reach that
    far); with the conversions and rows it rests on."""
    horizon = pd.Timedelta(days=config.snapshots.horizon_days)
    closed = crm.leads.set_index("lead_id")
    ys, ps = [], []
    for night in nights:
        batch = night_batch(crm, night, model, config)
        lead = closed.loc[batch.lead_id]
        converted = (lead["status"] == "converted") & (lead["closed_at"] <= night + horizon)
        ys.append(converted.to_numpy())
        ps.append(batch.proba)
    y, p = np.concatenate(ys), np.concatenate(ps)
    return float(roc_auc_score(y, p)), int(y.sum()), len(y)


def world(leads: int, seed: int, changes: Sequence[Change] = ()) -> SyntheticCRM:
    """The synthetic CRM to the default end, two years of leads."""
    return generate_crm(leads, seed, end=DEFAULT_END, changes=changes)


CHANGES = ("new_source", "campaign", "mix_shift", "broken_pixel")
RETRAIN_CHANGE = "new_source:share=0.5,hazard_factor=5"
"""The shift the retrain must answer: half the new leads from a source converting ~4x."""


def retrain_trial(
    leads: int, seed: int, config: Settings, change: str | None = RETRAIN_CHANGE
) -> dict[str, Any]:
    """Live ROC-AUC of a champion trained 35 days before the change, on 5 weekly batches
    before it (pre) and on 5 weekly batches 210 days after it (post), beside a champion
    retrained at the first post batch (its training sees 120 days of matured post-change
    outcomes). Every batch is judged on its leads' conversions within the horizon."""
    change_at = DEFAULT_END - pd.Timedelta(days=330)
    crm = world(leads, seed, [parse_change(change, change_at)] if change else [])
    before_at, retrain_at = change_at - 5 * WEEK, DEFAULT_END - pd.Timedelta(days=120)
    before = train_champion(crm, before_at, config).model
    after = train_champion(crm, retrain_at, config).model
    pre, post = nights_after(before_at, 5), nights_after(retrain_at, 5)
    figures = {
        "before_on_pre": live_roc_auc(crm, before, pre, config),
        "before_on_post": live_roc_auc(crm, before, post, config),
        "retrained_on_post": live_roc_auc(crm, after, post, config),
    }
    return {
        name: {"roc_auc": round(a, 4), "conversions": c, "rows": n}
        for name, (a, c, n) in figures.items()
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure delays per change, the false-alarm rate and the retrain's ROC-AUC."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=12_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--weeks", type=int, default=12, help="nights watched after a change")
    parser.add_argument("--stable-nights", type=int, default=20)
    parser.add_argument("--retrain", action="store_true", help="also the retrain trial")
    args = parser.parse_args(argv)
    config = settings()
    change_at = DEFAULT_END - pd.Timedelta(days=300)
    trained_at = change_at - WEEK
    out: dict[str, Any] = {"leads": args.leads, "change_at": f"{change_at:%Y-%m-%d}"}
    delays: dict[str, list[int | None]] = {kind: [] for kind in CHANGES}
    quiet: list[int] = []
    checked = 0
    for seed in args.seeds:
        base = world(args.leads, seed)
        champion = train_champion(base, trained_at, config)
        # stable world: the champion's own world after training, and nothing injected
        nights = nights_after(trained_at + WEEK, args.stable_nights)
        alarms = false_alarms(base, champion, nights, config)
        quiet.append(sum(bool(a) for a in alarms))
        checked += len(alarms)
        for kind in CHANGES:
            drifted = world(args.leads, seed, [parse_change(kind, change_at)])
            delay, _ = detection_delay(drifted, champion, change_at, args.weeks, config)
            delays[kind].append(delay)
        print(
            json.dumps(
                {"seed": seed, "alarms": quiet[-1], "delays": {k: v[-1] for k, v in delays.items()}}
            )
        )
    out["delays"] = delays
    out["false_alarms"] = {"alarms": sum(quiet), "nights": checked, "rate": sum(quiet) / checked}
    if args.retrain:
        out["retrain"] = {
            "shift": retrain_trial(args.leads, args.seeds[0], config),
            "stable": retrain_trial(args.leads, args.seeds[0], config, None),
        }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
