"""After a real shift, the retrain restores live ROC-AUC (bench/drift_trials.py).

The shift: from a date, half the new leads come from a new lead source converting ~4x.
Two champions trained with the project's recipe on a 6,000-lead world (seed 1): one 35 days before
the change, one 210 days after it (120 days of matured post-change outcomes). Both are
judged on five weekly batches of open leads 210 days after the change, each lead on
whether it converted within the horizon; the old one also on five batches before the
change. Two trainings in one test: the comparison needs both.
"""

from __future__ import annotations

import pytest

from bench.drift_trials import retrain_trial, settings

pytestmark = pytest.mark.slow

GAIN = 0.05
"""The retrained champion beats the old one on post-change batches by at least this."""
MARGIN = 0.06
"""... and ends within this of the old champion's live ROC-AUC before the change.

Measured (docs/drift-simulation.md): 0.885 before the change, 0.747 after it, 0.837 after
the retrain (gain 0.090, 0.048 under the pre-change level). At 4,000 leads the old champion
is too weak for the shift to show (0.795 before, 0.804 after; retrained 0.838), so the
test runs at 6,000."""


def test_the_retrain_after_a_new_source_restores_live_roc_auc() -> None:
    trial = retrain_trial(6_000, 1, settings())
    before = trial["before_on_pre"]["roc_auc"]
    stale = trial["before_on_post"]["roc_auc"]
    retrained = trial["retrained_on_post"]["roc_auc"]
    assert trial["before_on_post"]["conversions"] >= 250  # enough to tell 0.05 apart
    assert stale < before - 0.05  # the old champion decayed (stable world: 0.876 -> 0.797)
    assert retrained >= stale + GAIN
    assert retrained >= before - MARGIN
