"""The clean leads as a compact lookup: lead id -> position, created_at, open position.

The nightly pass checks tens of millions of activities against the clean leads. A pandas
Index of Python strings costs ~0.5 GB per million leads and hashes every activity's id
again; here the ids are held once as one Arrow string array (their bytes and offsets),
beside sorted 64-bit hashes of them and int64 / int32 arrays: ~45 bytes a lead (built
from Python strings a slice at a time, never the whole table's at once). A lookup
factorises the chunk's ids (a chunk of the log holds a few ids many times), hashes only the
distinct ones, finds them by binary search and confirms each match by comparing the id
itself, so a hash collision can never tie an activity to another lead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_MISSING = np.iinfo(np.int64).min  # NaT's int64


_HASH_ROWS = 1 << 20
"""Ids made Python strings (to hash them) at a time: ~70 bytes each while they live."""


def _hashes(ids: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


def hashes_in_slices(ids: pd.Series) -> np.ndarray:
    """:func:`_hashes` of every id (each is hashed on its own, so the same keys), made
    Python strings ``_HASH_ROWS`` at a time: memory for one slice, not the whole table."""
    keys = np.empty(len(ids), dtype=np.uint64)
    for start in range(0, len(ids), _HASH_ROWS):
        keys[start : start + _HASH_ROWS] = _hashes(ids.iloc[start : start + _HASH_ROWS])
    return keys


def _runs(ids: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Where each run of equal ids starts and its id (as Python strings), for Arrow-backed
    text with no null and runs of four rows or more on average; None otherwise."""
    if not isinstance(ids.dtype, pd.StringDtype) or ids.dtype.storage != "pyarrow":
        return None
    values = pa.chunked_array(pa.array(ids.array)).combine_chunks()
    if len(values) < 2 or values.null_count:
        return None
    change = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1))
    starts = np.flatnonzero(np.asarray(change.to_numpy(zero_copy_only=False), dtype=bool)) + 1
    if len(starts) > len(values) // 4:
        return None
    starts = np.insert(starts, 0, 0)
    heads = values.take(pa.array(starts)).to_numpy(zero_copy_only=False)
    return starts, np.asarray(heads, dtype=object)


@dataclass(frozen=True)
class LeadIndex:
    """Clean leads by id: ``created`` (ns since the epoch, UTC) and ``open_position``
    (the lead's place among the open leads in id order; -1: not open)."""

    ids: pa.Array  # large_string, one per clean lead, table order
    created: np.ndarray  # int64 ns
    keys: np.ndarray  # uint64 hashes of the ids, sorted
    order: np.ndarray  # int64: keys[i] is the hash of ids[order[i]]
    open_position: np.ndarray  # int32 per clean lead

    @classmethod
    def of(cls, ids: pd.Series, created: pd.Series) -> LeadIndex:
        """The clean leads' ids (unique, no nulls) and created_at; none open yet."""
        keys = hashes_in_slices(ids)
        order = np.argsort(keys, kind="stable")
        stamps = created.to_numpy(dtype="datetime64[ns]").view(np.int64)
        arrow = isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow"
        if arrow:  # the ids' own buffers, not a conversion from Python strings
            text = pa.chunked_array(pa.array(ids.array)).combine_chunks().cast(pa.large_string())
        else:
            text = pa.array(np.asarray(ids, dtype=object), pa.large_string())
        return cls(
            ids=text,
            created=stamps,
            keys=keys[order],
            order=order.astype(np.int64, copy=False),
            open_position=np.full(len(keys), -1, dtype=np.int32),
        )

    def __len__(self) -> int:
        return len(self.created)

    def with_open(self, open_ids: pd.Series) -> LeadIndex:
        """The same leads, ``open_ids`` (clean, in partition order) numbered 0, 1, ..."""
        where = self.positions(open_ids)
        if (where < 0).any():
            raise RuntimeError("an open lead is missing from the clean leads")
        opened = np.full(len(self), -1, dtype=np.int32)
        opened[where] = np.arange(len(where), dtype=np.int32)
        return LeadIndex(self.ids, self.created, self.keys, self.order, opened)

    def with_open_at(self, where: np.ndarray) -> LeadIndex:
        """The same leads, those at positions ``where`` (in partition order) numbered 0,
        1, ...: :meth:`with_open` when the caller knows the positions (no id lookup)."""
        if len(where) and (where.min() < 0 or where.max() >= len(self)):
            raise RuntimeError("an open lead is missing from the clean leads")
        opened = np.full(len(self), -1, dtype=np.int32)
        opened[where] = np.arange(len(where), dtype=np.int32)
        return LeadIndex(self.ids, self.created, self.keys, self.order, opened)

    def positions(self, ids: pd.Series) -> np.ndarray:
        """Each id's position among the clean leads (-1: not one of them; null: -1).

        A log grouped by lead holds each id in one run of rows: the runs' first ids are
        looked up and repeated, one string comparison of neighbours instead of hashing
        every row (:meth:`_positions_by_value` otherwise; both give the same positions).
        """
        runs = _runs(ids)
        if runs is None:
            return self._positions_by_value(ids)
        starts, heads = runs
        found = self._find(heads) if len(heads) else np.empty(0, np.int64)
        return np.repeat(found, np.diff(np.append(starts, len(ids))))

    def _positions_by_value(self, ids: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(ids, use_na_sentinel=True)
        if len(uniques) == 0:
            return np.full(len(codes), -1, dtype=np.int64)
        found = self._find(np.asarray(uniques, dtype=object))
        return np.append(found, -1)[codes]  # code -1 (null) -> the last

    def _find(self, values: np.ndarray) -> np.ndarray:
        keys = _hashes(values)
        at = np.searchsorted(self.keys, keys)
        hit = at < len(self.keys)
        hit[hit] = self.keys[at[hit]] == keys[hit]
        out = np.full(len(values), -1, dtype=np.int64)
        out[hit] = self.order[at[hit]]
        candidates = np.flatnonzero(hit)
        same = pc.equal(self.ids.take(pa.array(out[candidates])), pa.array(values[candidates]))
        wrong = candidates[~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)]
        for i in wrong:  # a 64-bit collision (or several leads on one hash): search them
            out[i] = self._scan(values[i], keys[i], int(at[i]))
        return out

    def _scan(self, value: str, key: np.uint64, start: int) -> int:
        stop = int(np.searchsorted(self.keys, key, side="right"))
        for i in range(start, stop):
            if self.ids[int(self.order[i])].as_py() == value:
                return int(self.order[i])
        return -1

    def created_at(self, where: np.ndarray) -> pd.Series:
        """created_at (UTC) of the leads at ``where`` (-1: NaT)."""
        stamps = np.where(where >= 0, self.created[np.maximum(where, 0)], _MISSING)
        return pd.Series(stamps.view("datetime64[ns]")).dt.tz_localize("UTC")
