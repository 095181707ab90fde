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


def folded_codes(values: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """(code per row, the folded value of each code): text trimmed and case-folded,
    None where missing or blank; folded once per distinct value, not per row."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = [str(u).strip().casefold() or None for u in uniques]
    distinct = sorted({n for n in names if n is not None})
    index = {n: i for i, n in enumerate(distinct)}
    remap = np.array([index[n] if n is not None else -1 for n in names] + [-1], dtype=int)
    return remap[codes], [*distinct]


def folded(values: pd.Series) -> pd.Series:
    """Trimmed, case-folded text; None where missing or blank."""
    codes, names = folded_codes(values)
    out = np.array([*names, None], dtype=object)[codes]
    return pd.Series(out, index=values.index, dtype=object)


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
    """Group the pool's leads by what decides who may take them (integer codes per
    column, so a million leads cost a few factorizes and one ``np.unique``)."""
    n = len(pool)
    levels = {g: SENIORITY_ORDER.index(s) for g, s in config.min_seniority.items()}
    grade_codes, grades = pd.factorize(pool["grade"].astype(object), use_na_sentinel=True)
    grade_level = np.array([levels.get(str(g), 0) for g in grades] + [0], dtype=int)
    level = grade_level[grade_codes]
    # the grade only matters (for the reason) where it asks for seniority
    grade_code = np.where(level > 0, grade_codes, -1)
    parts, names = [], {}
    for column in RULE_COLUMNS:
        if getattr(config, column) is None:
            parts.append(np.full(n, -1))
            names[column] = []
            continue
        codes, names[column] = folded_codes(pool[column])
        parts.append(codes)
    stacked = np.column_stack([*parts, level, grade_code]) if n else np.zeros((0, 5), dtype=int)
    radix = stacked.max(axis=0, initial=0) + 2  # codes from -1: shift by one, mix the radices
    packed = np.zeros(n, dtype=np.int64)
    for j in range(stacked.shape[1]):
        packed = packed * int(radix[j]) + (stacked[:, j] + 1)
    _, first, key = np.unique(packed, return_index=True, return_inverse=True)
    unique = stacked[first]
    table = pd.DataFrame(index=range(len(unique)))
    for j, column in enumerate(RULE_COLUMNS):
        lookup = np.array([*names[column], None], dtype=object)
        table[column] = pd.Series(lookup[unique[:, j]], dtype=object)
        shown = pool[column].to_numpy(dtype=object)[first] if n else np.zeros(0, dtype=object)
        table[f"shown_{column}"] = pd.Series(shown, dtype=object)
    table["level"] = unique[:, 3].astype(int) if len(unique) else pd.Series(dtype=int)
    grade_names = np.array([str(g) for g in grades] + [""], dtype=object)
    table["grade"] = pd.Series(grade_names[unique[:, 4]] if len(unique) else [], dtype=object)
    return Keys(key=np.asarray(key).reshape(-1).astype(int), table=table)


def _covers(allowed: list[str], value: object) -> bool:
    if not allowed:
        return True
    return value is not None and value in {_fold(a) for a in allowed}


def rep_matches(rep: Rep, row: pd.Series, config: RoutingConfig, rules: tuple[str, ...]) -> bool:
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
