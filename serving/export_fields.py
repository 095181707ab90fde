"""The columns of the CSV a CRM imports (``data/scores/latest.csv``), declared once.

Each column says what it holds, how to use it in an import (a key to match records on,
a property to create, or context for a person reading the file) and the property type to
create for it in HubSpot and in Salesforce. The writer (``serving/export.py``) writes
:data:`EXPORT_COLUMNS` in this order; docs/crm-import.md shows :func:`markdown_table`
(a test checks the two agree).

What the file holds, and why: the probability rounded to 4 places; the fit and
engagement sub-scores on 0-100 (the raw log-odds sums stay in the API); the quadrant
``cell``; the three strongest reasons as short text columns (``reason_1``..``reason_3``,
``"text (+)"``: the marker at the end, so no cell starts with ``+`` or ``-``), and no
JSON (the API and ``leadscore export --format jsonl`` carry every reason in full); the
CRM's own ``record_id``, ``email``, ``name`` and ``company`` when ``data.display`` maps
them (empty otherwise), to match the import on; the rep whose call list has the lead
today and its place there (``call_rep``, ``call_position``; issue #18), empty otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Use = Literal["key", "property", "context"]
"""How an import uses a column: match records on it, store it in a property made for it,
or only show it to whoever reads the file (the CRM has it already)."""

REASONS = 3
"""Reason columns: ``reason_1`` (the strongest) to ``reason_3`` (declared below)."""

PROPERTY_PREFIX = "leadscore_"
"""Suggested name of the property a column goes to: ``leadscore_<column>``."""


@dataclass(frozen=True)
class ExportField:
    """One column of the CRM export."""

    name: str
    meaning: str
    use: Use
    hubspot: str
    """HubSpot property field type to create (contacts)."""
    salesforce: str
    """Salesforce custom field type to create (Lead)."""

    @property
    def property_name(self) -> str:
        """The CRM property to create for it (``leadscore_score``), or ``-``."""
        return f"{PROPERTY_PREFIX}{self.name}" if self.use == "property" else "-"


_TEXT = ("Single-line text", "Text(255)")
_READ = ("-", "-")  # context: the CRM has it already, or it is only for whoever reads
_SCORE = ("Number", "Number(3, 0)")

EXPORT_FIELDS: tuple[ExportField, ...] = (
    ExportField(
        "lead_id",
        "The lead's id in the data leadscore read; read it as text (`00042` keeps its zeros).",
        "key",
        *_TEXT,
    ),
    ExportField(
        "record_id",
        "The CRM's own record id (`data.display.record_id`: HubSpot Record ID, Salesforce "
        "Lead ID); empty when not mapped.",
        "key",
        "(Record ID, built in)",
        "(Lead ID, built in)",
    ),
    ExportField(
        "email",
        "The lead's email (`data.display.email`); empty when not mapped.",
        "key",
        "(Email, built in)",
        "(Email, built in)",
    ),
    ExportField("name", "Contact name (`data.display.name`), to read.", "context", *_READ),
    ExportField("company", "Company (`data.display.company`), to read.", "context", *_READ),
    ExportField(
        "score",
        "Calibrated probability of converting within the horizon, as 0-100: sort on it.",
        "property",
        *_SCORE,
    ),
    ExportField(
        "grade",
        "Band of the score from `scoring.grades` (A is best).",
        "property",
        "Dropdown select (A, B, C, D)",
        "Picklist (A, B, C, D)",
    ),
    ExportField(
        "cell",
        "Fit x engagement quadrant: call_now, nurture, educate or deprioritise.",
        "property",
        "Dropdown select (internal values as written)",
        "Picklist (values as written)",
    ),
    ExportField(
        "fit_score",
        "Fit (profile) as 0-100: the share of the training leads with a lower fit.",
        "property",
        *_SCORE,
    ),
    ExportField(
        "engagement_score",
        "Engagement (behaviour) as 0-100: the share of the training leads with less.",
        "property",
        *_SCORE,
    ),
    *(
        ExportField(
            f"reason_{i}",
            f"The {ordinal} reason, ending in (+) if it raised the score, (-) if it "
            "lowered it; empty if the lead has fewer.",
            "property",
            *_TEXT,
        )
        for i, ordinal in enumerate(("strongest", "second strongest", "third strongest"), 1)
    ),
    ExportField(
        "call_rep",
        "Id of the rep whose call list has the lead today (`routing.reps`), to set the "
        "owner or a call task; empty when it is on no list.",
        "property",
        *_TEXT,
    ),
    ExportField(
        "call_position",
        "Its place on that rep's list (1 = call first); empty when on no list.",
        "property",
        "Number",
        "Number(5, 0)",
    ),
    ExportField(
        "probability",
        "Calibrated probability of converting within the horizon (0-1, 4 decimals).",
        "property",
        "Number",
        "Number(1, 4)",
    ),
    ExportField(
        "rank",
        "Position among this batch's open leads (1 = best).",
        "property",
        "Number",
        "Number(9, 0)",
    ),
    ExportField(
        "percentile",
        "Share of this batch's open leads scoring at or below this one (0-100).",
        "property",
        "Number",
        "Number(3, 2)",
    ),
    ExportField(
        "rule_score",
        "The rule-based baseline's points (ranks leads; not bounded to 0-100).",
        "property",
        "Number",
        "Number(6, 2)",
    ),
    ExportField(
        "rule_grade",
        "The rule-based baseline's grade (`rules.grades`).",
        "property",
        "Dropdown select (A, B, C, D)",
        "Picklist (A, B, C, D)",
    ),
    ExportField(
        "rule_rank",
        "Position by rule score (1 = best).",
        "property",
        "Number",
        "Number(9, 0)",
    ),
    ExportField(
        "last_activity",
        "The lead's latest activity before scoring (its label); empty if none.",
        "property",
        *_TEXT,
    ),
    ExportField(
        "last_activity_at",
        "When (ISO 8601 UTC, e.g. `2026-11-21T16:02:00Z`); empty if none.",
        "property",
        "Date and time picker",
        "Date/Time",
    ),
    ExportField("owner", "Lead owner as given in the source data.", "context", *_READ),
    ExportField("segment", "Lead segment as given in the source data.", "context", *_READ),
    ExportField(
        "model_version",
        "Registered model version that scored the batch (audits, rollbacks).",
        "property",
        *_TEXT,
    ),
    ExportField(
        "batch_id",
        "Scoring batch the row belongs to, e.g. `20261122T031500Z-a1b2c3`.",
        "context",
        *_READ,
    ),
    ExportField(
        "scored_at",
        "The time the features were computed as of (ISO 8601 UTC, `2026-11-22T03:15:00Z`).",
        "property",
        "Date and time picker",
        "Date/Time",
    ),
)
"""The CRM export's columns, in file order: keys to match on first, then what a rep sorts
and reads, then the figures behind them, then the batch's."""

EXPORT_COLUMNS: list[str] = [f.name for f in EXPORT_FIELDS]
"""Column names of the CSV export, in file order."""

REASON_COLUMNS: list[str] = [f"reason_{i}" for i in range(1, REASONS + 1)]

_USE_WORDS = {"key": "match on it", "property": "import", "context": "read only"}


def markdown_table() -> str:
    """The field list of docs/crm-import.md: one row per column, in file order."""
    rows = [
        "| column | meaning | use | HubSpot property (contacts) | Salesforce field (Lead) |",
        "|---|---|---|---|---|",
    ]
    for f in EXPORT_FIELDS:
        if f.use == "property":
            hubspot = f"`{f.property_name}`: {f.hubspot}"
            salesforce = f"`{_salesforce_name(f.name)}`: {f.salesforce}"
        else:
            hubspot, salesforce = f.hubspot, f.salesforce
        rows.append(
            f"| `{f.name}` | {f.meaning} | {_USE_WORDS[f.use]} | {hubspot} | {salesforce} |"
        )
    return "\n".join(rows)


def _salesforce_name(column: str) -> str:
    """A Salesforce custom field's API name: ``Leadscore_Fit_Score__c``."""
    words = f"{PROPERTY_PREFIX}{column}".split("_")
    return "_".join(w.capitalize() for w in words) + "__c"
