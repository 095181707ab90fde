"""The leakage sniffer: columns likely filled in after the outcome, flagged before a model
learns from them.

A column a salesperson fills in after talking to the lead (a "Tags" note, a "Lead
Quality" judgement, the call's duration, a close value) makes a model look near perfect on
history and fail in production, where the column is still empty when the lead is scored.
Nothing in the data says so; four symptoms give such a column away, each measured on the
closed training leads only:

- ``alone_predicts``: the column alone ranks converted above lost leads implausibly well
  (single-column ROC-AUC, either direction; a category by its target rate computed out of
  fold, so an id-like column cannot flag itself by memorising its rows);
- ``missing_tracks_outcome``: the column is empty far more (or less) often among
  converted leads than among lost ones;
- ``after_close``: a date column whose values fall after the lead's ``closed_at`` for a
  large share of rows;
- ``outcome_words``: a text column whose values name an outcome (won, lost, closed, the
  outcome column's own values, ...), and those rows convert very differently.

A suspect is a warning, never a refusal: ``leadscore init`` lists the suspects under
``exclude:`` with the reason, ``leadscore train`` warns and records them. Pure and
vectorised: at most ``LeakageConfig.max_rows`` rows are read (a seeded sample), so a
million leads take seconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.config import LeakageConfig
from leadscore.features.contract import CLOSED_AT, CONVERTED, CREATED_AT, LEAD_ID, LOST, STATUS

KINDS = ("alone_predicts", "missing_tracks_outcome", "after_close", "outcome_words")
"""What a suspect is suspected of, in the order suspects of equal strength are listed."""

CONTRACT_COLUMNS = (LEAD_ID, STATUS, CREATED_AT, CLOSED_AT)
"""Never candidates: the lead's id, its outcome and its life-cycle dates."""

_FOLDS = 5
_PRIOR_ROWS = 20.0
"""Target encoding: a category's rate is shrunk towards the overall rate by this many rows."""
_NUMERIC_BINS = 20
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}.*)?\s*$")


@dataclass(frozen=True)
class Suspect:
    """One column suspected of leaking the outcome, and why, in words a user understands."""

    column: str
    kind: str
    """One of ``KINDS``."""
    strength: float
    """The measure the flag rests on: a ROC-AUC (0.5-1) or a share of rows (0-1)."""
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "kind": self.kind,
            "strength": round(self.strength, 4),
            "reason": self.reason,
        }


def roc_auc(score: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of ``score`` against 0/1 ``y`` (ties count half); NaN without both classes."""
    y = np.asarray(y, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _either_way(auc: float) -> float:
    return max(auc, 1.0 - auc) if np.isfinite(auc) else float("nan")


def out_of_fold_rate(codes: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Each row's category conversion rate learnt on the other folds (shrunk to the prior).

    ``codes`` are non-negative integer categories. A category seen only in the row's own
    fold (an id) gets the prior, so a column of unique values scores ROC-AUC 0.5.
    """
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    fold = np.random.default_rng(seed).integers(0, _FOLDS, len(codes))
    y = y.astype(float)
    total_n = np.bincount(codes, minlength=n_codes).astype(float)
    total_y = np.bincount(codes, weights=y, minlength=n_codes)
    prior = total_y.sum() / max(total_n.sum(), 1.0)  # one constant: ranks nothing
    out = np.empty(len(codes))
    for f in range(_FOLDS):
        inside = fold == f
        rest_n = total_n - np.bincount(codes[inside], minlength=n_codes)
        rest_y = total_y - np.bincount(codes[inside], weights=y[inside], minlength=n_codes)
        rate = (rest_y + _PRIOR_ROWS * prior) / (rest_n + _PRIOR_ROWS)
        out[inside] = rate[codes[inside]]
    return out


def _text(values: pd.Series) -> pd.Series:
    """Text values with blank cells as missing."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _as_dates(values: pd.Series) -> pd.Series | None:
    """The column as UTC timestamps when it holds dates (typed, or text that reads as
    dates in nine of ten sampled cells); else None."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    if not _is_text(values):
        return None
    present = _text(values).dropna()
    if present.empty:
        return None
    sample = present.sample(min(len(present), 200), random_state=0)
    if sample.str.match(_DATE_LIKE).mean() < 0.9:
        return None
    parsed = pd.to_datetime(values.astype("string"), errors="coerce", utc=True, format="mixed")
    return parsed if parsed.notna().sum() >= 0.9 * len(present) else None


def _is_text(values: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(values.dtype)
        or pd.api.types.is_string_dtype(values.dtype)
        or isinstance(values.dtype, pd.CategoricalDtype)
    )


def _numeric(values: pd.Series) -> pd.Series | None:
    """The column as floats when it is numbers (bools as 0/1); else None."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float)
    return None


def _alone_auc(values: pd.Series, numbers: pd.Series | None, y: np.ndarray, seed: int) -> float:
    """The column's single-column ROC-AUC, either direction: a number by its value (and
    by its bin's out-of-fold rate, for ranges that convert out of order), a category by
    its out-of-fold rate; a missing cell is a category of its own."""
    if numbers is not None:
        present = numbers.notna().to_numpy()
        by_value = _either_way(roc_auc(numbers.to_numpy()[present], y[present]))
        ranked = numbers.rank(method="dense")
        bins = np.ceil(ranked / max(ranked.max(), 1.0) * _NUMERIC_BINS).fillna(0)
        codes = bins.to_numpy(dtype=np.int64)
    else:
        codes, _ = pd.factorize(_text(values), use_na_sentinel=True)
        codes = np.where(codes < 0, codes.max() + 1 if len(codes) else 0, codes)
        by_value = float("nan")
    by_rate = _either_way(roc_auc(out_of_fold_rate(codes, y, seed), y))
    return float(np.nanmax([by_value, by_rate, 0.5]))


def _rates(flag: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Conversion rate of the flagged rows and of the others."""
    return float(y[flag].mean()), float(y[~flag].mean())


def _outcome_pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern of whole words; numbers and one-letter words are left
    out (an outcome coded 1/0 would match every count)."""
    kept = sorted({w.strip().casefold() for w in words if len(w.strip()) > 1}, key=len)
    kept = [w for w in kept if not re.fullmatch(r"[\d.,\s-]+", w)]
    if not kept:
        return None
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in reversed(kept))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"


def _missing(
    column: str, values: pd.Series, y: np.ndarray, config: LeakageConfig
) -> Suspect | None:
    null = (_text(values).isna() if _is_text(values) else values.isna()).to_numpy()
    n_null = int(null.sum())
    if min(n_null, len(null) - n_null) < config.min_rows:
        return None
    strength = _either_way(roc_auc(null.astype(float), y))
    if not strength >= config.max_missing_auc:
        return None
    with_null, with_value = _rates(null, y)
    return Suspect(
        column,
        "missing_tracks_outcome",
        strength,
        f"empty in {_percent(n_null / len(null))} of the training leads, and empty ones "
        f"convert at {_percent(with_null)} vs {_percent(with_value)} of the filled ones "
        f"(ROC-AUC {strength:.2f}): likely filled in once the outcome was known",
    )


def _after_close(
    column: str, dates: pd.Series, closed_at: pd.Series, config: LeakageConfig
) -> Suspect | None:
    closed = pd.to_datetime(closed_at, utc=True)
    both = (dates.notna() & closed.notna()).to_numpy()
    if int(both.sum()) < config.min_rows:
        return None
    value, close = dates[both], closed[both]
    date_only = bool((value == value.dt.normalize()).all())
    after = (value.dt.normalize() >= close.dt.normalize()) if date_only else (value > close)
    share = float(after.mean())
    if share < config.max_after_close_share:
        return None
    return Suspect(
        column,
        "after_close",
        share,
        f"{_percent(share)} of its dates fall after the lead closed"
        f"{' (or on the day)' if date_only else ''}: recorded after the outcome",
    )


def _outcome_words(
    column: str,
    values: pd.Series,
    y: np.ndarray,
    pattern: re.Pattern[str],
    config: LeakageConfig,
    seed: int,
) -> Suspect | None:
    """Rows are grouped by the outcome words their value names ('won', 'lost', none...);
    the groups' out-of-fold conversion rates must rank the leads (so a note saying
    "Closed Won" on some rows and "Closed Lost" on others is caught, while a lead source
    "Paid search" that converts like the rest is not)."""
    codes, uniques = pd.factorize(_text(values), use_na_sentinel=True)
    if not len(uniques):
        return None
    named = ["|".join(sorted({m.casefold() for m in pattern.findall(str(u))})) for u in uniques]
    key_codes, keys = pd.factorize(pd.Series(["", *named]))
    row_key = np.where(codes >= 0, key_codes[1:][np.maximum(codes, 0)], key_codes[0])
    hit = row_key != key_codes[0]
    n_hit = int(hit.sum())
    if n_hit < config.min_rows:
        return None
    strength = _either_way(roc_auc(out_of_fold_rate(row_key, y, seed), y))
    if not strength >= config.min_words_auc:
        return None
    found = sorted({w for k in keys for w in str(k).split("|") if w})
    return Suspect(
        column,
        "outcome_words",
        strength,
        f"{_percent(n_hit / len(hit))} of its values name an outcome "
        f"({', '.join(repr(w) for w in found[:4])}), and the words alone rank converted "
        f"leads at ROC-AUC {strength:.2f}: likely written after the outcome",
    )


def _alone(
    column: str, auc: float, others: Sequence[Suspect], config: LeakageConfig
) -> Suspect | None:
    """Flag a column above ``max_auc``, or above ``max_auc_with_signal`` when another
    symptom (or a name that says so) points at it too."""
    if not np.isfinite(auc):
        return None
    hinted = bool(others) or _named_after_outcome(column, config.name_hints)
    if auc < config.max_auc and not (hinted and auc >= config.max_auc_with_signal):
        return None
    why = (
        ""
        if auc >= config.max_auc
        else " and "
        + (f"it is also {others[0].kind.replace('_', ' ')}" if others else "its name says so")
    )
    return Suspect(
        column,
        "alone_predicts",
        auc,
        f"alone ranks converted leads at ROC-AUC {auc:.2f} on the training rows{why}: "
        "likely filled in after the outcome",
    )


def _named_after_outcome(column: str, hints: Sequence[str]) -> bool:
    words = set(re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", column).lower()))
    return any(h.casefold() in words for h in hints)


def sniff(
    frame: pd.DataFrame,
    converted: pd.Series | np.ndarray,
    *,
    closed_at: pd.Series | None = None,
    outcome_words: Sequence[str] = (),
    config: LeakageConfig | None = None,
) -> list[Suspect]:
    """The columns of ``frame`` suspected of leaking the outcome, strongest first.

    ``frame``: the closed leads' candidate columns (no id, status or outcome column);
    ``converted``: 0/1 per row; ``closed_at``: when each lead closed (aligned by position),
    for the ``after_close`` check; ``outcome_words``: the outcome column's values, added to
    ``config.words``. Columns in ``config.ignore`` are not examined. A column may be
    suspected of more than one thing (one suspect per kind).
    """
    config = config or LeakageConfig()
    y = np.asarray(converted, dtype=float)
    if len(y) != len(frame):
        raise ValueError(f"converted has {len(y)} rows, the frame {len(frame)}")
    if not config.enabled or len(frame) == 0 or y.min() == y.max():
        return []
    frame = frame.reset_index(drop=True)
    closed = None if closed_at is None else pd.Series(closed_at).reset_index(drop=True)
    if len(frame) > config.max_rows:
        rows = np.sort(
            np.random.default_rng(config.seed).choice(len(frame), config.max_rows, False)
        )
        frame, y = frame.iloc[rows].reset_index(drop=True), y[rows]
        closed = None if closed is None else closed.iloc[rows].reset_index(drop=True)
    pattern = _outcome_pattern([*config.words, *outcome_words])
    ignored = set(config.ignore)
    suspects: list[Suspect] = []
    for position, column in enumerate(frame.columns):
        if str(column) in ignored:
            continue
        values = frame.iloc[:, position]
        found: list[Suspect] = []
        dates = _as_dates(values)
        if dates is not None:
            if closed is not None:
                found.append(_after_close(str(column), dates, closed, config))
            found.append(_missing(str(column), dates, y, config))
        else:
            found.append(_missing(str(column), values, y, config))
            if pattern is not None and _is_text(values):
                found.append(_outcome_words(str(column), values, y, pattern, config, config.seed))
        others = [s for s in found if s is not None]
        if dates is None:
            auc = _alone_auc(values, _numeric(values), y, config.seed + position)
            others.insert(0, _alone(str(column), auc, others, config))
        suspects += [s for s in others if s is not None]
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(suspects, key=lambda s: (-s.strength, order[s.kind], s.column))


def warning_lines(suspects: Sequence[Suspect]) -> list[str]:
    """One line per suspect, as ``train`` prints them and the report lists them."""
    return [f"possible leak: column '{s.column}' {s.reason}" for s in suspects]


def sniff_leads(
    leads: pd.DataFrame,
    *,
    lead_ids: pd.Series | np.ndarray | None = None,
    known_by: pd.Timestamp | None = None,
    skip: Sequence[str] = (),
    outcome_words: Sequence[str] = (),
    config: LeakageConfig | None = None,
) -> list[Suspect]:
    """The sniffer on a leads frame in the contract's names (``status``, ``closed_at``).

    It reads the closed leads only, among ``lead_ids`` when given (a training run: its
    training examples' leads) and, when ``known_by`` is a time, those closed by then (an
    outcome known only in the validation window is not learnt from, so not sniffed
    either). Every column but the contract's id, status and dates and ``skip`` (the
    outcome column) is a candidate: the model's attributes and the export's other columns.
    """
    status = leads[STATUS]
    keep = status.isin([CONVERTED, LOST])
    if lead_ids is not None:
        keep &= leads[LEAD_ID].isin(pd.Series(lead_ids).unique())
    has_close = CLOSED_AT in leads.columns and leads[CLOSED_AT].notna().any()
    if has_close and known_by is not None and pd.notna(known_by):
        keep &= ~(leads[CLOSED_AT] > known_by)
    closed = leads[keep.to_numpy()]
    dropped = [c for c in (*CONTRACT_COLUMNS, *skip) if c in closed.columns]
    return sniff(
        closed.drop(columns=dropped),
        (closed[STATUS] == CONVERTED).to_numpy(dtype=int),
        closed_at=closed[CLOSED_AT] if has_close else None,
        outcome_words=outcome_words,
        config=config,
    )
