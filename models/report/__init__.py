"""The evaluation report of a training run: one self-contained HTML page.

Pure: it takes the validation window's labels, the model's ranking and probability, the
rules' points and probability, the model's grades and exact contributions with each
feature's family, and returns one HTML string whose figures are inline base64 PNGs drawn
with matplotlib's Agg canvas (no pyplot state, no display, safe in threads). Every number
in it comes from ``models.evaluate`` so the page, the JSON line and MLflow agree.

Sections: headline sentence, model vs rules table, ROC and precision-recall curves,
cumulative gains and lift by decile, calibration (per score band and per grade), score
distribution of converted vs lost, SHAP summary (global importance and beeswarm),
importance by family (fit vs engagement), the rules card (every rule's points and how
many leads of the window it applied to, and converted).
"""

from leadscore.models.report.charts import gains_by_decile, grade_table
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
