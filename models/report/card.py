"""The report's rules card: every rule of the points baseline and how it did on the window.

One row per card line (``models.rules.card_lines``): ICP value scores, activity points,
penalties and numeric ranges alike, with the points each gives and, on the validation
window, how many leads it applied to and how many of those converted. A marketer reads it
as their points card checked against outcomes.
"""

from __future__ import annotations

import pandas as pd

from leadscore.models.report.tables import table_html
from leadscore.models.rules import points_text

CARD_NOTE = (
    "Every rule of the points baseline (<code>rules:</code> in the config) and the points "
    "it gives; numeric ranges are half-open, [min, max): min inclusive, max exclusive. An "
    "ICP line gives the attribute's weighted share of <code>icp_points</code> at that value "
    "score, an activity line its points per occurrence. A lead's rule score is the sum, "
    "not clipped (it ranks leads). Leads, share and conversion rate are those of the "
    "validation window."
)


def card_frame(card: pd.DataFrame) -> pd.DataFrame:
    """The card as the page shows it: signed points, counts with separators, percentages."""
    shown = card.assign(
        points=card["points"].map(points_text),
        leads=card["leads"].map(lambda n: f"{n:,}"),
        share=card["share"].map(lambda v: f"{v:.1%}"),
    )
    if "conversion_rate" in card:
        shown["conversion_rate"] = card["conversion_rate"].map(
            lambda v: "-" if pd.isna(v) else f"{v:.1%}"
        )
    return shown.rename(columns={"conversion_rate": "conversion rate"})


def rules_card_html(card: pd.DataFrame | None) -> str:
    """The card section's body: the note and the table (or why there is none)."""
    if card is None:
        return "<p>No rules card was given to this report.</p>"
    if card.empty:
        return "<p>The rules declare no points: every lead scores 0.</p>"
    shown = card_frame(card)
    rows = shown.astype(object).where(shown.notna(), None).to_numpy().tolist()
    table = table_html(list(shown.columns), rows, classes="card", row_headers=False)
    return f"<p>{CARD_NOTE}</p>{table}"
