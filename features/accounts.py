"""Account-level features, point in time: the other contacts at a lead's account, and
their recent activity, as known at the entity's time T.

A lead points at an account (any ``data.joins`` table: accounts, companies) by a key.
For an entity row (a lead at time T) and each join ``<name>``:

- ``<name>_contacts``: the account's *other* contacts created strictly before T;
- ``<name>_engagement`` (with an activity log): their activities strictly before T,
  weighted by recency (half-life ``features.half_life_days``), i.e. the account's
  recency-weighted activity minus the lead's own (``decay_all_activity``).

Contacts created at or after T, and activities at or after T, never count: that is the
point-in-time rule, and what tests/features/test_accounts.py checks. A contact with no
``created_at`` (flat exports without dates) counts at any time, and an entity with no
time (such exports' training rows) sees every contact: the data has no time to leak.

The history is built once from every clean lead and activity (:meth:`AccountHistory.of`)
and looked up per entity in O(log n), like ``features.market``: scoring partitions hold
open leads only, so the score flow builds it while it reads the tables and hands it on.
Sums are prefix sums per account of ``2^((t - t_ref)/half_life)`` with ``t_ref`` the
account's newest activity, rescaled to T: no per-entity walk over an account's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from leadscore.features import hygiene
from leadscore.features.contract import CREATED_AT, LEAD_ID, OCCURRED_AT, as_text

NS_PER_DAY = 86_400 * 10**9
_NEVER = np.iinfo(np.int64).max  # an entity with no time sees everything


def contacts_name(group: str) -> str:
    return f"{group}_contacts"


def engagement_name(group: str) -> str:
    return f"{group}_engagement"


def group_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each lead's account as a code (-1: none) and the accounts' keys (compared form)."""
    codes, uniques = pd.factorize(hygiene.id_keys(as_text(values)), use_na_sentinel=True)
    return codes.astype(np.int64), pd.Index(uniques)


def _csr(codes: np.ndarray, times: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Times sorted by (group, time), and each group's start (length n_groups + 1)."""
    keep = codes >= 0
    codes, times = codes[keep], times[keep]
    order = np.lexsort((times, codes))
    starts = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return times[order], starts


@numba.njit(cache=True)
def _prefix(times: np.ndarray, starts: np.ndarray, half_life_ns: float) -> tuple:
    """Per group: its newest time (the reference) and the running sums of the weights
    ``2^((t - ref)/half_life)`` in time order (``sums[j]``: the first j+1 of its group)."""
    n_groups = starts.size - 1
    ref = np.zeros(n_groups, dtype=np.int64)
    sums = np.zeros(times.size)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        if b == a:
            continue
        ref[g] = times[b - 1]
        total = 0.0
        for j in range(a, b):
            total += np.exp2((times[j] - ref[g]) / half_life_ns)
            sums[j] = total
    return ref, sums


@numba.njit(cache=True)
def _lookup(
    codes: np.ndarray,
    t_asof: np.ndarray,
    own_created: np.ndarray,
    c_times: np.ndarray,
    c_starts: np.ndarray,
    a_times: np.ndarray,
    a_starts: np.ndarray,
    a_ref: np.ndarray,
    a_sums: np.ndarray,
    half_life_ns: float,
    contacts: np.ndarray,
    engagement: np.ndarray,
) -> None:
    for r in range(codes.size):
        g = codes[r]
        if g < 0:
            continue
        t = t_asof[r]
        a, b = c_starts[g], c_starts[g + 1]
        before = np.searchsorted(c_times[a:b], t)  # created strictly before t
        contacts[r] = before - (1 if own_created[r] < t else 0)
        if t == _NEVER:
            continue  # no time: no recency either (flat exports have no log anyway)
        a, b = a_starts[g], a_starts[g + 1]
        k = np.searchsorted(a_times[a:b], t)  # activities strictly before t
        engagement[r] = (
            0.0 if k == 0 else a_sums[a + k - 1] * np.exp2((a_ref[g] - t) / half_life_ns)
        )


@dataclass(frozen=True)
class GroupHistory:
    """One join's accounts: their contacts' creation times and their activity sums."""

    name: str
    lead_ids: pd.Index  # every clean lead
    lead_code: np.ndarray  # per lead: its account's code (-1: none)
    lead_created: np.ndarray  # per lead: created_at (ns; NaT: int64 min)
    c_times: np.ndarray
    c_starts: np.ndarray
    a_times: np.ndarray
    a_starts: np.ndarray
    a_ref: np.ndarray
    a_sums: np.ndarray
    half_life_ns: float
    has_log: bool

    def features(
        self, lead_ids: pd.Series, as_of: np.ndarray, own_decay: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """The join's columns for entity rows (``lead_ids`` at ``as_of``, datetime64[ns])."""
        position = self.lead_ids.get_indexer(lead_ids)
        known = position >= 0
        codes = np.where(known, self.lead_code[np.where(known, position, 0)], -1)
        own = np.where(known, self.lead_created[np.where(known, position, 0)], _NEVER)
        t = as_of.astype("datetime64[ns]").view(np.int64).copy()
        t[np.isnat(as_of.astype("datetime64[ns]"))] = _NEVER
        contacts = np.full(len(codes), np.nan)
        engagement = np.full(len(codes), np.nan)
        _lookup(
            codes, t, own, self.c_times, self.c_starts,
            self.a_times, self.a_starts, self.a_ref, self.a_sums, self.half_life_ns,
            contacts, engagement,
        )  # fmt: skip
        out = {contacts_name(self.name): contacts}
        if self.has_log:
            if own_decay is not None:  # the lead's own activity is its own feature
                other = engagement - own_decay
                tiny = np.abs(other) <= 1e-9 * np.maximum(engagement, 1e-300)
                engagement = np.where(tiny, 0.0, np.maximum(other, 0.0))
            out[engagement_name(self.name)] = engagement
        return out


@dataclass(frozen=True)
class AccountHistory:
    """Every join's accounts, looked up per entity row (see the module's docstring)."""

    groups: tuple[GroupHistory, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def has_log(self) -> bool:
        return any(g.has_log for g in self.groups)

    @classmethod
    def of(
        cls,
        leads: pd.DataFrame,
        activities: pd.DataFrame | None,
        keys: Mapping[str, str],
        half_life_days: float,
    ) -> AccountHistory:
        """From every clean lead (``lead_id``, ``created_at``, the key columns) and every
        clean activity (``lead_id``, ``occurred_at``); ``keys``: join name -> key column."""
        if activities is None:
            return cls.of_positions(leads, None, None, keys, half_life_days)
        position = pd.Index(leads[LEAD_ID]).get_indexer(activities[LEAD_ID])
        stamps = activities[OCCURRED_AT].to_numpy(dtype="datetime64[ns]").view(np.int64)
        return cls.of_positions(leads, position, stamps, keys, half_life_days)

    @classmethod
    def of_positions(
        cls,
        leads: pd.DataFrame,
        act_lead: np.ndarray | None,
        act_time: np.ndarray | None,
        keys: Mapping[str, str],
        half_life_days: float,
    ) -> AccountHistory:
        """As :meth:`of`, the activities given as their lead's position in ``leads``
        (-1: none) and their time (ns): what the nightly batch keeps of a chunked log."""
        half_life_ns = float(half_life_days) * NS_PER_DAY
        ids = pd.Index(leads[LEAD_ID])
        created = leads[CREATED_AT].to_numpy(dtype="datetime64[ns]").view(np.int64)
        groups = []
        for name, column in keys.items():
            codes, uniques = group_codes(leads[column])
            c_times, c_starts = _csr(codes, created, len(uniques))
            if act_lead is None or act_time is None:
                a_codes, a_time = np.empty(0, np.int64), np.empty(0, np.int64)
            else:
                known = act_lead >= 0
                a_codes = np.where(known, codes[np.where(known, act_lead, 0)], -1)
                a_time = act_time
            a_times, a_starts = _csr(a_codes, a_time, len(uniques))
            a_ref, a_sums = _prefix(a_times, a_starts, half_life_ns)
            groups.append(
                GroupHistory(
                    name=name,
                    lead_ids=ids,
                    lead_code=codes,
                    lead_created=created,
                    c_times=c_times,
                    c_starts=c_starts,
                    a_times=a_times,
                    a_starts=a_starts,
                    a_ref=a_ref,
                    a_sums=a_sums,
                    half_life_ns=half_life_ns,
                    has_log=act_lead is not None,
                )
            )
        return cls(tuple(groups))

    def features(
        self, entities: pd.DataFrame, own_decay: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Every join's columns for the entity rows (``lead_id``, ``as_of``)."""
        as_of = entities["as_of"].to_numpy(dtype="datetime64[ns]")
        out: dict[str, np.ndarray] = {}
        for group in self.groups:
            out.update(group.features(entities[LEAD_ID], as_of, own_decay))
        return out
