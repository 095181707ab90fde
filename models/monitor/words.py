"""The monitor's figures in words, for sales ops: one place for the report, API and page.

Extends the evaluation report's glossary (``models.report.glossary``) with what only the
monitor measures (live vs estimated ROC-AUC, drift, quarantine, how long a batch has been
watched), so every view of the closed loop names a number the same way and never shows a
metric's key (``max_feature_psi``) where a person reads it.
"""

from __future__ import annotations

import math
import re

from leadscore.models.report.glossary import METRICS, Term

PSI_SOME = 0.1
PSI_LARGE = 0.2
"""The usual reading of a population stability index: below 0.1 the mix barely moved,
0.1 to 0.2 it moved somewhat, above 0.2 it moved a lot (the default retrain threshold)."""

TERMS: dict[str, Term] = {
    t.key: t
    for t in [
        Term(
            "roc_auc",
            "live ROC-AUC, model",
            "on the leads of the batch once their outcomes are known: the chance a converting "
            "lead was ranked above a non-converting one (0.5 = a coin toss, 1 = always)",
        ),
        Term(
            "roc_auc_rules",
            "live ROC-AUC, rules",
            "the same, for the points rules on the same leads",
        ),
        Term("pr_auc", "live PR-AUC, model", METRICS["pr_auc"].meaning),
        Term("pr_auc_rules", "live PR-AUC, rules", "the same, for the points rules"),
        Term("ece", "live calibration error (ECE)", METRICS["ece"].meaning),
        Term(
            "estimated_roc_auc",
            "estimated ROC-AUC",
            "the ROC-AUC to expect if the stated probabilities hold, known the night a batch "
            "is scored, before any outcome arrives",
        ),
        Term(
            "prediction_psi",
            "shift of the scores (PSI)",
            "how far tonight's spread of probabilities moved from the training leads' "
            f"(population stability index: under {PSI_SOME} little, over {PSI_LARGE} a lot)",
        ),
        Term(
            "max_feature_psi",
            "largest attribute shift (PSI)",
            "the population stability index of the attribute whose mix moved most",
        ),
        Term(
            "quarantine_share",
            "rows set aside",
            "share of the rows read for the batch that failed a data check and were not scored",
        ),
        Term(
            "observed_days",
            "days watched",
            "days of outcomes counted since the batch was scored (at most the horizon)",
        ),
        Term(
            "mature",
            "mature",
            "watched for the whole horizon: its figures are final; a batch still maturing "
            "shows conversions so far and is not used to decide a retrain",
        ),
        Term(
            "psi",
            "shift (PSI)",
            "population stability index of an attribute against the training leads "
            f"(under {PSI_SOME} little, {PSI_SOME} to {PSI_LARGE} some, over {PSI_LARGE} a lot)",
        ),
        Term("missing", "missing", "share of leads with no value, in training and tonight"),
        Term(
            "unseen",
            "new values",
            "share of leads with a value the training leads never had",
        ),
        Term(
            "top_shift",
            "biggest move",
            "the value or range whose share moved most, training -> tonight",
        ),
        Term(
            "realised",
            "realised conversion",
            "share of the grade's leads that converted within the days watched",
        ),
        Term(
            "predicted",
            "predicted",
            "the model's average stated probability for those leads",
        ),
    ]
}
"""Every monitor figure in words, with its meaning (the report's glossary section)."""

_CAPTURE = re.compile(r"^capture_top_?(\d+(?:\.\d+)?)(_rules)?$")


def capture_key(key: str) -> tuple[float, bool] | None:
    """``"capture_top_10_rules"`` -> ``(10.0, True)``; None for any other metric."""
    match = _CAPTURE.match(key)
    if match is None:
        return None
    return float(match.group(1)), match.group(2) is not None


def label(key: str) -> str:
    """The words for a monitor metric key (capture keys read "conversions in the top 10%,
    rules"); an unknown key reads as itself, underscores made spaces."""
    found = capture_key(key)
    if found is not None:
        k, rules = found
        return f"conversions in the top {k:g}%, {'rules' if rules else 'model'}"
    term = TERMS.get(key)
    return term.name if term else key.replace("_", " ")


def in_words(text: str) -> str:
    """A decision's sentence with each metric key replaced by its words:
    "retrain: max_feature_psi 0.31 > 0.2" -> "retrain: largest attribute shift (PSI) ..."."""
    keys = sorted(TERMS, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, keys)) + r")\b")
    return pattern.sub(lambda m: TERMS[m.group(1)].name, text)


def maturity(mature: bool, observed_days: int, horizon_days: int) -> str:
    """ "mature" or "still maturing (12 of 30 days)"."""
    if mature:
        return "mature"
    return f"still maturing ({observed_days} of {horizon_days} days)"


def psi_words(psi: float | None) -> str:
    """How much a PSI says the mix moved: "little", "some", "a lot" (or "not measured")."""
    if psi is None or (isinstance(psi, float) and math.isnan(psi)):
        return "not measured"
    if psi > PSI_LARGE:
        return "a lot"
    if psi >= PSI_SOME:
        return "some"
    return "little"


def share(value: float | None, digits: int = 1) -> str:
    """A share as a percentage ("12.5%"), "-" when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.{digits}f}%"
