"""The one feature code path, shared by training snapshots and nightly scoring.

``build_features`` takes entity rows (lead_id, as_of) and returns, per row, the lead's
profile (ICP-fit) attributes and its behaviour as of that instant, in registry order.
Training calls it with one row per snapshot, scoring with one row per open lead "as of
now": the same function, so serving can never drift from training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.behaviour import NS_PER_DAY, behaviour_features
from features.config import FeatureConfig
from features.contract import CREATED_AT, LEAD_ID
from features.registry import LEAD_AGE, FeatureRegistry, build_registry

AS_OF = "as_of"
KEYS = (LEAD_ID, AS_OF)


def entities_at(leads: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One entity row per lead, all at the same instant (the scoring case)."""
    return pd.DataFrame(
        {LEAD_ID: leads[LEAD_ID].to_numpy(), AS_OF: pd.Series(as_of, index=range(len(leads)))}
    ).astype({AS_OF: "datetime64[ns, UTC]"})


def build_features(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    entities: pd.DataFrame,
    config: FeatureConfig,
    registry: FeatureRegistry | None = None,
) -> pd.DataFrame:
    """Feature frame for ``entities``: the key columns, then every registry feature.

    Raises ``KeyError`` if an entity names a lead that is not in ``leads``. With no
    activity log (a flat export) the features are the attributes alone and ``as_of`` may
    be missing. Inputs are never modified.
    """
    behaviour = activities is not None
    registry = registry or build_registry(config, behaviour=behaviour)
    profile = leads.set_index(LEAD_ID)
    missing = ~entities[LEAD_ID].isin(profile.index)
    if missing.any():
        raise KeyError(
            f"entities name unknown leads, e.g. {entities[LEAD_ID][missing][:3].tolist()}"
        )
    rows = profile.loc[entities[LEAD_ID].to_numpy()]
    created = rows[CREATED_AT].to_numpy(dtype="datetime64[ns]")
    as_of = entities[AS_OF].to_numpy(dtype="datetime64[ns]")
    known = ~(np.isnat(created) | np.isnat(as_of))
    age = np.full(len(entities), np.nan)
    age[known] = (as_of[known] - created[known]).view(np.int64) / NS_PER_DAY
    if (age[known] < 0).any():
        raise ValueError("an entity's as_of is before its lead was created")

    columns: dict[str, object] = {
        LEAD_ID: entities[LEAD_ID].to_numpy(),
        AS_OF: entities[AS_OF].astype("datetime64[ns, UTC]"),
    }
    for name in config.attributes.categorical:
        columns[name] = rows[name].to_numpy(dtype=object) if name in rows else None
    for name in config.attributes.numeric:
        columns[name] = rows[name].to_numpy(dtype=np.float64) if name in rows else np.nan
    if behaviour:
        columns[LEAD_AGE] = age
    frame = pd.DataFrame(columns, index=entities.index)

    if activities is not None:
        behaviour = behaviour_features(entities, activities, age, config)
        frame = pd.concat([frame, behaviour], axis=1)
    ordered = [*KEYS, *(n for n in registry.names if n in frame.columns)]
    return frame[ordered].astype({AS_OF: "datetime64[ns, UTC]"})
