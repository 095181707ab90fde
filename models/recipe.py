"""The training recipe, written once: CRM frames + settings sections -> a fitted model.

The train flow (one function per task), the backtest, the bench and the tests all train
through these functions, so they cannot drift apart. Pure: no Prefect, no MLflow.

    data = examples(leads, activities, end, sections)   # examples, split, X, y, registry
    model = fit_model(data, sections.model)              # on the training rows
    rules = fit_rules(data, sections.rules, sections.features)
    window = validation_window(model, rules, data, grades)  # what the report and gate read

``sections`` is anything with the settings' ``snapshots``, ``features``, ``model``,
``rules`` and ``data.order`` (``pipelines.settings.Settings`` is one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from leadscore.features.accounts import AccountHistory
from leadscore.features.builder import AS_OF, build_features
from leadscore.features.config import FeatureConfig, SnapshotConfig
from leadscore.features.registry import FeatureRegistry, build_registry
from leadscore.features.snapshots import (
    LABEL,
    Snapshots,
    Split,
    recent_open,
    training_examples,
)
from leadscore.models import training
from leadscore.models.config import ModelConfig, RulesConfig
from leadscore.models.factory import CANDIDATE_LABELS
from leadscore.models.monitor.config import MonitorConfig
from leadscore.models.monitor.profile import REFERENCE_ATTRIBUTE, reference_from_examples
from leadscore.models.report import ReportInputs, window_inputs
from leadscore.models.rules import RuleScorer
from leadscore.models.selection import METRIC_NAMES, SliceSpec
from leadscore.models.training import FittedModel


class _DataSection(Protocol):
    @property
    def order(self) -> str: ...


class RecipeSettings(Protocol):
    """The settings sections the recipe reads (``pipelines.settings.Settings`` has them)."""

    @property
    def snapshots(self) -> SnapshotConfig: ...
    @property
    def features(self) -> FeatureConfig: ...
    @property
    def model(self) -> ModelConfig: ...
    @property
    def rules(self) -> RulesConfig: ...
    @property
    def data(self) -> _DataSection: ...


@dataclass(frozen=True)
class TrainingData:
    """Examples of closed history, their split, feature matrix, labels and feature set."""

    snapshots: Snapshots
    split: Split
    X: pd.DataFrame
    y: np.ndarray
    registry: FeatureRegistry

    @property
    def X_train(self) -> pd.DataFrame:  # noqa: N802 (the ML convention: X is a matrix)
        return self.X.iloc[self.split.train]

    @property
    def y_train(self) -> np.ndarray:
        return self.y[self.split.train]

    @property
    def X_valid(self) -> pd.DataFrame:  # noqa: N802
        return self.X.iloc[self.split.valid]

    @property
    def y_valid(self) -> np.ndarray:
        return self.y[self.split.valid]

    @property
    def valid_entities(self) -> pd.DataFrame:
        """The validation examples' entity rows (lead_id, as_of, label)."""
        return self.snapshots.rows.iloc[self.split.valid]


def examples(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    data_end: pd.Timestamp,
    settings: RecipeSettings,
    accounts: AccountHistory | None = None,
) -> TrainingData:
    """The examples a training run learns from, by the shape of the data.

    With an activity log: snapshots, their point-in-time features and the out-of-time
    split with embargo. A flat export (``activities`` None): one example per closed lead,
    its attributes, split as ``data.order`` says (``features.snapshots.training_examples``).
    ``accounts`` (``data.joins``) adds the account features (``features.accounts``).
    """
    behaviour = activities is not None
    snaps, split = training_examples(
        leads,
        data_end,
        settings.snapshots,
        has_activity_log=behaviour,
        order=settings.data.order,
    )
    X = build_features(leads, activities, snaps.rows, settings.features, accounts=accounts)
    groups = accounts.names if accounts is not None else ()
    registry = build_registry(settings.features, behaviour=behaviour, groups=groups)
    return TrainingData(snaps, split, X, snaps.rows[LABEL].to_numpy(), registry)


def inner_order(split: Split) -> SliceSpec:
    """How ``model.kind: auto`` cuts its inner slice, mirroring the outer split: by time
    with the split's embargo (the horizon, for snapshots and for flat exports split by
    created date), by row order, or at random."""
    if split.kind != "out_of_time":
        return SliceSpec("random")
    if pd.isna(split.valid_start) or pd.isna(split.train_end):
        return SliceSpec("rows")
    return SliceSpec("time", max(split.valid_start - split.train_end, pd.Timedelta(0)))


def fit_model(data: TrainingData, config: ModelConfig, metric: str = "roc_auc") -> FittedModel:
    """The configured model fitted on the training rows (carries ``data.registry``);
    ``model.kind: auto`` judges the families by ``metric`` (the promotion metric) on an
    inner slice of the training rows only (``inner_order``)."""
    return training.fit_model(
        data.X_train,
        data.y_train,
        data.registry,
        config,
        metric=metric,
        order=inner_order(data.split),
    )


def reference_rows(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    data_end: pd.Timestamp,
    settings: RecipeSettings,
    monitor: MonitorConfig,
    accounts: AccountHistory | None = None,
) -> pd.DataFrame | None:
    """The features of the leads open over the newest ``monitor.reference_days`` (at the
    data's end and every snapshot cadence back, ``features.snapshots.recent_open``), built
    as the examples are: what a nightly batch looked like when the model was trained. None
    for a flat export (no activity log, no grid): its reference is its examples."""
    if activities is None:
        return None
    rows = recent_open(
        leads,
        data_end,
        days=monitor.reference_days,
        cadence_days=settings.snapshots.cadence_days,
    )
    return build_features(leads, activities, rows, settings.features, accounts=accounts)


def attach_reference(
    model: FittedModel,
    data: TrainingData,
    monitor: MonitorConfig,
    recent: pd.DataFrame | None = None,
) -> FittedModel:
    """``model`` carrying the monitor's reference (``monitor_reference_``): the features'
    and the probability's distributions over ``recent`` (``reference_rows``: the open leads
    of the newest ``monitor.reference_days``), else over the newest days of the training
    and validation examples, against which each nightly batch's drift is counted
    (``models.monitor.profile``). Attached before the model is logged, so the champion
    carries it, as it carries ``subscore_quantiles_``; kept as its JSON-able ``to_dict()``,
    which the model's skops file stores without a type to trust, and which a later version
    of the profile still reads."""
    if recent is not None and len(recent):
        X = recent
    else:
        X = data.X.iloc[np.sort(np.concatenate([data.split.train, data.split.valid]))]
    as_of = X[AS_OF] if AS_OF in X.columns and bool(X[AS_OF].notna().all()) else None
    if as_of is not None and len(X):  # only the newest days are profiled: predict those
        newest = as_of >= as_of.max() - pd.Timedelta(days=monitor.reference_days)
        X, as_of = X[newest.to_numpy()], as_of[newest.to_numpy()]
    probability = model.calibrated(model.raw_score(X))
    columns = getattr(model, "input_columns_", None) or list(model.features)
    reference = reference_from_examples(
        X[columns], probability, as_of=as_of, days=monitor.reference_days, bins=monitor.bins
    )
    setattr(model, REFERENCE_ATTRIBUTE, reference.to_dict())
    return model


def fit_rules(data: TrainingData, rules: RulesConfig, features: FeatureConfig) -> RuleScorer:
    """The points baseline on the training rows, its points mapped to conversion rates."""
    return training.fit_rules(data.X_train, data.y_train, rules, features.activity_points())


def scoring_rules(rules: RulesConfig, features: FeatureConfig) -> RuleScorer:
    """The points baseline as scoring uses it: points and grades, no labels needed."""
    return training.fit_rules(pd.DataFrame(), None, rules, features.activity_points())


@dataclass(frozen=True)
class Trained:
    """What the recipe produced: the data, the fitted model and the fitted rules."""

    data: TrainingData
    model: FittedModel
    rules: RuleScorer


def train(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    data_end: pd.Timestamp,
    settings: RecipeSettings,
    accounts: AccountHistory | None = None,
) -> Trained:
    """The whole recipe at once: examples, then model and rules on the training rows."""
    data = examples(leads, activities, data_end, settings, accounts)
    promotion = getattr(settings, "promotion", None)  # the metric auto judges families by
    return Trained(
        data,
        fit_model(data, settings.model, getattr(promotion, "metric", "roc_auc")),
        fit_rules(data, settings.rules, settings.features),
    )


def validation_window(
    model: FittedModel,
    rules: RuleScorer,
    data: TrainingData,
    grades: Mapping[str, float],
    oracle: Mapping[str, float] | None = None,
    context: Mapping[str, object] | None = None,
) -> ReportInputs:
    """The model and the rules scored on the validation rows, as the report and gate read
    them; families come from the registry the model was trained with."""
    return window_inputs(
        model,
        rules,
        data.X_valid,
        data.y_valid,
        model.registry_,
        grades,
        oracle=oracle,
        context=context,
    )


def _calibration(model: FittedModel, config: ModelConfig) -> str:
    """The calibrator the model uses, and for ``auto`` the evidence it was chosen on."""
    chosen = getattr(model, "calibration_", None)
    if chosen is None:  # a model per segment: each chose its own
        return f"{config.calibration} (each segment's model its own)"
    evidence = getattr(model, "calibration_evidence_", {})
    if not evidence:
        return chosen
    briers = ", ".join(f"{kind} {brier:.5f}" for kind, brier in evidence.items())
    return f"{chosen} (auto; Brier on the newer half of the calibration slice: {briers})"


def _window_start(split: Split, n_examples: int) -> object:
    """When the validation window starts, for the report: a time, or a row of the file
    (flat exports split by file order have no dates), or that the rows are random."""
    if pd.notna(split.valid_start):
        return split.valid_start
    if split.kind == "out_of_time" and len(split.valid):
        return f"row {int(split.valid.min()) + 1} of {n_examples} (no dates: file order)"
    return "random rows (no order)"


def window_context(
    data: TrainingData, model: FittedModel, config: ModelConfig
) -> dict[str, object]:
    """How the validation window was cut and the model calibrated, as the report states it.

    ``split`` says in words which rows validate (``features.snapshots.Split.words``: the
    newest snapshots or the newest leads by created date, each with its embargo, the last
    rows of the file, or a random stratified share); the report's comparison sentence
    reads it.
    """
    return {
        "split": data.split.words or data.split.kind,
        "training examples": len(data.y_train),
        "validation examples": len(data.y_valid),
        "validation window starts": _window_start(data.split, len(data.snapshots.rows)),
        "validation conversion rate": f"{data.y_valid.mean():.2%}",
        "calibration": _calibration(model, config),
        "model family": model_family(model, config),
    }


def model_family(model: FittedModel, config: ModelConfig) -> str:
    """The family that scores, and for ``auto`` the evidence it was chosen on."""
    evidence = getattr(model, "selection_", None)
    if config.kind != "auto" or not evidence:
        return f"{CANDIDATE_LABELS.get(config.kind, config.kind)} (model.kind: {config.kind})"
    chosen = evidence["chosen"]
    label = CANDIDATE_LABELS[chosen or "lightgbm"]
    scores = {n: s for n, s in evidence["scores"].items() if s is not None}
    if chosen is None or not scores:
        return f"{label} (auto: {evidence['reason']})"
    metric = METRIC_NAMES.get(evidence["metric"], evidence["metric"])
    others = " vs ".join(
        f"{s:.4f} {CANDIDATE_LABELS[n].split(', ')[-1]}" for n, s in scores.items() if n != chosen
    )
    return (
        f"{label} (auto: inner {metric} {scores[chosen]:.4f} vs {others} on "
        f"{evidence['slice']}; {evidence['reason']})"
    )


def learner_params(config: ModelConfig) -> dict[str, object]:
    """The configured learner's hyper-parameters, prefixed by its kind, for the run; for
    ``auto`` every candidate's (``lgbm_``, ``lgbm_regularised_``, ``logistic_``)."""
    lgbm = {f"lgbm_{k}": v for k, v in config.lightgbm.model_dump().items()}
    logistic = {f"logistic_{k}": v for k, v in config.logistic.model_dump().items()}
    if config.kind == "logistic":
        return logistic
    if config.kind == "lightgbm":
        return lgbm
    regularised = {f"lgbm_regularised_{k}": v for k, v in config.selection.regularised.items()}
    selection = {
        f"selection_{k}": v for k, v in config.selection.model_dump().items() if k != "regularised"
    }
    return {**lgbm, **regularised, **logistic, **selection}
