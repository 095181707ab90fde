"""Profile the tables beside a leads export: an activity log and an outcomes table.

``leadscore init --activities FILE`` finds, in a sample of the log, the column holding
the lead id (the one whose values are the export's ids), the activity type and the time
of each row, and gives every type found a starting number of rule points from a table
of well-known names (a demo request is worth more than an email open; an unsubscribe
counts against). ``--outcomes FILE`` (deals, opportunities) finds its key the same way,
its closing date and its status column, if any. Pure: frames in, proposals out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from leadscore.features.hygiene import id_keys
from leadscore.features.profile import (
    OUTCOME_NAMES,
    STATUS_NAMES,
    Decision,
    Outcome,
    hinted,
    outcome_values,
)
from leadscore.features.profile_dates import DateGuess, date_guess, is_text

MAX_TYPES = 40
"""Activity types declared at most (the most frequent); rarer ones count as 'other'."""

STARTING_POINTS: tuple[tuple[str, str, str, float, bool], ...] = (
    # (pattern in the type's name, label, family, points, high intent); first match wins
    (r"demo", "demo request", "sales", 15, True),
    (r"meeting|call_?booked|appointment", "meeting booked", "sales", 10, True),
    (r"unsub|opt_?out", "unsubscribe", "email", -5, False),
    (r"bounce|spam", "email bounce", "email", -3, False),
    (r"pricing", "pricing-page view", "web", 5, True),
    (r"webinar.*(attend|join)|attend", "webinar attended", "event", 10, True),
    (r"webinar|event|register", "event sign-up", "event", 8, False),
    (r"form|contact_?us|submit|trial|signup|sign_up", "form submission", "web", 6, True),
    (r"download|whitepaper|ebook", "content download", "web", 4, False),
    (r"click", "email click", "email", 3, False),
    (r"open", "email open", "email", 1, False),
    (r"page|visit|view|web", "page view", "web", 1, False),
    (r"email|mail", "email", "email", 1, False),
)
"""Starting points of well-known activity types; an unknown type starts at 1."""

_LEAD_KEY_HINTS = ("lead_id", "lead", "id", "contact_id", "prospect_id", "mql_id", "key")
_TYPE_HINTS = ("type", "activity", "activity_type", "event", "action", "kind", "name")
_VALUE_HINTS = ("value", "amount", "score", "duration", "seconds", "count")
_WHEN_HINTS = ("occurred", "date", "time", "timestamp", "at", "when", "created")
_CLOSED_HINTS = ("won", "closed", "close", "date", "at", "lost")


@dataclass(frozen=True)
class ActivityTypeGuess:
    """A type as found in the log, with its starting label, family and points."""

    name: str
    label: str
    family: str
    points: float
    high_intent: bool
    rows: int
    known: bool


@dataclass
class ActivitiesProposal:
    """Which columns of the log are the lead, the type, the time and the value."""

    lead_key: str | None = None
    activity_type: str | None = None
    occurred_at: str | None = None
    date_format: str | None = None
    value: str | None = None
    types: list[ActivityTypeGuess] = field(default_factory=list)
    other_types: int = 0
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class OutcomesProposal:
    """The outcomes table's key, closing date, status mapping (None: every row is a
    conversion) and what to do with a lead named twice."""

    key: str | None = None
    closed_at: str | None = None
    date_format: str | None = None
    status: Outcome | None = None
    duplicates: str = "refuse"
    decisions: list[Decision] = field(default_factory=list)


def starting_type(name: str, rows: int) -> ActivityTypeGuess:
    """A type's starting label, family and points, from its name (1 point if unknown)."""
    key = re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
    for pattern, label, family, points, high in STARTING_POINTS:
        if re.search(pattern, key):
            return ActivityTypeGuess(str(name), label, family, points, high, rows, True)
    label = key.replace("_", " ") or str(name)
    return ActivityTypeGuess(str(name), label, "other", 1, False, rows, False)


def _keys(values: pd.Series) -> pd.Series:
    text = values.dropna().astype("str").str.strip()
    return id_keys(text.astype("string"))


def key_guess(frame: pd.DataFrame, lead_ids: pd.Series | None) -> tuple[str | None, str]:
    """The column whose values are the export's lead ids (most of them found there)."""
    if lead_ids is None or lead_ids.empty:
        names = [c for c in frame.columns if hinted(c, _LEAD_KEY_HINTS)]
        if names:
            return names[0], "named like a lead id (the export has no id column to compare)"
        return None, "no column is named like a lead id and the export has no id column"
    known = set(_keys(lead_ids))
    best, best_share = None, 0.0
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            continue
        keys = _keys(frame[column])
        share = float(keys.isin(known).mean()) if len(keys) else 0.0
        if share > best_share:
            best, best_share = column, share
    if best is None or best_share < 0.5:
        return None, "no column holds the export's lead ids"
    return best, f"{best_share:.0%} of its values are lead ids of the export"


def _pick(frame: pd.DataFrame, columns: list[str], hints: tuple[str, ...]) -> str | None:
    named = [c for c in columns if hinted(c, hints)]
    return (named or columns or [None])[0]


def _key_and_date(
    frame: pd.DataFrame,
    lead_ids: pd.Series | None,
    decide: Callable[[Decision], None],
    roles: tuple[str, str],
    hints: Sequence[str],
    no_date: str,
) -> tuple[str | None, list[str], dict[str, DateGuess], str | None, str | None]:
    """A second table's lead key and its date column, each decision said: (key, the other
    columns, their date guesses, the chosen date column, its format)."""
    key, why = key_guess(frame, lead_ids)
    decide(Decision(key or "(none)", roles[0], why))
    rest = [c for c in frame.columns if c != key]
    dates = {c: g for c in rest if (g := date_guess(frame[c])) is not None}
    chosen = _pick(frame, list(dates), hints)
    if chosen is None:
        decide(Decision("(none)", roles[1], no_date))
        return key, rest, dates, None, None
    guess = dates[chosen]
    fmt = f" ({guess.date_format})" if guess.date_format else ""
    decide(Decision(chosen, roles[1], guess.why + fmt))
    return key, rest, dates, chosen, guess.date_format


def profile_activities(frame: pd.DataFrame, lead_ids: pd.Series | None) -> ActivitiesProposal:
    """Propose the log's lead key, type, time and value columns and its activity types."""
    proposal = ActivitiesProposal()
    decide = proposal.decisions.append
    proposal.lead_key, rest, dates, proposal.occurred_at, proposal.date_format = _key_and_date(
        frame,
        lead_ids,
        decide,
        ("activity lead id", "occurred at"),
        _WHEN_HINTS,
        "no timestamp column found: map one",
    )
    texts = [
        c
        for c in rest
        if c not in dates and is_text(frame[c]) and 1 < frame[c].nunique() <= 5 * MAX_TYPES
    ]
    named = [c for c in texts if hinted(c, _TYPE_HINTS)]
    by_count = sorted(texts, key=lambda c: frame[c].nunique())
    proposal.activity_type = (named or by_count or [None])[0]
    if proposal.activity_type is None:
        decide(Decision("(none)", "activity type", "no text column of types found: map one"))
        return proposal
    counts = frame[proposal.activity_type].dropna().astype("str").str.strip().value_counts()
    proposal.types = [starting_type(t, int(n)) for t, n in counts.head(MAX_TYPES).items()]
    proposal.other_types = max(0, len(counts) - MAX_TYPES)
    decide(
        Decision(
            proposal.activity_type,
            "activity type",
            f"{len(counts)} types, {sum(t.known for t in proposal.types)} with well-known "
            "names (starting points to edit)",
        )
    )
    numbers = [
        c
        for c in rest
        if c not in dates and c != proposal.activity_type and hinted(c, _VALUE_HINTS)
    ]
    numbers = [c for c in numbers if pd.api.types.is_numeric_dtype(frame[c])]
    if numbers:
        proposal.value = numbers[0]
        decide(Decision(proposal.value, "activity value", "numbers, named like a value"))
    return proposal


def profile_outcomes(frame: pd.DataFrame, lead_ids: pd.Series | None) -> OutcomesProposal:
    """Propose the outcomes table's key, closing date and status mapping."""
    proposal = OutcomesProposal()
    decide = proposal.decisions.append
    proposal.key, rest, dates, proposal.closed_at, proposal.date_format = _key_and_date(
        frame,
        lead_ids,
        decide,
        ("outcomes key", "outcome closed at"),
        _CLOSED_HINTS,
        "no date column: outcomes undated",
    )
    for column in rest:
        if column in dates or not hinted(column, (*OUTCOME_NAMES, *STATUS_NAMES)):
            continue
        found = outcome_values(frame[column])
        if found is not None:
            proposal.status = Outcome(column, found.converted, found.lost, found.open)
            shown = "/".join(str(v) for v in found.converted)
            decide(Decision(column, "outcome status", f"{shown} = converted"))
            break
    else:
        decide(Decision("(rows)", "outcome status", "no status column: every row is a conversion"))
    if proposal.key is not None and frame[proposal.key].dropna().duplicated().any():
        proposal.duplicates = "first"
        n = int(frame[proposal.key].dropna().duplicated().sum())
        decide(Decision(proposal.key, "duplicates: first", f"{n} leads named twice or more"))
    return proposal


def converted_flags(frame: pd.DataFrame, outcome: Outcome) -> tuple[pd.Series, pd.Series]:
    """Which rows are closed (converted or lost) and which of those converted, by the
    outcome's values compared as lower-case text (what the reader does)."""
    text = frame[outcome.column].astype("string").str.strip().str.lower()

    def keys(values: Sequence[object]) -> set[str]:
        return {str(v).strip().lower() for v in values}

    converted = text.isin(keys(outcome.converted)).fillna(False).astype(bool)
    lost = text.isin(keys(outcome.lost)).fillna(False).astype(bool)
    return converted | lost, converted
