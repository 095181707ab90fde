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

A suspect is a warning, never a refusal: ``leadscore init`` lists suspects under
``exclude:`` with the reason, ``leadscore train`` warns and records them. Vectorised, on
at most ``LeakageConfig.max_rows`` rows (a seeded sample): a million leads take seconds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from leadscore.features.config import LeakageConfig
from leadscore.features.separation import (
    binary_auc,
    either_way,
    equal_count_bins,
    rate_auc,
    roc_auc,
)

KINDS = ("alone_predicts", "missing_tracks_outcome", "after_close", "outcome_words")
"""What a suspect is suspected of, in the order suspects of equal strength are listed."""

LEAD_ID, STATUS, CREATED_AT, CLOSED_AT = "lead_id", "status", "created_at", "closed_at"
CONVERTED, LOST = "converted", "lost"
"""The contract's names (``features.contract``, not imported: it loads Great Expectations,
and ``leadscore init`` sniffs before anything is validated)."""
CONTRACT_COLUMNS = (LEAD_ID, STATUS, CREATED_AT, CLOSED_AT)
"""Never candidates: the lead's id, its outcome and its life-cycle dates."""

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
        return {**asdict(self), "strength": round(self.strength, 4)}


def _is_text(values: pd.Series) -> bool:
    dtype = values.dtype
    return not (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
    )


def _text(values: pd.Series) -> pd.Series:
    """Text values with blank cells as missing."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _as_dates(values: pd.Series, text: pd.Series | None) -> pd.Series | None:
    """The column as UTC timestamps when it holds dates (typed, or text that reads as
    dates in nine of ten cells); else None."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    if text is None:
        return None
    present = text.dropna()
    if present.empty:
        return None
    sample = present.sample(min(len(present), 200), random_state=0)
    if sample.str.match(_DATE_LIKE).mean() < 0.9:
        return None
    # one format for the whole column, inferred from its cells, day or month first, as
    # more cells read (26-02-2018 reads only day first; dateutil per cell would mix
    # them); a column of mixed formats read cell by cell only when no one format reads
    tries = [(None, False), (None, True), ("mixed", False), ("mixed", True)]
    with warnings.catch_warnings():  # "could not infer format", "dayfirst ignored": tried
        warnings.simplefilter("ignore", UserWarning)
        readings = [
            pd.to_datetime(text, errors="coerce", utc=True, format=f, dayfirst=d) for f, d in tries
        ]
    parsed = max(readings, key=lambda dates: int(dates.notna().sum()))
    return parsed if parsed.notna().sum() >= 0.9 * len(present) else None


def _alone_auc(codes: np.ndarray, numbers: np.ndarray | None, y: np.ndarray, seed: int) -> float:
    """The column's single-column ROC-AUC, either direction: a category (or a missing
    cell) by its out-of-fold conversion rate; a number also by its value."""
    by_rate = rate_auc(codes, y, seed)
    by_value = float("nan")
    if numbers is not None:
        present = ~np.isnan(numbers)
        by_value = either_way(roc_auc(numbers[present], y[present]))
    return float(np.nanmax([by_rate, by_value, 0.5]))


def _outcome_pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern of whole words; numbers and one-letter words are left
    out (an outcome coded 1/0 would match every count)."""
    kept = {w.strip().casefold() for w in words if len(w.strip()) > 1}
    kept = {w for w in kept if not re.fullmatch(r"[\d.,\s+-]+", w)}
    if not kept:
        return None
    longest_first = sorted(kept, key=lambda w: (-len(w), w))
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in longest_first)
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"


def _missing(name: str, null: np.ndarray, y: np.ndarray, config: LeakageConfig) -> Suspect | None:
    n_null = int(null.sum())
    if min(n_null, len(null) - n_null) < config.min_rows:
        return None
    strength = either_way(binary_auc(null, y))
    if not strength >= config.max_missing_auc:
        return None
    return Suspect(
        name,
        "missing_tracks_outcome",
        strength,
        f"is empty for {_percent(n_null / len(null))} of the training leads, and empty ones "
        f"convert at {_percent(float(y[null].mean()))} vs {_percent(float(y[~null].mean()))} "
        f"of the filled ones (ROC-AUC {strength:.2f}): likely filled in once the outcome "
        "was known",
    )


def _after_close(
    name: str, dates: pd.Series, closed_at: pd.Series, config: LeakageConfig
) -> Suspect | None:
    closed = pd.to_datetime(closed_at, utc=True)
    both = (dates.notna() & closed.notna()).to_numpy()
    if int(both.sum()) < config.min_rows:
        return None
    value, close = dates[both], closed[both]
    # at the values' own resolution: a date (or a minute) on the close's counts as after
    unit = next((u for u in ("D", "min", "s") if (value == value.dt.floor(u)).all()), None)
    after = value >= (close if unit is None else close.dt.floor(unit))
    share = float(after.mean())
    if share < config.max_after_close_share:
        return None
    day = " day" if unit == "D" else ""
    return Suspect(
        name,
        "after_close",
        share,
        f"holds a date on or after the lead's close{day} for {_percent(share)} of the "
        "training leads: recorded after the outcome",
    )


def _outcome_words(
    name: str,
    codes: np.ndarray,
    uniques: pd.Index,
    y: np.ndarray,
    pattern: re.Pattern[str],
    config: LeakageConfig,
) -> Suspect | None:
    """Rows are grouped by the outcome words their value names ('won', 'lost', none...);
    the groups' out-of-fold conversion rates must rank the leads (so a note saying
    "Closed Won" on some rows and "Closed Lost" on others is caught, while a lead source
    "Paid search" that converts like the rest is not)."""
    named = ["|".join(sorted({m.casefold() for m in pattern.findall(str(u))})) for u in uniques]
    key_codes, keys = pd.factorize(pd.Series(["", *named]))  # "" (no word, or empty) is 0
    if not len(uniques):
        return None
    row_key = key_codes[1:][np.maximum(codes, 0)]
    row_key[codes < 0] = 0
    n_hit = int((row_key != 0).sum())
    if n_hit < config.min_rows:
        return None
    strength = rate_auc(row_key, y, config.seed)
    if not strength >= config.min_words_auc:
        return None
    found = sorted({w for k in keys for w in str(k).split("|") if w})
    return Suspect(
        name,
        "outcome_words",
        strength,
        f"names an outcome ({', '.join(repr(w) for w in found[:4])}) in "
        f"{_percent(n_hit / len(codes))} of the training leads, and those words alone rank "
        f"converted leads at ROC-AUC {strength:.2f}: likely written after the outcome",
    )


def _name_hint(column: str, hints: Sequence[str]) -> str | None:
    """The first word of ``hints`` found among the column name's words (any case)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", column).casefold()
    words = set(re.findall(r"[^\W\d_]+", spaced))
    return next((h for h in hints if h.casefold() in words), None)


_ALSO = {
    "missing_tracks_outcome": "its empty cells track the outcome",
    "outcome_words": "its text names outcomes",
}


def _alone(
    name: str, auc: float, others: Sequence[Suspect], config: LeakageConfig
) -> Suspect | None:
    """Flag a column above ``max_auc``, or above ``max_auc_with_signal`` when another
    symptom, or a word of its name, points at it too."""
    if auc >= config.max_auc:
        why = ""
    elif auc < config.max_auc_with_signal:
        return None
    elif others:
        why = f", and {_ALSO[others[0].kind]}"
    elif hint := _name_hint(name, config.name_hints):
        why = f", and its name says '{hint}'"
    else:
        return None
    return Suspect(
        name,
        "alone_predicts",
        auc,
        f"alone ranks converted leads at ROC-AUC {auc:.2f} on the training rows{why}: "
        "likely filled in after the outcome",
    )


def _symptoms(
    name: str,
    values: pd.Series,
    y: np.ndarray,
    closed: pd.Series | None,
    pattern: re.Pattern[str] | None,
    config: LeakageConfig,
) -> list[Suspect]:
    """Every symptom one column shows; a column alone predicting the outcome is judged
    with the others (a weaker ROC-AUC counts when another symptom agrees)."""
    text = _text(values) if _is_text(values) else None
    dates = _as_dates(values, text)
    if dates is not None:
        found = [_missing(name, dates.isna().to_numpy(), y, config)]
        if closed is not None:
            found.append(_after_close(name, dates, closed, config))
        return [s for s in found if s is not None]
    numbers: np.ndarray | None = None
    if text is not None:
        codes, uniques = pd.factorize(text, use_na_sentinel=True)
        null = codes < 0
        found = [_missing(name, null, y, config)]
        if pattern is not None:
            found.append(_outcome_words(name, codes, uniques, y, pattern, config))
        codes = np.where(null, len(uniques), codes)  # missing: a category of its own
    else:
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        codes, null = equal_count_bins(numbers), np.isnan(numbers)
        found = [_missing(name, null, y, config)]
    found = [s for s in found if s is not None]
    auc = _alone_auc(codes, numbers, y, config.seed)
    alone = _alone(name, auc, found, config)
    return found if alone is None else [alone, *found]


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
    closed = None if closed_at is None else pd.Series(closed_at).reset_index(drop=True)
    rows = np.arange(len(frame))
    if len(frame) > config.max_rows:
        rng = np.random.default_rng(config.seed)
        rows = np.sort(rng.choice(len(frame), config.max_rows, replace=False))
        y = y[rows]
        closed = None if closed is None else closed.iloc[rows].reset_index(drop=True)
    pattern = _outcome_pattern([*config.words, *outcome_words])
    ignored = set(config.ignore)
    suspects: list[Suspect] = []
    for position, column in enumerate(frame.columns):
        if str(column) not in ignored:
            values = frame.iloc[rows, position].reset_index(drop=True)
            suspects += _symptoms(str(column), values, y, closed, pattern, config)
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
