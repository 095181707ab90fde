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
import math
from collections.abc import Sequence

import pandas as pd

from leadscore.models.monitor import words
from leadscore.models.monitor.result import BatchResult, MonitorResult
from leadscore.models.monitor.svg import Series, line_chart
from leadscore.models.report.calibration import GradeCalibration
from leadscore.models.report.page import _STYLE
from leadscore.models.report.tables import table_html

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


def _num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def _day(stamp: object) -> str:
    value = pd.Timestamp(stamp)  # type: ignore[arg-type]
    return "?" if pd.isna(value) else value.strftime("%Y-%m-%d")


def _batch_name(b: BatchResult) -> str:
    return f"{_day(b.as_of)} ({b.batch_id})"


def _newest_mature(result: MonitorResult) -> BatchResult | None:
    return next((b for b in reversed(result.batches) if b.mature), None)


def _captures(batches: Sequence[BatchResult]) -> list[float]:
    """The top-k% shares the batches carry (``capture_top_<k>``), smallest first."""
    found = {words.capture_key(k) for b in batches for k in b.metrics}
    return sorted({k for k, _ in (f for f in found if f is not None)})


def _capture(b: BatchResult, k: float, rules: bool) -> float | None:
    for key, value in b.metrics.items():
        if words.capture_key(key) == (k, rules):
            return value
    return None


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
        ("outcomes known up to", _day(result.now)),
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
    b = _newest_mature(result)
    if b is None:
        return (
            f"No batch has been watched for the full {result.horizon_days} days yet: every "
            "figure below is interim (conversions so far)."
        )
    text = (
        f"In the newest mature batch (scored {_day(b.as_of)}: {b.n_leads:,} leads, "
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
    ks = _captures([b])
    if ks:
        k = ks[len(ks) // 2]
        m, r = _capture(b, k, False), _capture(b, k, True)
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
                _batch_name(b),
                b.model_version,
                f"{b.n_leads:,}",
                f"{b.n_known:,}",
                f"{b.conversions:,}",
                f"{b.observed_days} of {result.horizon_days}",
                words.maturity(b.mature, b.observed_days, result.horizon_days),
                _num(m),
                _num(r),
                "-" if m is None or r is None else f"{m - r:+.3f}",
                _num(b.metrics.get("pr_auc")),
                _num(b.metrics.get("pr_auc_rules")),
                _num(b.metrics.get("ece")),
            ]
        )
    labels = [_day(b.as_of) for b in result.batches]
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
            _batch_name(b),
            f"{b.observed_days} of {result.horizon_days}",
            _num(b.metrics.get("estimated_roc_auc")),
            _num(b.metrics.get("roc_auc")),
        ]
        for b in young
    ]
    header = ["batch (scored on)", words.label("observed_days"), "estimated ROC-AUC", "live so far"]
    return (
        f"<p>{html.escape(words.TERMS['estimated_roc_auc'].meaning.capitalize())}.</p>"
        + table_html(header, rows)
    )


def _calibration(row: pd.Series) -> GradeCalibration:
    return GradeCalibration(
        str(row["grade"]),
        int(row["n"]),
        float(row["predicted"]) if pd.notna(row["predicted"]) else float("nan"),
        float(row["realised"]) if pd.notna(row["realised"]) else float("nan"),
        float(row["low"]) if pd.notna(row["low"]) else float("nan"),
        float(row["high"]) if pd.notna(row["high"]) else float("nan"),
    )


def grade_rows(b: BatchResult) -> list[list[object]]:
    """One row per grade: the model's grade beside the rules' grade of the same letter."""
    grades = b.grades
    order = list(dict.fromkeys(grades["grade"].astype(str)))
    rows: list[list[object]] = []
    for grade in order:
        row: list[object] = [grade]
        for ranking in ("model", "rules"):
            part = grades[(grades["ranking"] == ranking) & (grades["grade"].astype(str) == grade)]
            if part.empty:
                row += ["-"] * (6 if ranking == "model" else 4)
                continue
            g = _calibration(part.iloc[0])
            interval = "-" if math.isnan(g.low) else f"{g.low:.1%} to {g.high:.1%}"
            cells = [f"{g.rows:,}", f"{int(part.iloc[0]['conversions']):,}"]
            if ranking == "model":
                cells.append(words.share(g.predicted))
            cells += [words.share(g.observed), interval]
            if ranking == "model":
                cells.append(g.verdict if b.mature else "still maturing")
            row += cells
        rows.append(row)
    return rows


_GRADE_HEADER = [
    "grade",
    "model: leads",
    "model: conversions",
    "model: predicted",
    "model: realised",
    "model: 95% interval",
    "model: verdict",
    "rules: leads",
    "rules: conversions",
    "rules: realised",
    "rules: 95% interval",
]


def grades_html(result: MonitorResult) -> str:
    """Per batch, newest first (the newest mature one open): each grade's realised
    conversion against what the model predicted, model and rules side by side."""
    shown = [b for b in reversed(result.batches) if not b.grades.empty]
    if not shown:
        return "<p>No grade has a known outcome yet.</p>"
    opened = _newest_mature(result) or shown[0]
    parts = [
        "<p>For each grade: how many of its leads converted within the days watched "
        "(realised) against the probability the model stated (predicted). Model grades and "
        "rules grades of the same letter side by side: a good ranking converts more in its "
        "top grade and less in its bottom one. Overconfident: the grade converts below what "
        "it states (the 95% Wilson interval excludes it); underconfident: above. A batch "
        "still maturing has no verdict: its conversions are not all in.</p>"
    ]
    for b in shown:
        status = words.maturity(b.mature, b.observed_days, result.horizon_days)
        summary = f"Batch scored {_batch_name(b)}: {status}"
        table = table_html(_GRADE_HEADER, grade_rows(b), classes="num words")
        attr = " open" if b is opened else ""
        parts.append(f"<details{attr}><summary>{html.escape(summary)}</summary>{table}</details>")
    return "".join(parts)


def capture_html(result: MonitorResult) -> str:
    """Per batch: the share of its conversions among the top k% of leads, model vs rules."""
    ks = _captures(result.batches)
    if not ks:
        return "<p>No capture was measured.</p>"
    header = ["batch (scored on)", "status"] + [
        f"top {k:g}%: {side}" for k in ks for side in ("model", "rules")
    ]
    rows = [
        [
            _batch_name(b),
            words.maturity(b.mature, b.observed_days, result.horizon_days),
            *(words.share(_capture(b, k, rules)) for k in ks for rules in (False, True)),
        ]
        for b in reversed(result.batches)
    ]
    return (
        "<p>Of all the conversions of a batch, the share found among its best-ranked leads: "
        "what a team that calls only the top of the list would have reached.</p>"
        + table_html(header, rows)
    )


def drift_rows(drift: pd.DataFrame) -> list[list[object]]:
    """The drift of one batch, worst first (largest PSI; unmeasured last)."""
    order = drift.assign(_psi=pd.to_numeric(drift["psi"], errors="coerce")).sort_values(
        "_psi", ascending=False, na_position="last", kind="stable"
    )
    rows: list[list[object]] = []
    for _, r in order.iterrows():
        psi = None if pd.isna(r["_psi"]) else float(r["_psi"])
        name = "the score itself" if r["kind"] == "prediction" else str(r["feature"])
        unseen = r.get("unseen_now")
        rows.append(
            [
                name,
                str(r["kind"]),
                _num(psi),
                words.psi_words(psi),
                f"{words.share(r['missing_ref'])} -> {words.share(r['missing_now'])}",
                "-" if unseen is None or pd.isna(unseen) else words.share(unseen),
                str(r["top_shift"]) if pd.notna(r["top_shift"]) and r["top_shift"] else "-",
            ]
        )
    return rows


def drift_html(result: MonitorResult) -> str:
    """The newest batch's drift against the training leads, worst first."""
    if not result.batches:
        return "<p>No batch archived yet.</p>"
    b = result.batches[-1]
    if b.drift.empty:
        return (
            f"<p>Batch scored {html.escape(_batch_name(b))}: no reference profile came with "
            "its model, so no drift was measured.</p>"
        )
    header = [
        "attribute",
        "kind",
        words.label("psi"),
        "moved",
        "missing: training -> tonight",
        words.label("unseen"),
        words.label("top_shift"),
    ]
    return (
        f"<p>Batch scored {html.escape(_batch_name(b))}, against the training leads of its "
        f"model (version {html.escape(b.model_version)}). Worst first. "
        f"{html.escape(words.TERMS['psi'].meaning.capitalize())}.</p>"
        + table_html(header, drift_rows(b.drift), classes="num words")
    )


def _quarantine_words(b: BatchResult) -> str:
    if not b.quarantine:
        return "none"
    parts = sorted(b.quarantine.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{reason}: {n:,}" for reason, n in parts)


def trends_html(result: MonitorResult) -> str:
    """Per batch: how far the scores and the attributes moved, and the rows set aside."""
    header = [
        "batch (scored on)",
        words.label("prediction_psi"),
        words.label("max_feature_psi"),
        words.label("quarantine_share"),
        "set aside, by reason",
    ]
    rows = [
        [
            _batch_name(b),
            _num(b.metrics.get("prediction_psi")),
            _num(b.metrics.get("max_feature_psi")),
            words.share(b.metrics.get("quarantine_share"), 2),
            _quarantine_words(b),
        ]
        for b in reversed(result.batches)
    ]
    shares = [b.metrics.get("quarantine_share") for b in result.batches]
    top = max([float(s) for s in shares if s is not None and not math.isnan(s)] + [0.01])
    chart = line_chart(
        "Share of rows set aside per batch",
        [_day(b.as_of) for b in result.batches],
        [Series("rows set aside", [None if s is None else 100 * s for s in shares], "#b3261e")],
        "% of rows read",
        y_range=(0.0, 100 * top * 1.2),
        y_format="{:.1f}%",
    )
    return table_html(header, rows, classes="num words") + chart


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
