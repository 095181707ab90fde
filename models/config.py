"""Typed configuration of the model room: rules baseline, learner, scores, promotion gate.

Composed into the one settings object by ``pipelines.settings``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_cutoffs(cutoffs: dict[str, float]) -> dict[str, float]:
    """Grades are listed best first with strictly falling cutoffs; the last grade catches all."""
    values = list(cutoffs.values())
    if len(values) < 2 or any(a <= b for a, b in itertools.pairwise(values)):
        raise ValueError("grade cutoffs must list >= 2 grades, best first, strictly decreasing")
    return cutoffs


GradeCutoffs = Annotated[dict[str, float], AfterValidator(_check_cutoffs)]


class IcpAttributeRule(_Strict):
    """Quality score (0-10) of one attribute's values, and its weight in the ICP average."""

    weight: float = Field(gt=0)
    values: dict[str, float] = Field(default_factory=dict, description="Value -> score 0-10.")
    default: float = Field(default=0.0, ge=0, le=10, description="Score of unlisted values.")


class AttributePenalty(_Strict):
    """Negative points when an attribute's value is outside a target list."""

    attribute: str
    not_in: list[str]
    points: float = Field(lt=0)


def _bound(value: float | None, missing: float) -> float:
    return missing if value is None else value


class PointsBin(_Strict):
    """Points for a value of a numeric attribute in the half-open range ``[min, max)``.

    ``min`` is inclusive, ``max`` exclusive; leave one out for an open end ("5 or more":
    ``{min: 5}``; "under 1": ``{max: 1}``). For whole numbers "51-200 employees" is
    ``{min: 51, max: 201}``. ``label`` replaces the range's wording in reasons and the card.
    """

    min: float | None = Field(default=None, allow_inf_nan=False, description="Inclusive.")
    max: float | None = Field(default=None, allow_inf_nan=False, description="Exclusive.")
    points: float = Field(allow_inf_nan=False, description="Points, negative allowed.")
    label: str | None = Field(default=None, description="Wording of the range; None = derived.")

    @model_validator(mode="after")
    def _a_range(self) -> PointsBin:
        if self.min is None and self.max is None:
            raise ValueError("a bin needs min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self

    @property
    def low(self) -> float:
        return _bound(self.min, float("-inf"))

    @property
    def high(self) -> float:
        return _bound(self.max, float("inf"))


class NumericAttributeRule(_Strict):
    """Points per range of one numeric attribute: ranges must not overlap; a value in no
    range gets 0 points, a missing value ``missing`` points.

    A bare list of bins is short for ``{bins: [...]}`` (``missing`` then 0)."""

    bins: list[PointsBin] = Field(min_length=1)
    missing: float = Field(
        default=0.0, allow_inf_nan=False, description="Points of a missing value."
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: object) -> object:
        return {"bins": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _no_overlap(self) -> NumericAttributeRule:
        ordered = sorted(self.bins, key=lambda b: (b.low, b.high))
        for before, after in itertools.pairwise(ordered):
            if after.low < before.high:
                raise ValueError(
                    f"ranges overlap: [{before.low:g}, {before.high:g}) and "
                    f"[{after.low:g}, {after.high:g}) (min is inclusive, max exclusive)"
                )
        return self


class RulesConfig(_Strict):
    """The classic points baseline (LeadSquared / Pardot style), declared not coded."""

    icp: dict[str, IcpAttributeRule] = Field(default_factory=dict)
    icp_points: float = Field(default=50.0, description="Points for a perfect 10/10 ICP fit.")
    activity_window_days: int = Field(
        default=90, description="Activity points count within this window (a feature window)."
    )
    penalties: list[AttributePenalty] = Field(default_factory=list)
    numeric: dict[str, NumericAttributeRule] = Field(
        default_factory=dict,
        description="Numeric attribute -> points per half-open range [min, max), e.g. "
        "{TotalVisits: [{min: 5, points: 10}, {max: 1, points: -5}]}.",
    )
    grades: GradeCutoffs = Field(
        default={"A": 60.0, "B": 40.0, "C": 20.0, "D": float("-inf")},
        description="Grade -> minimum rule score (unclipped points), best first; they depend "
        "on the points card: the demo's leadscore.yaml tunes its own.",
    )


class LightGBMParams(_Strict):
    """The learner's hyper-parameters (passed to lightgbm.LGBMClassifier).

    200 trees x 7 leaves: exact reasons ~5x faster than 300 x 15 (TreeSHAP cost grows
    with trees x splits) at the same or better validation AUC (+0.0012 / +0.0013 on two
    40k-lead synthetic CRMs; ``python -m bench.shapes``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    n_estimators: int = 200
    learning_rate: float = 0.075
    num_leaves: int = 7
    max_depth: int = -1
    min_child_samples: int = 50
    subsample: float = 0.8
    subsample_freq: int = 1
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0


class LogisticParams(_Strict):
    """The logistic regression's parameters (``model.kind: logistic``, models/linear.py)."""

    C: float = Field(
        default=1.0, gt=0, description="Inverse L2 strength on standardised columns (sklearn C)."
    )
    max_iter: int = Field(default=1000, ge=1, description="L-BFGS iterations at most.")


class SegmentConfig(_Strict):
    """One model per segment (ICP, product line, persona) plus a shared fallback model.

    Off while ``column`` is None. A segment gets a model of its own only with enough
    training rows of each class, and only if that model ranks the segment's held-out rows
    better than the shared one; smaller, missing and unseen segments are scored by the
    shared model fitted on every row. The floors mirror the training floor of
    ``snapshots`` (1,000 leads, 120 conversions), here counted in training examples.
    """

    column: str | None = Field(
        default=None, description="Categorical attribute naming the segment; None = one model."
    )
    min_examples: int = Field(default=1000, ge=1, description="Training rows a segment needs.")
    min_positives: int = Field(
        default=120, ge=1, description="Converting (and non-converting) rows a segment needs."
    )
    min_auc_gain: float | None = Field(
        default=0.01,
        description="A segment keeps its own model only if, on the held-out rows neither "
        "booster learned from (the newest, calibration rows), it ranks the segment better "
        "than the shared model by more than this ROC-AUC (a guard against noise: held-out "
        "rows are few); None = no check.",
    )


DEFAULT_MONOTONE: dict[str, Literal[-1, 0, 1]] = {
    "days_since_unsubscribe": 1,
    "*unsubscribe*": -1,
    "*other*": 0,
    "lead_age_days": 0,
    "days_since_*": -1,
    "n_*": 1,
    "decay_*": 1,
    "engagement_points": 1,
}
"""The directions features/registry.py declares for the default behaviour features."""


class MonotoneConfig(_Strict):
    """Behaviour the score may follow one way only (LightGBM ``monotone_constraints``).

    ``directions`` maps feature-name patterns (``fnmatch``, e.g. ``n_*``) to +1 (more of
    it never lowers the score), -1 (never raises it) or 0 (free); a numeric feature takes
    the direction of the first pattern it matches, in listed order, and is free if none
    matches; categorical features are always free. The defaults are the directions the
    feature registry declares (tests/test_model.py checks that they agree). ``isolate``
    lets the features the patterns name (0 included: the behaviour features) share trees
    only with each other, so the score is a sum of their part and the rest's: then their
    summed contributions (the engagement sub-score) follow the constraints too, not just
    the score (measured without it: 0.2-0.6% of open leads lose a little engagement).
    """

    directions: dict[str, Literal[-1, 0, 1]] = Field(
        default_factory=lambda: dict(DEFAULT_MONOTONE),
        description="Feature-name pattern -> +1 | -1 | 0, first match wins; {} = off.",
    )
    isolate: bool = Field(
        default=True, description="Features the patterns name interact only with each other."
    )


REGULARISED_SHAPE: dict[str, float | int] = {
    "num_leaves": 4,
    "min_child_samples": 200,
    "colsample_bytree": 0.5,
    "reg_lambda": 10.0,
    "learning_rate": 0.05,
}
"""The more regularised LightGBM ``model.kind: auto`` tries beside the configured one."""


class SelectionConfig(_Strict):
    """How ``model.kind: auto`` chooses the family (``models.selection``).

    Candidates, simplest first: the calibrated logistic model, a more regularised LightGBM
    (``model.lightgbm`` with ``regularised`` on top) and the configured LightGBM. Each is
    fitted once on the older training rows and judged on an inner slice of the training
    rows (the newest ``inner_fraction``, after the horizon embargo; a stratified random
    share when the data has no order) by the promotion metric; never on the validation
    window. Within ``margin`` of the best, the simpler candidate wins.
    """

    inner_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="Share of training rows candidates are judged on."
    )
    margin: float = Field(
        default=0.002, ge=0, description="Within this of the best score, the simpler model wins."
    )
    min_class_rows: int = Field(
        default=20,
        ge=1,
        description="Rows of each class the inner slice needs to judge; fewer: the "
        "configured LightGBM, unjudged.",
    )
    regularised: dict[str, float | int] = Field(
        default_factory=lambda: dict(REGULARISED_SHAPE),
        description="LightGBM parameters of the regularised candidate, over model.lightgbm.",
    )


class ModelConfig(_Strict):
    """Conversion-likelihood model: LightGBM, then calibration on the newest training slice."""

    kind: Literal["auto", "lightgbm", "logistic"] = Field(
        default="auto",
        description="auto: the family that wins on an inner slice of the training rows "
        "(models/selection.py); lightgbm: calibrated trees; logistic: calibrated linear model "
        "that extrapolates drifting numerics (models/linear.py).",
    )
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    logistic: LogisticParams = Field(default_factory=LogisticParams)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    calibration: Literal["isotonic", "sigmoid", "auto"] = Field(
        default="auto",
        description="Calibrator of the log-odds, fitted on the newest training slice; auto: "
        "the one with the lower Brier score on the newer half of that slice when fitted on "
        "its older half (models/calibration.py).",
    )
    calibration_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="Newest share of training rows kept to calibrate."
    )
    seed: int = 7
    segments: SegmentConfig = Field(default_factory=SegmentConfig)
    monotone: MonotoneConfig = Field(default_factory=MonotoneConfig)


class CellCutoffs(_Strict):
    """Where a sub-score (0-100, ``models.subscores``) counts as high for the quadrant cell:
    at or above the cut-off. 50: above the median lead the model learnt from."""

    fit: float = Field(default=50.0, ge=0, le=100, description="fit_score at least this: high.")
    engagement: float = Field(
        default=50.0, ge=0, le=100, description="engagement_score at least this: high."
    )


class ScoringConfig(_Strict):
    """How a probability becomes a score, a grade and reasons."""

    grades: GradeCutoffs = Field(
        default={"A": 40.0, "B": 20.0, "C": 8.0, "D": float("-inf")},
        description="Grade -> minimum score (0-100 = probability x 100), best first.",
    )
    top_positive: int = Field(default=3, ge=0)
    top_negative: int = Field(default=2, ge=0)
    min_abs_contribution: float = Field(
        default=0.01, ge=0, description="Contributions (log-odds) smaller than this give no reason."
    )
    min_reason_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="A concept is a reason only if its |contribution| is at least this share "
        "of the lead's total |contribution| over concepts.",
    )
    new_lead_days: int = Field(
        default=14, ge=0, description="Younger leads read 'new lead (N days)' in reasons."
    )
    partition_rows: int = Field(
        default=62_500,
        ge=1,
        description="Open leads per scoring partition: bounds memory (two at once: one being "
        "finished, one being published), unit of parallel work.",
    )
    cells: CellCutoffs = Field(
        default_factory=CellCutoffs,
        description="Sub-score cut-offs of the quadrant cell (call_now / nurture / educate / "
        "deprioritise).",
    )


class PromotionGate(_Strict):
    """When the `champion` alias may move to a new model version (declared, not coded)."""

    metric: Literal["roc_auc", "pr_auc", "lift_top10"] = "roc_auc"
    min_margin_over_rules: float = 0.0
    min_margin_over_champion: float = 0.0
    max_calibration_error: float | None = Field(
        default=0.05,
        ge=0,
        description="Largest expected calibration error (ECE) on the validation window "
        "a champion may have; None = not checked.",
    )
    judged_on: Literal["value", "interval"] = Field(
        default="value",
        description="value: the margins hold on the window's metric. interval: they hold "
        "for the low end of the bootstrap interval over leads of the paired ROC-AUC "
        "difference (quality.resamples, quality.confidence), so a new model must beat the "
        "rules and the champion by more than resampling noise. interval needs roc_auc.",
    )

    @model_validator(mode="after")
    def _interval_needs_roc_auc(self) -> PromotionGate:
        if self.judged_on == "interval" and self.metric != "roc_auc":
            raise ValueError("promotion.judged_on: interval needs promotion.metric: roc_auc")
        return self


class QualityTargets(_Strict):
    """Targets every training run reports against (never enforced: that is the gate's job).

    Each target is judged on the validation window's point value and shown with a
    bootstrap interval over leads, so a reader can tell a robust miss from noise. The
    defaults are the shipped leadscore.yaml's targets; None turns one off.
    """

    min_roc_auc: float | None = Field(
        default=None, ge=0, le=1, description="Model ROC-AUC at least this; None = no target."
    )
    min_margin_over_rules: float | None = Field(
        default=0.05, description="Model ROC-AUC minus the rules' at least this."
    )
    max_oracle_gap: float | None = Field(
        default=0.01,
        ge=0,
        description="Oracle ROC-AUC minus the model's at most this (synthetic CRM only).",
    )
    max_calibration_error: float | None = Field(
        default=0.02, ge=0, description="Model ECE on the validation window at most this."
    )
    resamples: int = Field(
        default=200, ge=0, description="Bootstrap resamples of the leads (0 = no interval)."
    )
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Interval coverage.")
    seed: int = 0
