"""The one feature code path, shared by training snapshots and nightly scoring.

``build_features`` takes entity rows (lead_id, as_of) and returns, per row, the lead's
profile (ICP-fit) attributes and its behaviour as of that instant, in registry order.
Training calls it with one row per snapshot, scoring with one row per open lead "as of
now": the same function, so serving can never drift from training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.features.accounts import AccountHistory
from leadscore.features.behaviour import NS_PER_DAY, behaviour_features
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CREATED_AT, LEAD_ID
from leadscore.features.market import RECENT_CONVERSION_RATE, OutcomeHistory
from leadscore.features.registry import DECAYED_TOTAL, LEAD_AGE, FeatureRegistry, build_registry

AS_OF = "as_of"
KEYS = (LEAD_ID, AS_OF)


def entities_at(leads: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One entity row per lead, all at the same instant (the scoring case)."""
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pd.DataFrame(
        {
            LEAD_ID: leads[LEAD_ID].reset_index(drop=True),  # keeps the ids' dtype: no copy
            AS_OF: pd.DatetimeIndex(np.full(len(leads), stamp.value), tz="UTC").as_unit("ns"),
        }
    )


def build_features(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    entities: pd.DataFrame,
    config: FeatureConfig,
    registry: FeatureRegistry | None = None,
    history: OutcomeHistory | None = None,
    accounts: AccountHistory | None = None,
) -> pd.DataFrame:
    """Feature frame for ``entities``: the key columns, then every registry feature.

    Raises ``KeyError`` if an entity names a lead that is not in ``leads``. With no
    activity log (a flat export) the features are the attributes alone and ``as_of`` may
    be missing. With ``accounts`` (``data.joins``), each joined table's account features
    (``features.accounts``) come last, point in time like the rest. With
    ``features.market`` on, the recent conversion rate reads ``history``, by default the
    outcomes of ``leads`` themselves (training passes the whole table; scoring, whose
    ``leads`` are open leads only, passes the table's history; ``accounts`` likewise).

    Inputs are never modified. Built column by column from arrays and put into one frame
    once (no per-column inference, no re-ordering copies): at a million
    leads the frame plumbing cost more than the behaviour arithmetic.
    """
    behaviour = activities is not None
    groups = accounts.names if accounts is not None else ()
    registry = registry or build_registry(config, behaviour=behaviour, groups=groups)
    position = pd.Index(leads[LEAD_ID]).get_indexer(entities[LEAD_ID])
    if (position < 0).any():
        unknown = entities[LEAD_ID].to_numpy()[position < 0]
        raise KeyError(f"entities name unknown leads, e.g. {unknown[:3].tolist()}")
    created = leads[CREATED_AT].to_numpy(dtype="datetime64[ns]")[position]
    as_of = entities[AS_OF].to_numpy(dtype="datetime64[ns]")
    known = ~(np.isnat(created) | np.isnat(as_of))
    age = np.full(len(entities), np.nan)
    age[known] = (as_of[known] - created[known]).view(np.int64) / NS_PER_DAY
    if (age[known] < 0).any():
        raise ValueError("an entity's as_of is before its lead was created")

    candidates: dict[str, object] = {}
    for name in config.attributes.categorical:  # dtype as given: no str inference
        candidates[name] = _taken(leads[name], position, entities.index) if name in leads else None
    for name in config.attributes.numeric:
        candidates[name] = (
            leads[name].to_numpy(dtype=np.float64)[position] if name in leads else np.nan
        )
    if config.market.enabled:
        history = history or OutcomeHistory.of(leads, config.market)
        candidates[RECENT_CONVERSION_RATE] = history.rate(entities, as_of, config.market)
    if behaviour:
        candidates[LEAD_AGE] = age
        candidates.update(behaviour_features(entities, activities, config))
    if accounts is not None:  # after behaviour: an account's engagement leaves out the lead's
        own = candidates.get(DECAYED_TOTAL)
        candidates.update(accounts.features(entities, None if own is None else np.asarray(own)))
    columns: dict[str, object] = {
        LEAD_ID: pd.Series(entities[LEAD_ID].to_numpy(dtype=object), index=entities.index),
        AS_OF: entities[AS_OF].astype("datetime64[ns, UTC]"),
    }
    columns.update((n, candidates[n]) for n in registry.names if n in candidates)
    return pd.DataFrame(columns, index=entities.index)


def _taken(column: pd.Series, position: np.ndarray, index: pd.Index) -> pd.Series:
    """``column``'s values at ``position``, on ``index``: a text column stays Arrow text
    (one ``take``; the model's encoding and the reasons read it without a Python string
    per lead), any other column object, as given."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        taken = pa.array(column.array).take(pa.array(position))
        return pd.Series(pd.array(taken, dtype=column.dtype), index=index)
    return pd.Series(column.to_numpy(dtype=object)[position], index=index, dtype=object)
