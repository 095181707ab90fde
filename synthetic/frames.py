"""The generated CRM's frames: observable leads and activities, the hidden truth, Parquet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.synthetic import world
from leadscore.synthetic.population import Population, draw_owners, with_nulls
from leadscore.synthetic.step import ActivityLog, State
from leadscore.synthetic.vocabulary import (
    ALL_TYPES,
    INDUSTRIES,
    SIZE_SEGMENT,
    TYPE_CODE,
    VOCABULARY,
)


@dataclass(frozen=True)
class SyntheticCRM:
    """A generated CRM: the observable ``leads`` and ``activities``, and the hidden ``truth``."""

    leads: pd.DataFrame
    activities: pd.DataFrame
    truth: pd.DataFrame


def _to_utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Seconds since the epoch as ``datetime64[ns, UTC]``; negative seconds become NaT."""
    ns = seconds.astype(np.int64) * 1_000_000_000
    ns = np.where(seconds < 0, np.iinfo(np.int64).min, ns)  # iNaT
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def lead_ids(n: int) -> np.ndarray:
    """Lead ids L0000001, L0000002, ...: zero-padded, so they sort like their index."""
    return np.array([f"L{i:07d}" for i in range(1, n + 1)], dtype=object)


def leads_frame(
    rng: np.random.Generator,
    pop: Population,
    state: State,
    ids: np.ndarray,
) -> pd.DataFrame:
    """The observable leads table, in creation order."""
    segment = np.array(SIZE_SEGMENT, dtype=object)[pop.codes["company_size"]]
    columns: dict[str, object] = {
        "lead_id": ids,
        "created_at": _to_utc(pop.created),
        "status": np.array(["open", "converted", "lost"], dtype=object)[state.status],
        "closed_at": _to_utc(state.closed),
        "owner": draw_owners(rng, segment),
        "segment": segment,
    }
    for name, vocab in VOCABULARY.items():
        values = np.array(vocab, dtype=object)[pop.codes[name]]
        columns[name] = with_nulls(rng, values, world.NULL_SHARE.get(name, 0.0))
    columns["employees"] = with_nulls(rng, pop.employees, world.NULL_SHARE["employees"])
    columns["annual_revenue_musd"] = with_nulls(
        rng, pop.revenue, world.NULL_SHARE["annual_revenue_musd"]
    )
    return pd.DataFrame(columns)


def _activity_values(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Mostly NaN; seconds on the pricing page and minutes of a webinar attended."""
    value = np.full(len(kind), np.nan)
    pricing = kind == TYPE_CODE["pricing_page_view"]
    value[pricing] = np.round(np.exp(rng.normal(4.0, 0.8, pricing.sum())))
    webinar = kind == TYPE_CODE["webinar_attended"]
    value[webinar] = rng.integers(5, 61, webinar.sum()).astype(float)
    return value


def activities_frame(rng: np.random.Generator, log: ActivityLog, ids: np.ndarray) -> pd.DataFrame:
    """The activity log sorted by (lead_id, occurred_at); lead ids sort like their index."""
    lead, kind, when = log.arrays()
    order = np.lexsort((when, lead))
    lead, kind, when = lead[order], kind[order], when[order]
    return pd.DataFrame(
        {
            "lead_id": pd.Categorical.from_codes(lead, categories=ids).astype("str"),
            "activity_type": pd.Categorical.from_codes(kind, categories=ALL_TYPES).astype("str"),
            "occurred_at": _to_utc(when),
            "value": _activity_values(rng, kind),
        }
    )


def truth_frame(pop: Population, ids: np.ndarray) -> pd.DataFrame:
    """Hidden per-lead parameters: everything the oracle needs to replay a lead's world.

    Persona, fit logit, interest (and its log for the hazard), the creation time, the true
    industry (the observable one has gaps; campaigns target the true one), the key that
    fixes the lead's bursts of activity and the key of the CRM's campaign calendar (the
    same on every row).
    """
    return pd.DataFrame(
        {
            "lead_id": pd.array(ids, dtype="str"),
            "persona": pd.array(np.array(world.PERSONAS, dtype=object)[pop.persona], dtype="str"),
            "fit_logit": pop.fit,
            "interest": np.exp(pop.log_interest),
            "log_interest": pop.log_interest,
            "created_at": _to_utc(pop.created),
            "true_industry": pd.array(
                np.array(INDUSTRIES, dtype=object)[pop.codes["industry"]], dtype="str"
            ),
            "burst_key": pop.burst_key.view(np.int64),
            "calendar_key": np.full(len(ids), pop.calendar_key).view(np.int64),
        }
    )


def write_crm(crm: SyntheticCRM, out_dir: Path) -> dict[str, Path]:
    """Write the three frames as Parquet files in ``out_dir``; return their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.parquet" for name in ("leads", "activities", "truth")}
    for name, path in paths.items():
        getattr(crm, name).to_parquet(path, index=False)
    return paths
