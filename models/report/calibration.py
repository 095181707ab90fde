"""Calibration per grade, in words: does a grade convert at the rate the model states?

For each grade the model's mean stated probability is set against the observed conversion
rate and its 95% interval: a bootstrap over leads when the window's lead ids are known (a
lead's snapshots are drawn together, as ``models.quality`` does), else a Wilson score
interval. Where the interval excludes the stated probability the grade is called
overconfident (it states more than happens) or underconfident, with the numbers; a small
overall ECE can hide one such grade, so the ECE's verdict names them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.models.quality import lead_resamples

Z95 = 1.959963984540054
RESAMPLES = 200
SEED = 0


@dataclass(frozen=True)
class GradeCalibration:
    """One grade: rows, mean stated probability, observed rate and its 95% interval."""

    grade: str
    rows: int
    predicted: float
    observed: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """overconfident / underconfident when the interval excludes the prediction."""
        if not self.rows or math.isnan(self.low):
            return "no leads"
        if self.predicted > self.high:
            return "overconfident"
        if self.predicted < self.low:
            return "underconfident"
        return "consistent"

    @property
    def flagged(self) -> bool:
        return self.verdict in ("overconfident", "underconfident")

    def words(self) -> str:
        """ "overconfident: predicted 0.62, observed 0.54 [0.51, 0.58]" (or consistent)."""
        if not self.rows:
            return "no leads in this grade"
        observed = f"observed {rate(self.observed)} [{rate(self.low)}, {rate(self.high)}]"
        return f"{self.verdict}: predicted {rate(self.predicted)}, {observed}"


def rate(value: float) -> str:
    """A probability as the commentary writes it: 2 decimals, 3 below 0.1."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (``z`` = 1.96: 95%)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def lead_interval(
    y: np.ndarray, leads: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """95% percentile interval of the rate over bootstrap draws of the leads."""
    weights = lead_resamples(leads, resamples, seed)
    totals = weights.sum(axis=1)
    rates = (weights @ np.asarray(y, dtype=np.float64))[totals > 0] / totals[totals > 0]
    low, high = np.quantile(rates, [0.025, 0.975])
    return float(low), float(high)


def grade_calibration(
    y: np.ndarray,
    probability: np.ndarray,
    grades: np.ndarray,
    order: Sequence[str],
    leads: np.ndarray | None = None,
) -> list[GradeCalibration]:
    """Per grade (best first): stated vs observed, with the interval (see module doc)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    grades = np.asarray(grades)
    out = []
    for grade in order:
        mask = grades == grade
        n = int(mask.sum())
        if not n:
            out.append(GradeCalibration(str(grade), 0, *(float("nan"),) * 4))
            continue
        observed = float(y[mask].mean())
        if leads is None:
            low, high = wilson(float(y[mask].sum()), n)
        else:
            low, high = lead_interval(y[mask], np.asarray(leads)[mask])
        out.append(GradeCalibration(str(grade), n, float(p[mask].mean()), observed, low, high))
    return out


def grade_frame(calibration: Sequence[GradeCalibration]) -> pd.DataFrame:
    """The per-grade table: rows, stated, observed, interval, verdict in words."""
    return pd.DataFrame(
        {
            "grade": [c.grade for c in calibration],
            "snapshots": [c.rows for c in calibration],
            "mean_probability": [c.predicted for c in calibration],
            "conversion_rate": [c.observed for c in calibration],
            "interval": [
                "-" if not c.rows else f"{c.low:.4f} to {c.high:.4f}" for c in calibration
            ],
            "verdict": [c.words() if c.rows else "no leads" for c in calibration],
        }
    ).set_index("grade")


def flagged_words(calibration: Sequence[GradeCalibration]) -> str:
    """ "grade A is overconfident (predicted ..., observed ... [...])" for every flagged
    grade, joined; empty when every grade is consistent."""
    parts = [
        f"grade {c.grade} is {c.verdict} (predicted {rate(c.predicted)}, observed "
        f"{rate(c.observed)} [{rate(c.low)}, {rate(c.high)}])"
        for c in calibration
        if c.flagged
    ]
    return "; ".join(parts)


def ece_sentence(ece: float, bands: int, calibration: Sequence[GradeCalibration]) -> str:
    """The calibration paragraph: the ECE, and what the average hides per grade."""
    text = (
        f"Calibration error (ECE, {bands} equal-count score bands): {ece:.4f}, the average gap "
        "between stated probability and observed rate."
    )
    flagged = flagged_words(calibration)
    if flagged:
        return f"{text} The average hides a grade that is off: {flagged}."
    return f"{text} Every grade converts at a rate whose 95% interval holds what it states."


def interval_note(by_lead: bool) -> str:
    """How the per-grade intervals were drawn, for the page."""
    if by_lead:
        return (
            f"Intervals: 95% bootstrap over leads ({RESAMPLES} draws; a lead's snapshots "
            "are drawn together)."
        )
    return "Intervals: 95% Wilson score interval over the grade's rows."
