"""The report's sections for sales ops: calls per week, per segment and owner, per grade.

Each function takes the window and returns the HTML of its section's body (the page adds
the titles), every column named through the glossary, one header row per table.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from leadscore.features.builder import AS_OF
from leadscore.features.contract import LEAD_ID, OWNER, SEGMENT
from leadscore.models.report.calibration import (
    GradeCalibration,
    grade_calibration,
    grade_frame,
    interval_note,
)
from leadscore.models.report.capacity import (
    capacity,
    capacity_sentence,
    capacity_svg,
    curve_values,
    periods,
    pick,
    table_values,
    weekly_volume,
)
from leadscore.models.report.groups import group_table, groups_note
from leadscore.models.report.tables import frame_html, table_html
from leadscore.models.report.window import ReportInputs

CAPACITY_NOTE = (
    "Replayed over the validation window: each period (a snapshot date, or a week) the team "
    "calls the best leads open then, as many as the calls a week allow; a call reaches a "
    "conversion when that lead converts within the horizon after it. A lead still open next "
    "period may be called again, but counts once. Ties in a score are broken in one fixed "
    "random order; \u201cat random\u201d is the mean of 20 shuffles."
)


def _lead_ids(inputs: ReportInputs) -> np.ndarray | None:
    entities = inputs.entities
    if entities is None or LEAD_ID not in entities:
        return None
    return entities[LEAD_ID].to_numpy()


def per_grade(inputs: ReportInputs) -> list[GradeCalibration]:
    """Stated vs observed per grade, intervals by lead where the lead ids are known."""
    return grade_calibration(
        inputs.y, inputs.model_probability, inputs.grades, inputs.grade_order, _lead_ids(inputs)
    )


def grades_html(inputs: ReportInputs, calibration: list[GradeCalibration]) -> str:
    """The per-grade table with its verdict in words, and how the intervals were drawn."""
    return (
        frame_html(grade_frame(calibration), "grade", classes="num words")
        + f"<p class='note'>{interval_note(_lead_ids(inputs) is not None)} Overconfident: "
        "the grade states a higher probability than its leads convert at; underconfident: "
        "lower.</p>"
    )


def capacity_html(inputs: ReportInputs) -> str:
    """The capacity section: the sentence, the SVG curve and the table."""
    entities = inputs.entities
    if entities is None or LEAD_ID not in entities:
        return "<p>This window carries no lead ids: no capacity view.</p>"
    as_of = entities[AS_OF] if AS_OF in entities else pd.Series(pd.NaT, index=entities.index)
    leads = entities[LEAD_ID]
    args = (inputs.y, inputs.model_ranking, inputs.rule_points, leads, as_of)
    volume = weekly_volume(leads, periods(as_of))
    values = table_values(volume)
    table, span = capacity(*args, calls_per_week=values)
    curve, _ = capacity(*args, calls_per_week=curve_values(volume))
    unit = "calls" if span.days is None else "calls a week"
    length = (
        "one list (the rows have no dates: N is calls in all, not a week)"
        if span.days is None
        else f"{span.count} periods of {span.days:g} days"
    )
    rows = [
        [f"{n:,}", f"{r['model']:.0f}", f"{r['rules']:.0f}", f"{r['random']:.1f}"]
        for n, r in table.iterrows()
    ]
    return (
        f"<p class='headline'>{html.escape(capacity_sentence(table, pick(values, volume), span))}"
        "</p>"
        + capacity_svg(curve, span)
        + table_html([unit, "reached: by the model", "by the rules", "at random"], rows, digits=1)
        + f"<p class='note'>{CAPACITY_NOTE} The window: {length}; {volume:,} {unit} would "
        "reach every lead of its busiest period.</p>"
    )


def group_html(inputs: ReportInputs, column: str) -> str:
    """The per-segment or per-owner table (or why there is none)."""
    entities = inputs.entities
    words = {SEGMENT: "segment", OWNER: "owner"}[column]
    if entities is None or column not in entities or entities[column].isna().all():
        return f"<p>The export names no {words} for these leads: no per-{words} view.</p>"
    table = group_table(
        entities[column],
        entities[LEAD_ID],
        inputs.y,
        inputs.model_ranking,
        inputs.model_probability,
        inputs.rule_points,
        inputs.rule_probability,
    )
    n_groups = int(entities[column].fillna("(none)").nunique())
    return f"<p class='note'>{html.escape(groups_note(words, n_groups))}</p>" + frame_html(
        table, words
    )
