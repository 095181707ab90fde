"""The promotion gate's decision (``models.gate``), pure: no tracking store.

``gate`` is the rule on the metrics; ``decide`` re-scores a champion on the validation
window, bootstraps the paired intervals over leads and applies the rule. Models are real
(LightGBM through ``models.training.fit_model``) on a small problem where conversion
follows ``visits``: a model that reads ``visits`` ranks far better than one that reads
``employees`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import AttributeConfig, FeatureConfig
from leadscore.features.registry import build_registry
from leadscore.models import training
from leadscore.models.config import ModelConfig, PromotionGate, QualityTargets
from leadscore.models.gate import Champion, decide, gate, incompatibility
from leadscore.models.report import ReportInputs, report_metrics

N_TRAIN, N_VALID = 3000, 1500
MODEL = ModelConfig(lightgbm={"n_estimators": 30, "min_child_samples": 20})


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "lead_id": [f"L{seed}-{i}" for i in range(n)],
            "employees": rng.normal(size=n),
            "visits": rng.normal(size=n),
        }
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(2.5 * X["visits"] - 2)))).astype(int)
    return X, y.to_numpy()


def _fit(columns: list[str], X: pd.DataFrame, y: np.ndarray):
    config = FeatureConfig(attributes=AttributeConfig(categorical=[], numeric=columns))
    return training.fit_model(X, y, build_registry(config, behaviour=False), MODEL)


@pytest.fixture(scope="module")
def world():
    X_train, y_train = _frame(N_TRAIN, 1)
    X_valid, y_valid = _frame(N_VALID, 2)
    strong = _fit(["employees", "visits"], X_train, y_train)
    weak = _fit(["employees"], X_train, y_train)
    renamed = _fit(
        ["employees", "web_visits"], X_train.rename(columns={"visits": "web_visits"}), y_train
    )
    return {"X": X_valid, "y": y_valid, "strong": strong, "weak": weak, "renamed": renamed}


def _window(model, X: pd.DataFrame, y: np.ndarray) -> ReportInputs:
    """The new model's and the rules' scores of the window (rules: points on employees)."""
    raw = model.raw_score(X)
    points = np.clip(50 + 10 * X["employees"].to_numpy(), 0, 100)
    return ReportInputs(
        y=y,
        model_ranking=raw,
        model_probability=model.calibrated(raw),
        rule_points=points,
        rule_probability=np.full(len(y), y.mean()),
        grades=np.array([]),
        grade_order=[],
        contributions=np.empty((0, 0)),
        features=model.features,
        families={},
    )


def test_the_fitted_model_carries_its_registry_and_input_columns(world):
    model = world["strong"]
    assert model.registry_.names == ["employees", "visits"]
    assert model.input_columns_ == ["employees", "visits"]
    assert world["renamed"].input_columns_ == ["employees", "web_visits"]


def test_a_better_model_is_promoted_over_the_rules_and_a_weaker_champion(world):
    X, y = world["X"], world["y"]
    window = _window(world["strong"], X, y)
    metrics = report_metrics(window)
    config = PromotionGate(min_margin_over_rules=0.05, min_margin_over_champion=0.0)
    decision = decide(window, X, metrics, Champion("1", world["weak"]), config, QualityTargets())
    assert decision.promoted
    new, rules = metrics["model"]["roc_auc"], metrics["rules"]["roc_auc"]
    assert new > 0.85 and rules < 0.6
    assert decision.champion_metric is not None and decision.champion_metric < 0.6
    assert decision.reason.startswith(
        f"roc_auc {new:.4f} beats rules {rules:.4f} and champion {decision.champion_metric:.4f}"
        "; over rules +"
    )
    assert "; over champion +" in decision.reason


def test_a_better_champion_keeps_the_alias(world):
    X, y = world["X"], world["y"]
    window = _window(world["weak"], X, y)
    metrics = report_metrics(window)
    config = PromotionGate(min_margin_over_rules=-1.0, min_margin_over_champion=0.0)
    decision = decide(window, X, metrics, Champion("4", world["strong"]), config, QualityTargets())
    assert not decision.promoted
    champion = decision.champion_metric
    assert champion is not None and champion > 0.85
    assert decision.reason.startswith(
        f"roc_auc {metrics['model']['roc_auc']:.4f} does not beat the champion "
        f"({champion:.4f}) by more than 0.0 (difference -"
    )


def test_a_margin_over_the_rules_that_fails_is_reported(world):
    X, y = world["X"], world["y"]
    window = _window(world["weak"], X, y)
    metrics = report_metrics(window)
    config = PromotionGate(min_margin_over_rules=0.05)
    decision = decide(window, X, metrics, None, config, QualityTargets(resamples=0))
    assert not decision.promoted
    new, rules = metrics["model"]["roc_auc"], metrics["rules"]["roc_auc"]
    assert decision.reason == (
        f"roc_auc {new:.4f} does not beat the rules ({rules:.4f}) by more than 0.05"
    )


def test_an_incompatible_champion_is_named_with_the_columns_it_misses(world):
    X, y = world["X"], world["y"]
    champion = Champion("3", world["renamed"])
    expected = "champion v3 was trained on columns web_visits, which this data no longer has"
    assert incompatibility(champion, X) == expected
    assert incompatibility(Champion("1", world["weak"]), X) is None
    window = _window(world["strong"], X, y)
    metrics = report_metrics(window)
    decision = decide(window, X, metrics, champion, PromotionGate(), QualityTargets())
    assert decision.promoted and decision.champion_metric is None
    assert f"and not the champion: {expected}; over rules +" in decision.reason
    assert "over champion" not in decision.reason and "-inf" not in decision.reason


def test_gate_refuses_worse_or_miscalibrated_models():
    config = PromotionGate(
        min_margin_over_rules=0.05, min_margin_over_champion=0.0, max_calibration_error=0.02
    )
    assert gate(0.80, 0.70, 0.79, config, calibration_error=0.01).promoted
    below_rules = gate(0.74, 0.70, None, config, calibration_error=0.01)
    assert not below_rules.promoted and "rules" in below_rules.reason
    below_champion = gate(0.78, 0.70, 0.79, config, calibration_error=0.01)
    assert not below_champion.promoted and "champion (0.7900)" in below_champion.reason
    miscalibrated = gate(0.80, 0.70, 0.79, config, calibration_error=0.05)
    assert not miscalibrated.promoted and "(ECE) 0.0500 is above" in miscalibrated.reason
    unchecked = PromotionGate(max_calibration_error=None)
    assert gate(0.80, 0.70, None, unchecked, calibration_error=0.5).promoted


def test_gate_judged_on_intervals_refuses_a_margin_within_noise():
    values = {"min_margin_over_rules": 0.05, "min_margin_over_champion": 0.0}
    on_value, on_interval = PromotionGate(**values), PromotionGate(**values, judged_on="interval")
    noisy = {"rules": (0.08, 0.12), "champion": (-0.005, 0.025)}
    # +0.01 over the champion on the window, but the interval reaches below 0
    passed = gate(0.80, 0.70, 0.79, on_value, intervals=noisy)
    assert passed.promoted
    assert "over rules +0.0800 to +0.1200; over champion -0.0050 to +0.0250" in passed.reason
    refused = gate(0.80, 0.70, 0.79, on_interval, intervals=noisy)
    assert not refused.promoted
    assert refused.reason == (
        "roc_auc 0.8000 does not beat the champion (0.7900) by more than 0.0 beyond "
        "resampling noise (difference -0.0050 to +0.0250)"
    )
    clear = {"rules": (0.08, 0.12), "champion": (0.002, 0.02)}
    assert gate(0.80, 0.70, 0.79, on_interval, intervals=clear).promoted
    # the rules' margin is judged the same way: 0.05 needed beyond noise, 0.04 at worst
    near_rules = {"rules": (0.04, 0.16), "champion": (0.002, 0.02)}
    assert "the rules (0.7000)" in gate(0.80, 0.70, 0.79, on_interval, intervals=near_rules).reason
    # no interval (a champion that cannot score these features): its value decides
    assert gate(0.80, 0.70, float("-inf"), on_interval, intervals={"rules": (0.08, 0.12)}).promoted


def test_gate_on_intervals_needs_roc_auc():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"judged_on: interval needs promotion\.metric"):
        PromotionGate(metric="pr_auc", judged_on="interval")
