"""Who may take which lead: eligibility keys, rep masks, owners, and reasons in words.

Leads are grouped by their *eligibility key* (territory, skill, language values and the
seniority their grade needs): every lead of a key can be taken by exactly the same reps,
so eligibility is decided once per key, never per lead (1M leads have a few hundred keys).

Matching (docs/routing.md): values are compared trimmed and case-insensitively; a rep's
empty list means "any value"; a lead with no value (null) in a configured column matches
only reps with an empty list for it (generalists); a column that is not configured
(``routing.territory: null``) is no rule at all. Seniority: a rep may take a lead when
``rep.seniority >= routing.min_seniority[grade]`` (``SENIORITY_ORDER``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.models.routing.config import SENIORITY_ORDER, Rep, RoutingConfig

RULE_COLUMNS: tuple[str, ...] = ("territory", "skill", "language")
"""The pool's routing columns, in the order reasons name them."""


def folded(values: pd.Series) -> pd.Series:
    """Trimmed, case-folded text; None where missing or blank."""
    text = values.astype("string").str.strip().str.casefold()
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    out = text.astype(object)
    out[missing] = None
    return out


def _fold(value: str) -> str:
    return value.strip().casefold()


@dataclass(frozen=True)
class Keys:
    """The pool's eligibility keys: ``key`` (one int per lead) indexes ``table``'s rows.

    ``table`` has, per key, the folded ``territory`` / ``skill`` / ``language`` value
    (None: missing), ``level`` (index in SENIORITY_ORDER the grade needs), ``grade``,
    and ``shown_*``: the value as written by the key's first lead (for reasons).
    """

    key: np.ndarray
    table: pd.DataFrame


def lead_keys(pool: pd.DataFrame, config: RoutingConfig) -> Keys:
    """Group the pool's leads by what decides who may take them."""
    frame = pd.DataFrame(index=pool.index)
    for column in RULE_COLUMNS:
        configured = getattr(config, column) is not None
        frame[column] = folded(pool[column]) if configured else None
        frame[f"shown_{column}"] = pool[column].astype(object) if configured else None
    grade = pool["grade"].astype(object).where(pool["grade"].notna(), "")
    levels = {g: SENIORITY_ORDER.index(s) for g, s in config.min_seniority.items()}
    frame["level"] = grade.map(lambda g: levels.get(str(g), 0)).astype(int)
    frame["grade"] = np.where(frame["level"] > 0, grade.astype(str), "")
    by = [*RULE_COLUMNS, "level", "grade"]
    key = frame.groupby(by, dropna=False, sort=True).ngroup().to_numpy()
    firsts = frame.assign(_key=key).drop_duplicates("_key").set_index("_key").sort_index()
    return Keys(key=key, table=firsts.reset_index(drop=True))


def _covers(allowed: list[str], value: object) -> bool:
    if not allowed:
        return True
    return value is not None and value in {_fold(a) for a in allowed}


def rep_matches(
    rep: Rep, row: pd.Series, config: RoutingConfig, rules: tuple[str, ...]
) -> bool:
    """Whether ``rep`` may take the leads of key ``row`` under ``rules`` (columns plus
    ``"seniority"``); a column not configured is no rule."""
    lists = {"territory": rep.territories, "skill": rep.skills, "language": rep.languages}
    for column in RULE_COLUMNS:
        applies = column in rules and getattr(config, column) is not None
        if applies and not _covers(lists[column], row[column]):
            return False
    return "seniority" not in rules or SENIORITY_ORDER.index(rep.seniority) >= row["level"]


ALL_RULES: tuple[str, ...] = (*RULE_COLUMNS, "seniority")
TERRITORY_ONLY: tuple[str, ...] = ("territory",)


def eligibility(keys: Keys, config: RoutingConfig, rules: tuple[str, ...]) -> np.ndarray:
    """Boolean matrix keys x reps (config order): may the rep take the key's leads."""
    table, reps = keys.table, config.reps
    out = np.zeros((len(table), len(reps)), dtype=bool)
    for k, row in table.iterrows():
        out[k] = [rep_matches(rep, row, config, rules) for rep in reps]
    return out


def _named(config: RoutingConfig, row: pd.Series, column: str) -> str:
    name = getattr(config, column)
    shown = row[f"shown_{column}"]
    if row[column] is None:
        return f"no {name}"
    return f"{name} {str(shown).strip()}"


def describe(config: RoutingConfig, row: pd.Series, rules: tuple[str, ...] = ALL_RULES) -> str:
    """The key in words, e.g. "country US, segment smb" (configured columns only)."""
    parts = [
        _named(config, row, c)
        for c in RULE_COLUMNS
        if c in rules and getattr(config, c) is not None
    ]
    return ", ".join(parts)


def no_rep_reason(config: RoutingConfig, row: pd.Series, rules: tuple[str, ...]) -> str:
    """Why no rep may take the key's leads: the first rule (territory, then skill, then
    language, then seniority) that leaves nobody, in words."""
    reps = config.reps
    if not reps:
        return "no reps in routing.reps"
    applied: list[str] = []
    for rule in rules:
        if rule == "seniority":
            continue
        if getattr(config, rule) is None:
            continue
        applied.append(rule)
        if any(rep_matches(r, row, config, tuple(applied)) for r in reps):
            continue
        value, name = row[rule], getattr(config, rule)
        if len(applied) == 1:
            if value is None:
                return f"no {name} given and every rep covers a list of {name} values"
            return f"no rep covers {name} {str(row[f'shown_{rule}']).strip()}"
        head = _named(config, row, rule)
        where = describe(config, row, tuple(applied[:-1]))
        if value is None:
            return f"{head} given and no rep with an open {name} list covers {where}"
        return f"no rep with {head} in {where}"
    level = SENIORITY_ORDER[int(row["level"])]
    where = describe(config, row, tuple(applied)) or "these leads"
    return f"grade {row['grade']} needs a {level} rep or above: none covers {where}"


def owner_index(owners: pd.Series, reps: list[Rep]) -> np.ndarray:
    """Per lead, the index of the rep its owner names (by id or name, trimmed and
    case-insensitive), -1 when it names none."""
    lookup: dict[str, int] = {}
    for i, rep in enumerate(reps):  # ids win over names when both could match
        if rep.name:
            lookup.setdefault(_fold(rep.name), i)
    for i, rep in enumerate(reps):
        lookup[_fold(rep.id)] = i
    found = folded(owners).map(lookup)
    return found.fillna(-1).to_numpy(dtype=int)
