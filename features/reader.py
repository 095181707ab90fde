"""The one contract reader: raw leads and activities onto the data contract, or refused.

Every way a lead enters leadscore reads it here: the whole-file load
(``pipelines.sources.load_crm``), the nightly load that checks the activity log chunk by
chunk (``pipelines.partitioned.stream_crm``) and the single lead posted to
``POST /v1/score``. A :class:`ContractReader` holds what reading needs of the settings
(the user's column names, the outcome values, the declared attributes and activity
types, the validation rules, the source labels); its methods take raw frames and return
clean frames plus one quarantine row per bad row (``features.contract``: typing and the
Great Expectations suites). So the three paths run the same checks and give the same
reasons; the files and databases themselves are read by ``pipelines.sources``.

Conservation is part of reading: every input row ends clean or quarantined
(:func:`conserved`), and a source checked in parts (:class:`PartsTally`) gets the table rules
(bad-row share, nearly-null attributes) on its totals, as a whole table gets them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd

from leadscore.features import hygiene
from leadscore.features.config import AttributeConfig, FeatureConfig, ValidationConfig
from leadscore.features.contract import (
    ACTIVITY_REQUIRED,
    LEAD_ID,
    LEAD_REQUIRED,
    OWNER,
    SEGMENT,
    STATUS,
    STATUSES,
    VALUE,
    Checked,
    as_text,
    prepare_activities,
    prepare_leads,
    require_columns,
)
from leadscore.features.lead_index import LeadIndex
from leadscore.features.outcome_values import outcome_key, outcome_lookup
from leadscore.features.tally import PartsTally, add_notes, conserved
from leadscore.features.validation import ContractError

__all__ = [
    "ContractReader",
    "OutcomeValues",
    "PartsTally",
    "RefusedError",
    "add_notes",
    "conserved",
    "map_outcome",
]


class OutcomeValues(Protocol):
    """How a status or target column (values of any type) reads as open / converted / lost."""

    @property
    def column(self) -> str: ...
    @property
    def converted(self) -> Sequence[object]: ...
    @property
    def lost(self) -> Sequence[object]: ...
    @property
    def open(self) -> Sequence[object]: ...


class RefusedError(ContractError):
    """A posted lead, or one of its activities, that the contract refuses (the reason why)."""


def _keep_all(columns: Iterable[str]) -> list[str]:
    return []


def map_outcome(values: pd.Series, mapping: OutcomeValues) -> pd.Series:
    """Map a user's outcome values to open / converted / lost, whatever the column's type.

    Matched by ``features.outcome_values.outcome_key`` (text regardless of case, numbers by
    value, true/yes as 1): ``converted: [1]`` reads a 0/1 column of integers, floats (a CSV
    with blanks), booleans or yes/no text alike. Unlisted values are kept as text, so their
    row is quarantined (:func:`_name_unlisted` names the column and value); blanks stay
    missing ("status is empty").
    """
    lists = {"converted": mapping.converted, "lost": mapping.lost, "open": mapping.open}
    lookup = outcome_lookup(lists)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = [lookup.get(outcome_key(v) or "", str(v).strip()) for v in uniques]
    table = np.array([*mapped, pd.NA], dtype=object)  # code -1 (missing) -> the last
    return pd.Series(table[codes], index=values.index, dtype=object)


def _name_unlisted(
    checked: Checked, frame: pd.DataFrame, outcome: OutcomeValues, rows: np.ndarray | None
) -> Checked:
    """Quarantine reasons that name the user's outcome column and value, not ``status``."""
    quarantine = checked.quarantine
    unlisted = (quarantine["reason"] == f"status is not one of {list(STATUSES)}").to_numpy()
    if not unlisted.any():
        return checked
    values = frame[outcome.column].set_axis(pd.RangeIndex(len(frame)) if rows is None else rows)
    shown = values.loc[quarantine.loc[unlisted, "row"].to_numpy()].map(hygiene.excerpt)
    listed = f"converted {list(outcome.converted)}, lost {list(outcome.lost)}"
    reasons = quarantine["reason"].to_numpy(dtype=object, copy=True)
    reasons[unlisted] = [
        f"{outcome.column} is {v}: not listed under data.outcome ({listed}, open "
        f"{list(outcome.open)})"
        for v in shown
    ]
    return replace(checked, quarantine=quarantine.assign(reason=reasons))


def _noted(checked: Checked, notes: Mapping[str, int]) -> Checked:
    return replace(checked, notes=add_notes(dict(notes), checked.notes))


@dataclass(frozen=True)
class ContractReader:
    """What reading needs of the settings; its methods turn raw frames into checked ones.

    ``drop_columns`` names, among a frame's columns, those dropped on load (excluded and
    sensitive ones); ``flat``: the export has no activity log, so no life-cycle dates.
    """

    attributes: AttributeConfig = field(default_factory=AttributeConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    activity_types: tuple[str, ...] = ()
    column_mapping: Mapping[str, str] = field(default_factory=dict)
    drop_columns: Callable[[Iterable[str]], list[str]] = _keep_all
    lead_id_from_row: bool = False
    outcome: OutcomeValues | None = None
    flat: bool = False
    leads_source: str = "leads"
    activities_source: str = "activities"
    leads_date_format: str | None = None
    activities_date_format: str | None = None
    leads_lines: hygiene.Lines = hygiene.editor_line
    activities_lines: hygiene.Lines = hygiene.editor_line
    thousands: str | None = None
    decimal: str = "."
    duplicate_activities: str = "drop"
    display: tuple[str, ...] = ()
    engine: str = "gx"
    """How the GX suites run (``features.validation.validate``): "gx", or "numpy" (the
    nightly pass: the same rules as column masks)."""

    @classmethod
    def of(cls, features: FeatureConfig, validation: ValidationConfig) -> ContractReader:
        """A reader of frames already in the contract's names (a lead posted to the API)."""
        return cls(features.attributes, validation, tuple(features.activity_types))

    @property
    def id_column(self) -> str:
        """The user's name of the lead id column (ids are read as text, keeping zeros)."""
        inverse = {contract: user for user, contract in self.column_mapping.items()}
        return inverse.get(LEAD_ID, LEAD_ID)

    def _leads_expected(self) -> list[str]:
        outcome = [self.outcome.column] if self.outcome is not None else []
        contract = [*LEAD_REQUIRED, OWNER, SEGMENT, *self.attributes.names, *self.display]
        mapped = set(self.column_mapping.values())  # those come from the mapping's columns
        return [*self.column_mapping, *outcome, *(c for c in contract if c not in mapped)]

    def tidy(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        """The leads' header tidied (``features.hygiene.tidy_header``) and its counts."""
        return hygiene.tidy_header(raw, self._leads_expected(), self.leads_source)

    def onto_contract(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Rename, drop excluded and sensitive columns, number rows if needed, map the outcome.

        Header names are trimmed and matched regardless of case first; a declared
        attribute column missing stops the run (its scores would be wrong).
        """
        frame, _ = self.tidy(raw)
        frame = frame.rename(columns=dict(self.column_mapping))
        frame = frame.drop(columns=self.drop_columns(frame.columns))
        if self.lead_id_from_row:
            frame[LEAD_ID] = [f"row-{i}" for i in range(1, len(frame) + 1)]
        if self.outcome is not None:
            if self.outcome.column not in frame.columns:
                raise ContractError(
                    f"{self.leads_source}: outcome column '{self.outcome.column}' missing; "
                    f"found {list(frame.columns)}"
                )
            frame[STATUS] = map_outcome(frame[self.outcome.column], self.outcome)
        return frame

    def lead_ids(self, raw: pd.DataFrame) -> pd.Series:
        """A part's lead ids as compared (``hygiene.id_keys``), to find ids duplicated
        across parts."""
        frame = self.onto_contract(raw)
        require_columns(frame, (LEAD_ID, STATUS) if self.flat else LEAD_REQUIRED, self.leads_source)
        return hygiene.id_keys(as_text(frame[LEAD_ID]))

    def leads(
        self,
        raw: pd.DataFrame,
        now: pd.Timestamp | None = None,
        *,
        rows: np.ndarray | None = None,
        duplicated: pd.Index | None = None,
        table_rules: bool = True,
    ) -> Checked:
        """The leads table (or a part of it: ``rows``, ``duplicated``, ``table_rules`` as in
        ``features.contract.prepare_leads``) mapped, typed and checked."""
        frame = self.onto_contract(raw)
        checked = prepare_leads(
            frame,
            source=self.leads_source,
            attributes=self.attributes,
            validation=self.validation,
            now=now,
            flat=self.flat,
            date_format=self.leads_date_format,
            rows=rows,
            table_rules=table_rules,
            duplicated=duplicated,
            lines=self.leads_lines,
            thousands=self.thousands,
            decimal=self.decimal,
            display=self.display,
            engine=self.engine,
        )
        if self.outcome is not None:
            checked = _name_unlisted(checked, frame, self.outcome, rows)
        return _noted(checked, self.tidy(raw)[1])

    def activities(
        self,
        raw: pd.DataFrame,
        known_leads: pd.DataFrame | pd.Series | LeadIndex,
        now: pd.Timestamp | None = None,
        *,
        rows: np.ndarray | None = None,
        table_rules: bool = True,
    ) -> Checked:
        """The activity log (or a part of it) mapped, typed and checked against the clean
        leads (their frame, or ``created_by_lead`` of it)."""
        mapped = set(self.column_mapping.values())
        contract = [c for c in (*ACTIVITY_REQUIRED, VALUE) if c not in mapped]
        expected = [*self.column_mapping, *contract]
        frame, notes = hygiene.tidy_header(raw, expected, self.activities_source)
        checked = prepare_activities(
            frame.rename(columns=dict(self.column_mapping)),
            known_leads,
            source=self.activities_source,
            known_types=list(self.activity_types),
            validation=self.validation,
            now=now,
            date_format=self.activities_date_format,
            rows=rows,
            table_rules=table_rules,
            lines=self.activities_lines,
            thousands=self.thousands,
            decimal=self.decimal,
            duplicates=self.duplicate_activities,
            engine=self.engine,
        )
        return _noted(checked, notes)

    def whole_leads(self, raw: pd.DataFrame, now: pd.Timestamp | None = None) -> Checked:
        """The whole leads table checked at once; every row ends clean or quarantined."""
        checked = self.leads(raw, now)
        conserved(self.leads_source, len(raw), len(checked.rows), len(checked.quarantine))
        return checked

    def whole_activities(
        self, raw: pd.DataFrame, known_leads: pd.DataFrame, now: pd.Timestamp | None = None
    ) -> Checked:
        """The whole activity log checked at once; every row ends clean or quarantined."""
        checked = self.activities(raw, known_leads, now)
        conserved(
            self.activities_source,
            len(raw),
            len(checked.rows),
            len(checked.quarantine),
            checked.dropped,
        )
        return checked

    def posted(
        self,
        lead: pd.DataFrame,
        activities: pd.DataFrame,
        now: pd.Timestamp | None = None,
    ) -> tuple[Checked, Checked]:
        """One lead (a one-row frame) and its activities, as a client posts them.

        One posted lead is not a table: the table rules (null share, bad-row share) do not
        apply; every row rule does, and a refused row raises :class:`RefusedError` with the
        reason its row would be quarantined for in a file (``lead refused: ...``,
        ``activity <n> refused: ...``, ``n`` counting the posted activities from 0).
        """
        lenient = {"max_bad_row_share": 1.0, "max_null_share": 1.0}
        single = self.validation.model_copy(update=lenient)
        reader = replace(
            self,
            validation=single,
            leads_source="request.lead",
            activities_source="request.activities",
        )
        try:
            leads = reader.whole_leads(lead, now)
        except ContractError as exc:
            raise RefusedError(f"lead refused: {exc}") from exc
        if len(leads.quarantine):
            raise RefusedError(f"lead refused: {leads.quarantine['reason'].iloc[0]}")
        try:
            acts = reader.whole_activities(activities, leads.rows, now)
        except ContractError as exc:
            raise RefusedError(f"activities refused: {exc}") from exc
        if len(acts.quarantine):
            first = acts.quarantine.iloc[0]
            raise RefusedError(f"activity {int(first['row'])} refused: {first['reason']}")
        return leads, acts
