"""Calibration chosen on evidence (models/calibration.py), out of time inside the slice."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.models.calibration import Isotonic, choose, fit_calibrator


def _slice(shape: str, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=n)
    if shape == "logistic":  # the true map from log-odds to probability is a sigmoid
        p = 1 / (1 + np.exp(-(2.0 * raw - 1.0)))
    else:  # a step no sigmoid can follow: flat, then a cliff, then flat
        p = np.where(raw < 0.8, 0.05, 0.6)
    return raw, (rng.random(n) < p).astype(int)


def test_auto_chooses_sigmoid_when_the_truth_is_a_sigmoid() -> None:
    raw, y = _slice("logistic", n=600)  # small: isotonic's steps chase the noise
    choice = choose("auto", raw, y)
    assert choice.kind == "sigmoid"
    assert set(choice.brier) == {"sigmoid", "isotonic"}
    assert choice.brier["sigmoid"] < choice.brier["isotonic"]


def test_auto_chooses_isotonic_when_the_truth_is_a_step() -> None:
    raw, y = _slice("step")
    fitted, choice = fit_calibrator("auto", raw, y)
    assert choice.kind == "isotonic" and isinstance(fitted, Isotonic)
    assert choice.brier["isotonic"] < choice.brier["sigmoid"]
    p = fitted.predict_proba(np.array([[-1.0], [2.0]]))[:, 1]
    assert p[0] == pytest.approx(0.05, abs=0.02) and p[1] == pytest.approx(0.6, abs=0.06)


def test_the_choice_is_made_out_of_time() -> None:
    """The older half of the slice fits each kind, the newer half judges it: the Brier
    scores are exactly those (not of the reverse order, nor of shuffled folds)."""
    from leadscore.models.calibration import calibrator

    raw, y = _slice("step", n=1001, seed=3)
    choice = choose("auto", raw, y)
    half = len(y) // 2
    for kind in ("sigmoid", "isotonic"):
        fitted = calibrator(kind).fit(raw[:half].reshape(-1, 1), y[:half])
        p = fitted.predict_proba(raw[half:].reshape(-1, 1))[:, 1]
        assert choice.brier[kind] == pytest.approx(np.mean((p - y[half:]) ** 2), rel=1e-12)


def test_a_named_kind_is_used_as_is_and_a_wrong_one_refused() -> None:
    raw, y = _slice("step")
    assert choose("sigmoid", raw, y).kind == "sigmoid"
    assert choose("sigmoid", raw, y).brier == {}
    with pytest.raises(ValueError, match="unknown calibration 'platt'"):
        choose("platt", raw, y)
    one_class_half = np.r_[np.zeros(50, int), np.ones(5, int), np.zeros(45, int)]
    assert choose("auto", np.arange(100.0), one_class_half).kind == "sigmoid"  # no evidence
