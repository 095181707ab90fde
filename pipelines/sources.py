"""Read leads and activities from the configured sources onto the data contract.

Everything that touches files lives here; the checks themselves are the pure functions of
``features.contract``. The result carries the quarantined rows so that every run can
account for every input lead (scored or quarantined) and every activity.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.contract import (
    ContractError,
    data_end,
    prepare_activities,
    prepare_leads,
)
from pipelines.settings import Settings, SourceConfig


@dataclass(frozen=True)
class CRMData:
    """Clean leads and activities, their quarantine, and the input row counts."""

    leads: pd.DataFrame
    activities: pd.DataFrame | None
    quarantine: pd.DataFrame
    n_leads_in: int
    n_activities_in: int

    @property
    def end(self) -> pd.Timestamp:
        return data_end(self.leads, self.activities)

    def quarantined(self, source: str) -> int:
        return int((self.quarantine["source"] == source).sum())


def read_table(source: SourceConfig) -> pd.DataFrame:
    """One source file as a frame; a clear error naming the file when it cannot be read."""
    if not source.path.is_file():
        raise FileNotFoundError(
            f"{source.path}: no such file (run `leadscore generate` for the synthetic CRM)"
        )
    try:
        if source.resolved_format == "csv":
            return pd.read_csv(source.path)
        return pd.read_parquet(source.path)
    except Exception as exc:
        raise ContractError(
            f"{source.path}: cannot be read as {source.resolved_format}: {exc}"
        ) from exc


def load_crm(settings: Settings) -> CRMData:
    """Read, map and check the configured leads and activities."""
    data = settings.data
    attrs = settings.features.attributes
    raw_leads = read_table(data.leads)
    leads = prepare_leads(
        raw_leads,
        source=str(data.leads.path),
        column_mapping=data.column_mapping,
        attributes_categorical=attrs.categorical,
        attributes_numeric=attrs.numeric,
    )
    quarantine = [leads.quarantine]
    activities = None
    n_activities = 0
    if data.activities is not None:
        raw_activities = read_table(data.activities)
        n_activities = len(raw_activities)
        checked = prepare_activities(
            raw_activities,
            leads.rows,
            source=str(data.activities.path),
            column_mapping=data.column_mapping,
        )
        activities = checked.rows
        quarantine.append(checked.quarantine)
    return CRMData(
        leads=leads.rows.reset_index(drop=True),
        activities=activities,
        quarantine=pd.concat(quarantine, ignore_index=True),
        n_leads_in=len(raw_leads),
        n_activities_in=n_activities,
    )
