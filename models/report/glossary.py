"""Every metric and column the report names, in words, with a one-line meaning: the one
place the report's wording lives.

Each section of the report names a metric through :func:`term` (or :func:`label`), never by
its key, so a reader sees "ROC-AUC" and what it means, not ``roc_auc``. The keys stay the
names of the JSON line and of MLflow's metrics (``model_<key>``, ``rules_<key>``), which
the glossary section lists beside the words so the two can be matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leadscore.models.evaluate import REPORT_SHARES, share_key


@dataclass(frozen=True)
class Term:
    """A metric or column as a person reads it: its name and what it means, in one line."""

    key: str
    name: str
    meaning: str


def _share_terms() -> list[Term]:
    terms = []
    for share in REPORT_SHARES:
        top = f"{share:.0%}"
        terms += [
            Term(
                f"lift_{share_key(share)}",
                f"lift in the top {top}",
                f"how many times the average conversion rate the top {top} of leads convert at",
            ),
            Term(
                f"capture_{share_key(share)}",
                f"conversions in the top {top}",
                f"share of all conversions found among the top {top} of leads",
            ),
        ]
    return terms


METRICS: dict[str, Term] = {
    t.key: t
    for t in [
        Term(
            "roc_auc",
            "ROC-AUC",
            "the chance a converting lead is ranked above a non-converting one "
            "(0.5 = a coin toss, 1 = always)",
        ),
        Term(
            "pr_auc",
            "PR-AUC (average precision)",
            "how pure the top of the list stays as you go down it; the base rate is a random list",
        ),
        Term(
            "brier",
            "Brier score",
            "mean squared gap between the stated probability and what happened (lower is better)",
        ),
        Term(
            "log_loss",
            "log loss",
            "how surprised the probabilities are by the outcomes (lower is better)",
        ),
        Term(
            "ece",
            "calibration error (ECE)",
            "average gap between the stated probability and the observed conversion rate, "
            "over 10 equal-count score bands (lower is better)",
        ),
        *_share_terms(),
    ]
}
"""The metrics of ``models.evaluate.full_metrics``, in the comparison table's order."""

COLUMNS: dict[str, Term] = {
    t.key: t
    for t in [
        Term("leads", "leads", "distinct leads"),
        Term("snapshots", "snapshots", "times a lead was scored while open (one per cadence)"),
        Term("conversions", "converted leads", "leads that converted within the horizon"),
        Term(
            "conversion_rate",
            "conversion rate",
            "share of snapshots followed by a conversion within the horizon",
        ),
        Term("observed_rate", "observed rate", "share that converted within the horizon"),
        Term("mean_probability", "mean predicted", "the model's average stated probability"),
        Term("lift", "lift", "conversion rate here / overall conversion rate"),
        Term(
            "cumulative_capture",
            "conversions reached so far",
            "share of all conversions in this decile and the ones above it",
        ),
        Term("n", "snapshots", "rows in the band"),
        Term("interval", "95% interval", "where the observed rate would fall on another window"),
        Term("mean_abs_contribution", "mean |SHAP|", "average size of the push, in log-odds"),
        Term("share", "share of the model", "this part's share of all the pushes"),
        Term("model_mean_probability", "model: mean predicted", "the model's average probability"),
        Term("rules_mean_probability", "rules: mean predicted", "the rules' average probability"),
        Term("model_roc_auc", "model ROC-AUC", "ROC-AUC of the model within the group"),
        Term("rules_roc_auc", "rules ROC-AUC", "ROC-AUC of the rules within the group"),
    ]
}
"""Column names of the report's tables, in words."""

FAMILIES: dict[str, str] = {
    "fit": "fit (who the lead is)",
    "engagement": "engagement (what the lead did)",
    "lifecycle": "lifecycle (how long the lead has been open)",
    "market": "market (how leads convert lately)",
    "other": "other",
}
"""Feature families in words: lead age is lifecycle, never engagement."""


def term(key: str) -> Term:
    """The term of a metric or column key; an unknown key reads as itself, underscores
    made spaces (never a raw key in the page)."""
    return METRICS.get(key) or COLUMNS.get(key) or Term(key, key.replace("_", " "), "")


def label(key: str) -> str:
    """The words for a metric or column key."""
    return term(key).name


def family_label(family: str) -> str:
    return FAMILIES.get(family, family.replace("_", " "))


def in_words(text: str) -> str:
    """A sentence written elsewhere (the gate's reason) with every metric key in it
    replaced by its words: "roc_auc 0.91 does not beat" -> "ROC-AUC 0.91 does not beat"."""
    keys = sorted(METRICS, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, keys)) + r")\b")
    return pattern.sub(lambda m: METRICS[m.group(1)].name, text)
