"""Profile a sample of a lead export: what each column is, and why (``leadscore init``).

A new user's export has an id column (or none), dates written one way or another, an
outcome column in its own words ("y" = yes/no, 0/1 ``Converted``, "Closed Won"), profile
attributes, identifiers and free text. ``profile_leads`` reads a sample frame and
proposes a role for every column with the reason, so ``leadscore init`` can write a
starting config and print what it decided. Pure: frames in, a typed proposal out; the
config text is written by ``pipelines.init_config``. Every guess is a starting point the
user edits, and each says what it rests on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.features.contract import CLOSED_AT, CREATED_AT, LEAD_ID, OWNER, SEGMENT, STATUS
from leadscore.features.profile_dates import date_guess, text_values

MAX_CATEGORIES = 100
"""More distinct text values than this: not a category (free text or identifiers)."""

MAX_EMPTY_SHARE = 0.9
"""An attribute emptier than this is left out (validation stops at 0.95 by default)."""

PERIOD_RUN_ROWS = 20
"""A period column (month, weekday...) whose values come in runs this long on average
says the rows are in time order."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

CONVERTED_WORDS = ("yes", "y", "true", "t", "1", "won", "closed won", "converted", "success")
LOST_WORDS = ("no", "n", "false", "f", "0", "lost", "closed lost", "failure", "disqualified")
OUTCOME_NAMES = ("y", "target", "label", "converted", "conversion", "outcome", "won", "is_won")
STATUS_NAMES = ("status", "stage", "lead_status", "lead_stage", "result", "deal_stage")
_ID_HINTS = ("id", "key", "number", "uuid", "guid", "code", "no")
_CREATED_HINTS = ("created", "create", "first_contact", "signup", "sign_up", "registered",
                  "added", "lead_date", "inquiry", "start", "opened")  # fmt: skip
_CLOSED_HINTS = ("closed", "close", "won", "lost", "converted_at", "conversion", "end", "deal")
_PERIOD_NAMES = ("month", "day_of_week", "weekday", "week", "quarter", "year", "period", "day")
_ENGAGEMENT_HINTS = ("visit", "view", "click", "open", "time_spent", "session", "activity",
                     "campaign", "previous", "calls", "emails", "pages", "download")  # fmt: skip
SENSITIVE_HINTS = ("gender", "sex", "age", "race", "ethnic", "religion", "marital",
                   "nationality", "disability", "pregnan", "birth")  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """One line of what init decided: a column (user's name), its role and why."""

    column: str
    role: str
    why: str


@dataclass(frozen=True)
class Outcome:
    """The outcome column and which of its values mean converted, lost and open."""

    column: str
    converted: tuple[object, ...]
    lost: tuple[object, ...]
    open: tuple[object, ...] = ()


@dataclass
class LeadsProposal:
    """What the leads export holds, column by column; names are the user's."""

    rows: int
    id_column: str | None = None
    created_at: str | None = None
    closed_at: str | None = None
    date_format: str | None = None
    outcome: Outcome | None = None
    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    engagement: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    sensitive_hints: list[str] = field(default_factory=list)
    order: str = "none"
    order_why: str = ""
    decisions: list[Decision] = field(default_factory=list)

    @property
    def rename(self) -> dict[str, str]:
        """User column -> the name the config uses: contract names for the id and dates,
        plain identifiers for names with blanks or dots (``emp.var.rate``)."""
        mapping = {c: plain_name(c) for c in [*self.categorical, *self.numeric]}
        mapping = {k: v for k, v in mapping.items() if k != v}
        roles = {self.id_column: LEAD_ID, self.created_at: CREATED_AT, self.closed_at: CLOSED_AT}
        mapping |= {k: v for k, v in roles.items() if k is not None and k != v}
        if self.outcome is not None and plain_name(self.outcome.column) != self.outcome.column:
            mapping[self.outcome.column] = plain_name(self.outcome.column)
        return mapping


def plain_name(column: str) -> str:
    """A column name usable everywhere (features, reasons, YAML keys): ``Lead Origin`` ->
    ``lead_origin``; names already plain are kept as they are."""
    if _IDENTIFIER.match(column):
        return column
    name = re.sub(r"[^0-9a-zA-Z]+", "_", column.strip()).strip("_").lower()
    return name if name and not name[0].isdigit() else f"c_{name}"


def _words(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def hinted(name: str, hints: Sequence[str]) -> bool:
    words = _words(name)
    parts = set(words.split("_"))
    return any(h == words or h in parts or ("_" in h and h in words) for h in hints)


def outcome_values(values: pd.Series) -> Outcome | None:
    """Which values of a column mean converted and lost (case-insensitive), or None."""
    distinct = list(pd.unique(values.dropna()))
    if not 2 <= len(distinct) <= 12:
        return None
    converted = [v for v in distinct if value_key(v) in CONVERTED_WORDS]
    lost = [v for v in distinct if value_key(v) in LOST_WORDS]
    if len(distinct) == 2 and converted and lost:
        return Outcome("", tuple(converted), tuple(lost))
    words = {v: str(v).strip().lower() for v in distinct}
    converted = [v for v, w in words.items() if re.search(r"\bwon\b|convert|customer", w)]
    lost = [v for v, w in words.items() if re.search(r"\blost\b|disqualif|unqualif|junk|dead", w)]
    if not converted or not lost:
        return None
    rest = [v for v in distinct if v not in converted and v not in lost]
    return Outcome("", tuple(converted), tuple(lost), tuple(rest))


def value_key(value: object) -> str:
    """A value as the reader compares it: lower-case text, ``1.0`` read as ``1``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip().lower()


def outcome_guess(frame: pd.DataFrame) -> tuple[Outcome | None, str]:
    """The outcome column: a name that says so (y, Converted, Status...) whose values read
    as converted / lost; else the last two-valued yes/no, true/false or 1/0 column."""
    named, fallback = [], []
    for column in frame.columns:
        found = outcome_values(frame[column])
        if found is None:
            continue
        found = Outcome(column, found.converted, found.lost, found.open)
        if hinted(column, OUTCOME_NAMES) or hinted(column, STATUS_NAMES):
            named.append(found)
        elif not found.open:
            fallback.append(found)
    if named:
        best = named[0]
        share = frame[best.column].isin(best.converted).mean()
        why = f"named like an outcome; {_shown(best.converted)} = converted ({share:.1%})"
        return best, why
    if fallback:
        best = fallback[-1]
        why = (
            f"no column is named like an outcome: the last two-valued column, "
            f"{_shown(best.converted)} = converted; check it"
        )
        return best, why
    return None, "no outcome column found: set data.outcome (or give --outcomes)"


def _shown(values: Sequence[object]) -> str:
    return "/".join(str(v) for v in values)


def id_guess(frame: pd.DataFrame) -> tuple[str | None, str]:
    """The lead id: unique and never empty in the sample, text or integers, named like an
    id when several qualify."""
    candidates = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_datetime64_any_dtype(values) or values.isna().any():
            continue
        text = values.astype("str").str.strip()
        if text.eq("").any() or text.duplicated().any():
            continue
        candidates.append(column)
    if not candidates:
        return None, "no column is unique and never empty: rows are numbered"
    named = [c for c in candidates if hinted(c, _ID_HINTS)]
    chosen = (named or candidates)[0]
    why = f"unique and never empty in {len(frame):,} rows"
    return chosen, why + ("" if named else " (not named like an id: check it)")


def _role(values: pd.Series, column: str) -> tuple[str, str]:
    """categorical | numeric | left out, and why."""
    n = len(values)
    empty = float(values.isna().mean()) if n else 1.0
    if empty > MAX_EMPTY_SHARE:
        return "left out", f"{empty:.0%} empty"
    distinct = values.nunique(dropna=True)
    if distinct <= 1:
        return "left out", "one value only"
    if pd.api.types.is_bool_dtype(values):
        return "categorical", "true/false"
    if pd.api.types.is_numeric_dtype(values):
        integers = pd.api.types.is_integer_dtype(values)
        if integers and distinct == values.notna().sum() and hinted(column, _ID_HINTS):
            return "left out", "an identifier (unique numbers)"
        return "numeric", f"numbers, {distinct:,} distinct values"
    text = text_values(values)
    if distinct <= MAX_CATEGORIES:
        return "categorical", f"text, {distinct} distinct values"
    if text.str.contains(" ").mean() > 0.5:
        return "left out", f"free text ({distinct:,} distinct values)"
    if hinted(column, _ID_HINTS) or distinct > 0.5 * len(text):
        return "left out", f"an identifier ({distinct:,} distinct codes)"
    return "left out", f"{distinct:,} distinct values: too many for a category; group them"


def period_columns(frame: pd.DataFrame) -> list[str]:
    """Columns named like a period (month, weekday...) whose values come in long runs:
    the rows are in time order, and a run of equal values is one period."""
    found = []
    for column in frame.columns:
        values = frame[column]
        if not hinted(column, _PERIOD_NAMES) or len(values) < 2 or values.nunique() < 2:
            continue
        runs = int((values != values.shift()).sum())
        if len(values) / runs >= PERIOD_RUN_ROWS:
            found.append(column)
    return found


def order_guess(frame: pd.DataFrame, created_at: str | None) -> tuple[str, str]:
    """The split: by created_at if there is one; by row order if the file looks time-
    ordered (a period column in long runs, a sequence number rising); else at random."""
    if created_at is not None:
        why = "the newest leads validate; training ends one horizon before them"
        return "time", f"out of time by {created_at} ({why})"
    n = len(frame)
    for column in period_columns(frame)[:1]:
        runs = int((frame[column] != frame[column].shift()).sum())
        return "rows", (
            f"rows look time-ordered: {column} comes in {runs} runs of "
            f"~{n // runs} rows; the last rows validate"
        )
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_integer_dtype(values) or values.nunique() < 0.99 * n or n < 10:
            continue
        steps = np.sign(np.diff(values.to_numpy(dtype="float64")))
        if (steps > 0).mean() >= 0.99:
            return "rows", f"rows look time-ordered: {column} rises down the file"
        if (steps < 0).mean() >= 0.99:
            return "none", (
                f"{column} falls down the file (newest first?): random split; sort the file "
                f"by {column} ascending and set order: rows for an out-of-time check"
            )
    return "none", "no dates and no sign of time order: stratified random split"


def _date_role(column: str) -> str | None:
    if hinted(column, _CREATED_HINTS):
        return CREATED_AT
    if hinted(column, _CLOSED_HINTS):
        return CLOSED_AT
    return None


def _is_contract_status(frame: pd.DataFrame, outcome: Outcome) -> bool:
    values = set(frame[outcome.column].dropna().astype("str"))
    return outcome.column == STATUS and values <= {"open", "converted", "lost"}


def profile_leads(frame: pd.DataFrame, *, outcome_elsewhere: bool = False) -> LeadsProposal:
    """Propose a role for every column of a leads sample, each with its reason.

    ``outcome_elsewhere``: the outcome comes from another table (``--outcomes``), so no
    column of this one is taken as the outcome.
    """
    proposal = LeadsProposal(rows=len(frame))
    decide = proposal.decisions.append
    columns = list(frame.columns)
    proposal.id_column, why = id_guess(frame)
    decide(Decision(proposal.id_column or "(none)", "lead id", why))
    taken = {proposal.id_column}
    dates = {c: g for c in columns if c not in taken and (g := date_guess(frame[c])) is not None}
    for column in dates:
        role = _date_role(column)
        if role == CREATED_AT and proposal.created_at is None:
            proposal.created_at = column
        elif role == CLOSED_AT and proposal.closed_at is None:
            proposal.closed_at = column
    if proposal.created_at is None and len(dates) == 1 and proposal.closed_at is None:
        proposal.created_at = next(iter(dates))
    for column, guess in dates.items():
        role = {proposal.created_at: CREATED_AT, proposal.closed_at: CLOSED_AT}.get(column)
        if role is None:
            proposal.left_out[column] = "a date, not the lead's creation or close"
            continue
        fmt = f" ({guess.date_format})" if guess.date_format else ""
        decide(Decision(column, role, guess.why + fmt))
    formats = {dates[c].date_format for c in (proposal.created_at, proposal.closed_at) if c}
    proposal.date_format = next((f for f in formats if f), None)
    taken |= set(dates)
    if not outcome_elsewhere:
        rest = frame[[c for c in columns if c not in taken]]
        proposal.outcome, why = outcome_guess(rest)
        if proposal.outcome is not None and _is_contract_status(rest, proposal.outcome):
            proposal.outcome, why = None, "status: already open / converted / lost"
        shown = proposal.outcome.column if proposal.outcome else "(none)"
        decide(Decision(STATUS if "already" in why else shown, "outcome", why))
        if proposal.outcome is not None or "already" in why:
            taken.add(proposal.outcome.column if proposal.outcome else STATUS)
    for column in columns:
        if column in taken:
            continue
        if plain_name(column) in (OWNER, SEGMENT, LEAD_ID, CREATED_AT, CLOSED_AT):
            decide(Decision(column, "kept", "a contract column, read as itself"))
            continue
        role, why = _role(frame[column], column)
        if role == "categorical":
            proposal.categorical.append(column)
        elif role == "numeric":
            proposal.numeric.append(column)
        else:
            proposal.left_out[column] = why
            continue
        if hinted(column, _ENGAGEMENT_HINTS):
            proposal.engagement.append(column)
            why += "; behaviour already aggregated (engagement)"
        if hinted(column, SENSITIVE_HINTS):
            proposal.sensitive_hints.append(column)
        decide(Decision(column, role, why))
    for column, why in proposal.left_out.items():
        decide(Decision(column, "left out", why))
    proposal.order, proposal.order_why = order_guess(frame, proposal.created_at)
    decide(Decision("(rows)", f"order: {proposal.order}", proposal.order_why))
    return proposal
