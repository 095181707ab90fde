"""The evaluation report of a training run: one self-contained HTML page for people.

Pure: it takes the validation window's labels, the model's ranking and probability, the
rules' points and probability, the model's grades and exact contributions grouped into
concepts, who each row is (lead, as-of time, owner, segment) and the run's header, and
returns one HTML string whose figures are inline base64 PNGs drawn with matplotlib's Agg
canvas (no pyplot state, safe in threads) plus one inline SVG. Every number comes from
``models.evaluate`` so the page, the JSON line and MLflow agree; every metric is named in
words through ``report.glossary``.

Sections: headline sentence and header (run, model version, data window, MLflow address),
model vs rules in words, conversions reached per calls a week (model, rules, random),
per-segment and per-owner tables, calibration per grade said plainly (over- or
underconfident with its interval), ROC and precision-recall, gains and lift by decile,
score distribution, what drives the score by concept, importance by family (fit,
engagement, lifecycle), the glossary, the rules card.
"""

from leadscore.models.report.charts import gains_by_decile, grade_table
from leadscore.models.report.header import RunHeader
from leadscore.models.report.page import (
    SECTIONS,
    comparison_table,
    quality_sentence,
    render_report,
    targets_table,
)
from leadscore.models.report.window import ReportInputs, headline, report_metrics, window_inputs

__all__ = [
    "SECTIONS",
    "ReportInputs",
    "RunHeader",
    "comparison_table",
    "gains_by_decile",
    "grade_table",
    "headline",
    "quality_sentence",
    "render_report",
    "report_metrics",
    "targets_table",
    "window_inputs",
]
