"""The rule-based points baseline, as a scikit-learn style estimator.

It reads the same feature frame as the model: an ICP quality score 0-10 (weighted mean of
per-attribute value scores, LeadSquared style) scaled to ``icp_points``, plus activity
points for each occurrence within the activity window ("+10 meeting, +8 webinar,
-5 unsubscribe"), plus attribute penalties, plus points per range of a numeric attribute
("5+ visits: +10", "under a minute on site: -5"). The points are not clipped: they rank
leads (a 0-100 clip tied a quarter of the demo's open leads at 100), and the grades come
from ``rules.grades``. ``fit`` learns nothing about the points; given labels, it maps
points to a conversion rate (isotonic) so the baseline's probabilities can be scored
(Brier) on the same footing as the model's.

Every declared rule is also one line of the rules card (``card_lines``): what it gives
points for, in words, and which rows it applies to. The card explains a lead's points
(``RuleScorer.explain``: "TotalVisits 7 (5 or more): +10") and shows in the report how
each rule did on the validation window (``RuleScorer.card``), and in a batch each lead
carries the same breakdown as JSON (``RuleScorer.reasons_json``, computed once per
distinct combination of the values the rules read). ``points`` itself stays one
vectorised pass per rule over the columns (scoring runs on a million leads).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression

from leadscore.features.pieces import TEXT, Pieces, by_row, join_rows
from leadscore.features.registry import count_name
from leadscore.models.config import NumericAttributeRule, PointsBin, RulesConfig

Kind = Literal["icp", "activity", "penalty", "numeric"]
KIND_WORDS: dict[str, str] = {
    "icp": "ICP value score",
    "activity": "activity (points each)",
    "penalty": "penalty",
    "numeric": "numeric range",
}
"""How the card names each kind of rule."""


def grade_of(values: np.ndarray, cutoffs: Mapping[str, float]) -> np.ndarray:
    """Grade per value: the first (best) grade whose minimum the value reaches."""
    return np.array(list(cutoffs), dtype=object)[grade_codes(values, cutoffs)]


def grade_codes(values: np.ndarray, cutoffs: Mapping[str, float]) -> np.ndarray:
    """:func:`grade_of` as positions in ``list(cutoffs)`` (0 = the best grade)."""
    minimums = np.array(list(cutoffs.values()), dtype=np.float64)
    # minimums fall strictly; count how many are above the value -> index of the grade
    idx = (np.asarray(values, dtype=np.float64)[:, None] < minimums[None, :]).sum(axis=1)
    return np.minimum(idx, len(minimums) - 1)


def number_text(value: float) -> str:
    """A number as people write it: 5 not 5.0, 1,000,000 not 1e+06, 0.25 as 0.25."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"


def points_text(points: float) -> str:
    """Signed points, two decimals at most: "+10", "-5", "+18.75"."""
    return f"{round(points, 2):+g}"


def bin_text(b: PointsBin) -> str:
    """A half-open range in words ("5 or more", "under 1", "51 to under 201"), or its label."""
    if b.label is not None:
        return b.label
    if b.max is None:
        return f"{number_text(b.low)} or more"
    if b.min is None:
        return f"under {number_text(b.max)}"
    return f"{number_text(b.min)} to under {number_text(b.max)}"


def numeric_values(X: pd.DataFrame, attribute: str) -> np.ndarray:
    """A numeric attribute as float64, missing as NaN (nullable dtypes included)."""
    return X[attribute].to_numpy(dtype=np.float64, na_value=np.nan)


def in_bin(values: np.ndarray, b: PointsBin) -> np.ndarray:
    """Rows whose value lies in ``[min, max)`` (a missing value lies in no range)."""
    inside = ~np.isnan(values)
    if b.min is not None:
        inside &= values >= b.min
    if b.max is not None:
        inside &= values < b.max
    return inside


def bin_points(values: np.ndarray, rule: NumericAttributeRule) -> np.ndarray:
    """Points per value: its range's points, 0 outside every range, ``missing`` if NaN."""
    chosen = np.select([in_bin(values, b) for b in rule.bins], [b.points for b in rule.bins], 0.0)
    return np.where(np.isnan(values), rule.missing, chosen)


class Coded:
    """A frame whose columns are factorised once, when a rule first reads them: the rules
    then match each column's few distinct values instead of every row's text."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.X = X
        self._seen: dict[str, tuple[np.ndarray, pd.Index]] = {}

    def __len__(self) -> int:
        return len(self.X)

    def codes(self, column: str) -> tuple[np.ndarray, pd.Index]:
        """The column's codes (-1: missing) and its distinct values."""
        if column not in self._seen:
            self._seen[column] = pd.factorize(self.X[column], use_na_sentinel=True)
        return self._seen[column]

    def per_row(self, column: str, values: np.ndarray, missing: object) -> np.ndarray:
        """``values`` (one per distinct value of ``column``) on every row, ``missing``
        where the row has none."""
        codes, _ = self.codes(column)
        return np.append(np.asarray(values, dtype=np.float64), missing)[codes]


def coded(X: pd.DataFrame | Coded) -> Coded:
    return X if isinstance(X, Coded) else Coded(X)


Matcher = Callable[[Coded], np.ndarray]


@dataclass(frozen=True)
class CardLine:
    """One line of the rules card: the rule in words and the points it gives.

    ``points`` are given per occurrence for an activity line, once otherwise (for an ICP
    line: the attribute's weighted share of ``icp_points`` at that value score).
    ``amount(X)`` is the multiplier per row: 1/0 whether the line applies, or the count
    of occurrences for an activity line; its points on a row are ``points * amount``
    (``match`` computes it from a :class:`Coded` frame).
    """

    kind: Kind
    attribute: str
    condition: str
    points: float
    match: Matcher = field(repr=False, compare=False)
    column: str | None = None
    """The column whose value a reason shows (None: activity counts, missing values)."""

    def amount(self, X: pd.DataFrame | Coded) -> np.ndarray:
        return self.match(coded(X))

    @property
    def name(self) -> str:
        return f"{self.attribute}: {self.condition}"

    def words(self, value: object, amount: float) -> str:
        """This line on one lead in words, with the lead's value: "TotalVisits 7 (5 or more)"."""
        if self.kind == "activity":
            return f"{number_text(amount)} x {self.attribute} {self.condition}"
        if self.column is None:
            return f"{self.attribute} {self.condition}"
        if _missing(value):
            return f"{self.attribute} missing ({self.condition})"
        shown = number_text(float(value)) if self.kind == "numeric" else str(value)  # type: ignore[arg-type]
        return f"{self.attribute} {shown} ({self.condition})"

    def reason(self, value: object, amount: float) -> str:
        """This line on one lead with its points: "TotalVisits 7 (5 or more): +10"."""
        return f"{self.words(value, amount)}: {points_text(self.points * amount)}"


def _value(X: pd.DataFrame, column: str | None, row: int) -> object:
    return None if column is None else X[column].iloc[row]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _is(attribute: str, values: Sequence[str], negate: bool = False) -> Matcher:
    def match(X: Coded) -> np.ndarray:
        found = np.asarray(X.codes(attribute)[1].isin(values))
        return X.per_row(attribute, found != negate, float(negate))  # missing: never found

    return match


def _within(attribute: str, b: PointsBin) -> Matcher:
    return lambda X: in_bin(numeric_values(X.X, attribute), b).astype(np.float64)


def _absent(attribute: str) -> Matcher:
    return lambda X: np.isnan(numeric_values(X.X, attribute)).astype(np.float64)


def _count(column: str) -> Matcher:
    return lambda X: X.X[column].to_numpy(dtype=np.float64) if column in X.X else np.zeros(len(X))


def card_lines(rules: RulesConfig, activity_points: Mapping[str, float]) -> list[CardLine]:
    """Every declared rule as card lines, in the order the config declares them
    (activity types worth no points are left out: they give none)."""
    lines: list[CardLine] = []
    weights = sum(rule.weight for rule in rules.icp.values())
    for attr, rule in rules.icp.items():
        per_score = rule.weight / weights / 10.0 * rules.icp_points
        for value, score in rule.values.items():
            lines.append(CardLine("icp", attr, value, score * per_score, _is(attr, [value])))
        other = _is(attr, list(rule.values), negate=True)
        lines.append(CardLine("icp", attr, "other values", rule.default * per_score, other, attr))
    window = rules.activity_window_days
    for activity_type, pts in activity_points.items():
        if pts:
            count = _count(count_name(activity_type, window))
            label = activity_type.replace("_", " ")
            lines.append(CardLine("activity", label, f"in the last {window} days", pts, count))
    for penalty in rules.penalties:
        attr, condition = penalty.attribute, f"not in {', '.join(penalty.not_in)}"
        outside = _is(attr, penalty.not_in, negate=True)
        lines.append(CardLine("penalty", attr, condition, penalty.points, outside, attr))
    for attr, numeric in rules.numeric.items():
        for b in numeric.bins:
            lines.append(CardLine("numeric", attr, bin_text(b), b.points, _within(attr, b), attr))
        if numeric.missing:
            lines.append(CardLine("numeric", attr, "missing", numeric.missing, _absent(attr)))
    return lines


class RuleScorer(ClassifierMixin, BaseEstimator):
    """Points baseline; ``points`` gives the points, ``predict_proba`` the calibrated rate."""

    def __init__(
        self,
        rules: RulesConfig | None = None,
        activity_points: Mapping[str, float] | None = None,
    ) -> None:
        self.rules = rules
        self.activity_points = activity_points

    def _rules(self) -> RulesConfig:
        return self.rules if self.rules is not None else RulesConfig()

    def icp_quality(self, X: pd.DataFrame | Coded) -> np.ndarray:
        """Weighted mean ICP value score, 0-10, per row (unlisted or missing: the default)."""
        rules, X = self._rules(), coded(X)
        if not rules.icp:
            return np.zeros(len(X))
        total = np.zeros(len(X))
        weights = 0.0
        for attribute, rule in rules.icp.items():
            distinct = pd.Series(X.codes(attribute)[1]).map(rule.values).astype("float64")
            total += rule.weight * X.per_row(attribute, distinct.fillna(rule.default), rule.default)
            weights += rule.weight
        return total / weights

    def numeric_points(self, X: pd.DataFrame) -> np.ndarray:
        """Points of the numeric ranges per row (0 when none are declared)."""
        total = np.zeros(len(X))
        for attribute, rule in self._rules().numeric.items():
            total += bin_points(numeric_values(X, attribute), rule)
        return total

    def points(self, X: pd.DataFrame | Coded) -> np.ndarray:
        """Rule score per row of a feature frame: the points, unclipped (they rank leads)."""
        rules, X = self._rules(), coded(X)
        score = self.icp_quality(X) / 10.0 * rules.icp_points
        for activity_type, pts in (self.activity_points or {}).items():
            column = count_name(activity_type, rules.activity_window_days)
            if column in X.X:
                score = score + pts * X.X[column].to_numpy(dtype=np.float64)
        for penalty in rules.penalties:
            outside = _is(penalty.attribute, penalty.not_in, negate=True)(X).astype(bool)
            score = score + penalty.points * outside
        if rules.numeric:
            score = score + self.numeric_points(X.X)
        return np.asarray(score, dtype=np.float64)

    def grades(self, X: pd.DataFrame) -> np.ndarray:
        return grade_of(self.points(X), self._rules().grades)

    def card_lines(self) -> list[CardLine]:
        """Every rule of this scorer as a line of the rules card."""
        return card_lines(self._rules(), self.activity_points or {})

    def breakdown(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points per card line per row (columns named by ``CardLine.name``): each row sums
        to its rule score."""
        lines = self.card_lines()
        parts = [line.points * line.amount(X) for line in lines]
        return pd.DataFrame(
            np.column_stack(parts) if parts else np.zeros((len(X), 0)),
            index=X.index,
            columns=[line.name for line in lines],
        )

    def explain(self, X: pd.DataFrame) -> list[list[str]]:
        """Per row, the rules that gave it points, largest first, in words
        ("TotalVisits 7 (5 or more): +10").

        Meant for a few leads (a lead's page, an example): the text is built per row."""
        lines = [line for line in self.card_lines() if line.points]
        amounts = np.column_stack([line.amount(X) for line in lines] or [np.zeros(len(X))])
        out: list[list[str]] = []
        for i in range(len(X)):
            parts = sorted(
                (
                    (line.points * a, line.reason(_value(X, line.column, i), a))
                    for line, a in zip(lines, amounts[i], strict=False)
                    if a
                ),
                key=lambda part: -abs(part[0]),
            )
            out.append([text for _, text in parts])
        return out

    def reasons_json(self, X: pd.DataFrame | Coded) -> pd.api.extensions.ExtensionArray:
        """Per row, the rules' breakdown as one JSON array, largest |points| first (equal
        points in card order): ``[{"text": "industry software", "points": 18.75}, ...]``
        (points to 2 decimals; they add up to the row's rule score, to rounding).

        Vectorised for a batch: per card line, each distinct value (or activity count) of
        the rows it applies to is put in words once, into a small table of pieces; rows
        are then put in order (counted into rows, each row's few by rank) and assembled from the
        pieces (features/pieces.py), no Python step per lead.
        """
        X = coded(X)
        table: list[str] = []
        sizes: list[float] = []  # each piece's |points| (a piece is one line at one value)
        rows, ids = [], []
        for line in (line for line in self.card_lines() if line.points):
            amount = line.amount(X)
            hit = np.flatnonzero(amount)
            if not len(hit):
                continue
            points = np.round(line.points * amount[hit], 2)
            if line.column is not None:  # the same points at each value of the column
                codes, values = X.codes(line.column)
                codes = codes[hit]
            else:  # an activity: the points and the words follow the count
                codes, values = pd.factorize(amount[hit])
            distinct, first, local = np.unique(codes, return_index=True, return_inverse=True)
            rows.append(hit)
            ids.append(len(table) + local.ravel())
            for code, i in zip(distinct.tolist(), first.tolist(), strict=True):
                text = line.words(values[code] if code >= 0 else None, amount[hit[i]])
                table.append(json.dumps({"text": text, "points": points[i]}))
                sizes.append(abs(points[i]))
        groups = np.zeros(len(X) + 1, dtype=np.int64)
        pieces = Pieces()
        if not rows:
            return pd.array(join_rows(pieces, [(np.zeros(0), 0)], groups, "[", "", "]"), TEXT)
        # a row's pieces by |points| (largest first), then card order: one sort of one key
        rank = np.empty(len(table), dtype=np.int64)
        rank[np.lexsort((np.arange(len(table)), -np.asarray(sizes)))] = np.arange(len(table))
        groups, order = by_row(np.concatenate(rows), rank[np.concatenate(ids)], len(X))
        column = (np.argsort(rank)[order], pieces.add(table))
        return pd.array(join_rows(pieces, [column], groups, "[", ", ", "]"), TEXT)

    def card(self, X: pd.DataFrame, y: np.ndarray | None = None) -> pd.DataFrame:
        """The rules card on a frame: per line its kind, rule, points, how many rows it
        applies to (their share) and, given labels, their conversion rate."""
        rows = []
        labels = None if y is None else np.asarray(y, dtype=np.float64)
        for line in self.card_lines():
            hit = line.amount(X) > 0
            n = int(hit.sum())
            row: dict[str, object] = {
                "kind": KIND_WORDS[line.kind],
                "rule": line.attribute,
                "when": line.condition,
                "points": line.points,
                "leads": n,
                "share": n / len(X) if len(X) else float("nan"),
            }
            if labels is not None:
                row["conversion_rate"] = float(labels[hit].mean()) if n else float("nan")
            rows.append(row)
        columns = ["kind", "rule", "when", "points", "leads", "share"]
        return pd.DataFrame(rows, columns=[*columns, *(["conversion_rate"] * (y is not None))])

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> RuleScorer:
        self.classes_ = np.array([0, 1])
        if y is not None:
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            self.calibrator_.fit(self.points(X), np.asarray(y, dtype=np.float64))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Conversion rate observed at this many points in training (needs fit with y)."""
        p = self.calibrator_.predict(self.points(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
