"""The monitoring report: one self-contained HTML page of a monitor run, for people.

Decision first, in words (retrain or not, and every reason). Then the plain question the
closed loop answers, "did the leads we told you to call first convert more, and by how
much more than the rules would have?": per batch, live ROC-AUC of model and rules with the
days watched and whether the batch is mature (final) or still maturing (interim, never
used for a retrain); the estimated ROC-AUC of young batches; realised against predicted
conversion per grade with 95% intervals; conversions found in the top k%; the newest
batch's drift per attribute, worst first, with its biggest move in words; the share of
rows set aside per batch. Tables and words reuse the evaluation report's helpers
(``models.report``: one-header-row tables, its style, calibration verdicts); charts are
inline SVG; the page fetches nothing.
"""

from __future__ import annotations

import html

import pandas as pd

from leadscore.models.monitor import words
from leadscore.models.monitor.report_sections import (
    batch_name,
    capture,
    capture_html,
    captures,
    day,
    drift_html,
    drift_rows,
    grades_html,
    newest_mature,
    num,
    sentence,
    trends_html,
)
from leadscore.models.monitor.result import MonitorResult
from leadscore.models.monitor.svg import Series, line_chart
from leadscore.models.report.page import _STYLE
from leadscore.models.report.tables import table_html

__all__ = ["SECTIONS", "drift_rows", "render_monitor_report"]

SECTIONS = (
    "What to do",
    "Did the leads we told you to call first convert more?",
    "Estimated ROC-AUC of batches still maturing",
    "Conversion per grade: predicted against realised",
    "Conversions found at the top of the list",
    "Drift of the newest batch",
    "Scores and data quality over time",
    "Glossary",
)
"""Section titles, in page order (tests check every one is present)."""

_MODEL, _RULES, _ESTIMATE = "#1f77b4", "#ff7f0e", "#2ca02c"


def decision_html(result: MonitorResult) -> str:
    """The decision as the page's first words, its reasons listed, and the run's facts."""
    d = result.decision
    verdict = "Retrain the model" if d.action == "retrain" else "No action needed"
    reasons = "".join(f"<li>{html.escape(words.in_words(r))}</li>" for r in d.reasons)
    sentence = f"<strong>{verdict}.</strong> {html.escape(words.in_words(d.text))}"
    if d.action == "retrain":
        out = f"<div class='warn' id='decision'><p>{sentence}</p></div>"
    else:
        out = f"<p class='headline' id='decision'>{sentence}</p>"

    if reasons:
        out += f"<p>Why:</p><ul id='reasons'>{reasons}</ul>"
    if d.action == "retrain":
        out += (
            "<p class='note'>A retrain is started when the config allows it "
            "(<code>monitor.retrain</code>); the gate still decides whether the new model "
            "replaces the champion.</p>"
        )
    facts = [
        ("monitor ran", pd.Timestamp(result.created_at).strftime("%Y-%m-%d %H:%M UTC")),
        ("outcomes known up to", day(result.now)),
        ("champion model", f"version {result.champion_version or 'unknown'}"),
        ("horizon", f"{result.horizon_days} days: a batch is final once watched this long"),
        (
            "batches judged",
            f"{len(result.batches)} ({sum(b.mature for b in result.batches)} mature)",
        ),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return out + f"<table class='ctx'>{body}</table>"


def answer_sentence(result: MonitorResult) -> str:
    """The plain answer, on the newest mature batch (final figures)."""
    b = newest_mature(result)
    if b is None:
        return (
            f"No batch has been watched for the full {result.horizon_days} days yet: every "
            "figure below is interim (conversions so far)."
        )
    text = (
        f"In the newest mature batch (scored {day(b.as_of)}: {b.n_leads:,} leads, "
        f"{b.conversions:,} conversions in {b.observed_days} days)"
    )
    model, rules = b.metrics.get("roc_auc"), b.metrics.get("roc_auc_rules")
    if model is None or rules is None:
        return text + ": too few conversions to rank model against rules."
    text += (
        f", the model ranked a converting lead above a non-converting one "
        f"{model:.1%} of the time, the rules {rules:.1%} (live ROC-AUC {model:.3f} against "
        f"{rules:.3f}, {model - rules:+.3f})"
    )
    ks = captures([b])
    if ks:
        k = ks[len(ks) // 2]
        m, r = capture(b, k, False), capture(b, k, True)
        if m is not None and r is not None:
            text += (
                f"; the model's top {k:g}% held {m:.1%} of the conversions, the rules' "
                f"top {k:g}% {r:.1%}"
            )
    return text + "."


def batches_html(result: MonitorResult) -> str:
    """Per batch: how long watched, live ROC-AUC model vs rules, PR-AUC, calibration."""
    header = [
        "batch (scored on)",
        "model version",
        "leads",
        "outcome known",
        "conversions so far",
        words.label("observed_days"),
        "status",
        words.label("roc_auc"),
        words.label("roc_auc_rules"),
        "model minus rules",
        words.label("pr_auc"),
        words.label("pr_auc_rules"),
        words.label("ece"),
    ]
    rows = []
    for b in reversed(result.batches):
        m, r = b.metrics.get("roc_auc"), b.metrics.get("roc_auc_rules")
        rows.append(
            [
                batch_name(b),
                b.model_version,
                f"{b.n_leads:,}",
                f"{b.n_known:,}",
                f"{b.conversions:,}",
                f"{b.observed_days} of {result.horizon_days}",
                "mature" if b.mature else "still maturing",
                num(m),
                num(r),
                "-" if m is None or r is None else f"{m - r:+.3f}",
                num(b.metrics.get("pr_auc")),
                num(b.metrics.get("pr_auc_rules")),
                num(b.metrics.get("ece")),
            ]
        )
    labels = [day(b.as_of) for b in result.batches]
    chart = line_chart(
        "ROC-AUC per batch",
        labels,
        [
            Series("model, live", [b.metrics.get("roc_auc") for b in result.batches], _MODEL),
            Series("rules, live", [b.metrics.get("roc_auc_rules") for b in result.batches], _RULES),
            Series(
                "model, estimated",
                [b.metrics.get("estimated_roc_auc") for b in result.batches],
                _ESTIMATE,
                dashed=True,
            ),
        ],
        "ROC-AUC",
    )
    note = (
        "<p class='note'>Newest batch first. A batch still maturing shows conversions so far; "
        "its live figures (when there are enough conversions) are interim and never decide a "
        "retrain. Leads gone from the source have no known outcome and are left out, never "
        "guessed. A dash: too few conversions to measure.</p>"
    )
    return (
        f"<p id='answer'>{html.escape(answer_sentence(result))}</p>"
        + table_html(header, rows, classes="num")
        + note
        + chart
    )


def estimates_html(result: MonitorResult) -> str:
    """Young batches: the ROC-AUC to expect, beside the live figure so far."""
    young = [b for b in reversed(result.batches) if not b.mature]
    if not young:
        return "<p>Every batch is mature: no estimate needed.</p>"
    rows = [
        [
            batch_name(b),
            f"{b.observed_days} of {result.horizon_days}",
            num(b.metrics.get("estimated_roc_auc")),
            num(b.metrics.get("roc_auc")),
        ]
        for b in young
    ]
    header = ["batch (scored on)", words.label("observed_days"), "estimated ROC-AUC", "live so far"]
    return f"<p>{html.escape(sentence(words.TERMS['estimated_roc_auc'].meaning))}</p>" + table_html(
        header, rows
    )


def glossary_html() -> str:
    rows = [[t.name, t.meaning] for t in words.TERMS.values()]
    rows.append(
        [
            "conversions in the top k%",
            "share of the batch's conversions found among its best-ranked k% of leads",
        ]
    )
    return table_html(["term", "what it means"], rows, classes="words")


def render_monitor_report(result: MonitorResult) -> str:
    """The whole monitoring report as one HTML string (charts inline, no external file)."""
    title = "Monitoring: published scores against what happened"
    body = [
        decision_html(result),
        batches_html(result),
        estimates_html(result),
        grades_html(result),
        capture_html(result),
        drift_html(result),
        trends_html(result),
        glossary_html(),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
    ]
    for section, content in zip(SECTIONS, body, strict=True):
        parts += [f"<h2>{section}</h2>", content]
    parts.append("</body></html>")
    return "\n".join(parts)
