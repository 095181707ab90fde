"""The CRM as its export would have read at an instant: what a nightly run saw that night.

The generator writes the world up to its end; a simulated night at ``cutoff`` must see only
what the CRM knew then: the leads created before it, those closed later still open (no
``closed_at``), and the activities before it. The hidden ``truth`` keeps the exported
leads' rows (the oracle reads it as before).
"""

from __future__ import annotations

import pandas as pd

from leadscore.synthetic.frames import SyntheticCRM


def export_as_of(crm: SyntheticCRM, cutoff: pd.Timestamp) -> SyntheticCRM:
    """``crm`` as its export read at ``cutoff`` (UTC; a naive one is taken as UTC)."""
    stamp = pd.Timestamp(cutoff)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    leads = crm.leads.loc[crm.leads["created_at"] < stamp].copy()
    later = ~(leads["closed_at"] < stamp)  # NaT (open) compares False: stays open
    leads.loc[later, "status"] = "open"
    leads.loc[later, "closed_at"] = pd.NaT
    known = crm.activities["lead_id"].isin(leads["lead_id"])
    activities = crm.activities.loc[known & (crm.activities["occurred_at"] < stamp)]
    truth = crm.truth.loc[crm.truth["lead_id"].isin(leads["lead_id"])]
    return SyntheticCRM(
        leads=leads.reset_index(drop=True),
        activities=activities.reset_index(drop=True),
        truth=truth.reset_index(drop=True),
    )
