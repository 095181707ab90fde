"""The evaluation report as one self-contained HTML page (figures inline, no other file).

Written for the people who act on the scores: a header naming the run, the model version,
the data window and where to look in MLflow; metrics in words with what each means (one
glossary, ``report.glossary``); how many conversions N calls a week reach; the model per
segment and per owner; calibration per grade said plainly; what drives the score by
concept. Every table has one header row of words.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd

from leadscore.features.contract import OWNER, SEGMENT
from leadscore.models.quality import TargetResult
from leadscore.models.report.calibration import GradeCalibration, ece_sentence, flagged_words
from leadscore.models.report.card import rules_card_html
from leadscore.models.report.charts import (
    TOP_FEATURES,
    calibration_figure,
    curves_figure,
    distribution_figure,
    family_figure,
    gains_figure,
    importance_table,
    shap_figure,
)
from leadscore.models.report.glossary import COLUMNS, METRICS, family_label, label, term
from leadscore.models.report.header import header_rows
from leadscore.models.report.tables import Raw, frame_html, table_html
from leadscore.models.report.views import capacity_html, grades_html, group_html, per_grade
from leadscore.models.report.window import ReportInputs, headline, report_metrics

SECTIONS = (
    "Model vs rules",
    "Calls per week: conversions reached",
    "By segment",
    "By owner",
    "Calibration",
    "ROC and precision-recall",
    "Cumulative gains and lift by decile",
    "Score distribution",
    "What drives the score",
    "Importance by family",
    "Glossary",
    "Rules card",
)
"""Section titles, in page order (tests check every one is present)."""


def comparison_table(
    metrics: Mapping[str, Mapping[str, float]], oracle: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Model vs rules (and the oracle when known) on the same window, one metric per row
    (the index: the metrics' keys, in the glossary's order)."""
    columns = {"model": metrics["model"], "rules": metrics["rules"]}
    if oracle:
        columns["oracle"] = oracle
    return pd.DataFrame(
        {name: [float(m.get(k, float("nan"))) for k in METRICS] for name, m in columns.items()},
        index=pd.Index(list(METRICS), name="metric"),
    )


def _comparison_html(table: pd.DataFrame) -> str:
    """The comparison in words: metric, each column's value, what the metric means."""
    rows = [
        [term(key).name, *values.tolist(), term(key).meaning] for key, values in table.iterrows()
    ]
    header = ["metric", *table.columns, "what it means"]
    return table_html(header, rows, classes="num words")


def targets_table(
    targets: Sequence[TargetResult], calibration: Sequence[GradeCalibration] = ()
) -> pd.DataFrame:
    """The quality targets as the report shows them: bound, value, interval, verdict. A
    calibration target met on average while a grade is off says so in its verdict."""
    levels = sorted({f"{t.confidence:.0%}" for t in targets})
    off = flagged_words(calibration)

    def verdict(t: TargetResult) -> str:
        if t.name == "ece" and t.met and off:
            return f"met on average, but {off}"
        return "met" if t.met else "missed"

    return pd.DataFrame(
        {
            "target": [f"{t.description} {t.op} {t.bound:g}" for t in targets],
            "value": [f"{t.value:.4f}" for t in targets],
            f"{'/'.join(levels)} interval": [f"{t.low:.4f} to {t.high:.4f}" for t in targets],
            "verdict": [verdict(t) for t in targets],
        }
    ).set_index("target")


def _targets(targets: Sequence[TargetResult], calibration: Sequence[GradeCalibration]) -> str:
    if not targets:
        return ""
    table = targets_table(targets, calibration)
    rows = [[index, *values.tolist()] for index, values in table.iterrows()]
    return (
        "<h3>Quality targets</h3><p>Each judged on the window's value; the interval is a "
        "bootstrap over leads (a lead's snapshots are drawn together), so a verdict whose "
        "interval straddles its bound could go either way on another window.</p>"
        + table_html(["target", *table.columns], rows, classes="num words")
    )


def quality_sentence(
    metrics: Mapping[str, Mapping[str, float]], oracle: Mapping[str, float] | None = None
) -> str:
    """Where the model's ROC-AUC stands against the rules and, when known, the oracle."""
    model, rules = metrics["model"]["roc_auc"], metrics["rules"]["roc_auc"]
    name = label("roc_auc")
    text = f"Model {name} {model:.4f}: {model - rules:+.4f} over the rules ({rules:.4f})"
    if oracle and "roc_auc" in oracle:
        text += (
            f"; {oracle['roc_auc'] - model:.4f} below the oracle ({oracle['roc_auc']:.4f}), "
            "the hidden propensity of the synthetic CRM"
        )
    return text + "."


def _leakage(lines: Sequence[str]) -> str:
    """The columns suspected of leaking the outcome, where a reader sees them first."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return (
        "<div class='warn'><h3>Possible leaks</h3><p>These training columns look filled in "
        "after the outcome: a model that reads them scores history well and new leads "
        "badly. Check each; list it under <code>data.exclude</code> to drop it, or under "
        "<code>data.leakage.ignore</code> to keep it and silence this warning.</p>"
        f"<ul>{items}</ul></div>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;margin-top:2em}
p.headline{font-size:1.15em;background:#f3f7fb;padding:.8em;border-left:4px solid #1f77b4}
table{border-collapse:collapse;margin:.5em 0;display:block;overflow-x:auto;max-width:100%}
td,th{padding:.2em .7em;text-align:right;vertical-align:top} td{white-space:nowrap}
thead th{border-bottom:1px solid #bbb;vertical-align:bottom}
tbody th{text-align:left;white-space:nowrap}
tr:nth-child(even){background:#f6f6f6} img,svg.chart{max-width:100%;height:auto}
.ctx th{white-space:nowrap}
.ctx td,.card td,.words td:last-child,.words th:last-child{text-align:left;white-space:normal}
.words td:last-child{min-width:16em}
p.note{color:#555} code{background:#f2f2f2;padding:0 .2em;word-break:break-all}
div.warn{background:#fff6e5;border-left:4px solid #e69500;padding:.2em .8em;margin:1em 0}
@media (max-width:640px){.ctx tr,.ctx th,.ctx td{display:block;text-align:left}}
"""


def split_sentence(context: Mapping[str, object]) -> str:
    """How model and rules were compared, naming the validation rows in words (the
    context's ``split``, from ``models.recipe.window_context``) when the report has them."""
    split = context.get("split")
    rows = f"the same validation rows, {split}" if split else "the same validation rows"
    return (
        f"Both scored on {rows}: ranking metrics on the model's log-odds and the rule "
        "points, Brier / log loss / ECE on the probabilities each one states."
    )


def _header(inputs: ReportInputs) -> str:
    """The run, the model version, the data window, MLflow, and how it was validated."""
    rows = header_rows(inputs.header)
    rows += [(str(k), html.escape(str(v))) for k, v in inputs.context.items()]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='ctx'>{body}</table>"


def _gains_html(model: pd.DataFrame, rules: pd.DataFrame) -> str:
    columns = ["conversion_rate", "lift", "cumulative_capture"]
    header = ["decile", "leads"] + [
        f"{side}: {label(c)}" for side in ("model", "rules") for c in columns
    ]
    rows = [
        [decile, int(model.at[decile, "leads"])]
        + [float(t.at[decile, c]) for t in (model, rules) for c in columns]
        for decile in model.index
    ]
    return table_html(header, rows, digits=3)


def _importance_html(importance: pd.DataFrame) -> str:
    top = importance.head(TOP_FEATURES)
    rows = [
        [
            r["label"],
            family_label(r["family"]),
            r["features"],
            r["mean_abs_contribution"],
            r["share"],
        ]
        for _, r in top.iterrows()
    ]
    header = ["concept", "family", "features", label("mean_abs_contribution"), label("share")]
    return table_html(header, rows)


def _concept_members(inputs: ReportInputs) -> str:
    """Which feature columns each concept gathers, folded away for the data team."""
    rows = [
        [c.label, Raw(", ".join(f"<code>{html.escape(f)}</code>" for f in c.features))]
        for c in inputs.concept_groups()
    ]
    return (
        "<details><summary>Feature columns behind each concept (for the data team)</summary>"
        + table_html(["concept", "feature columns"], rows, classes="words")
        + "</details>"
    )


def _glossary_html() -> str:
    rows = [
        [
            t.name,
            t.meaning,
            Raw(f"<code class='key'>model_{t.key}</code>, <code class='key'>rules_{t.key}</code>"),
        ]
        for t in METRICS.values()
    ]
    named = {t.name for t in METRICS.values()}
    for t in COLUMNS.values():
        if t.name not in named:
            named.add(t.name)
            rows.append([t.name, t.meaning, "-"])
    return (
        "<p>The words the report uses, what each means, and the name of each metric in "
        "MLflow and in the train command's JSON line.</p>"
        + table_html(["term", "what it means", "in MLflow"], rows, classes="words")
    )


def render_report(inputs: ReportInputs) -> str:
    """The whole report as one HTML string (figures inline, no external files)."""
    metrics = report_metrics(inputs)
    calibration = per_grade(inputs)
    importance = importance_table(inputs)
    gains_png, gains_model, gains_rules = gains_figure(inputs)
    calibration_png, bands = calibration_figure(inputs, calibration)
    family_png, families = family_figure(importance)
    families.index = [family_label(f) for f in families.index]
    title = html.escape(inputs.title)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p class='headline'>{html.escape(headline(metrics))}</p>",
        _header(inputs),
        _leakage(inputs.leakage),
        f"<h2>{SECTIONS[0]}</h2>",
        f"<p>{html.escape(split_sentence(inputs.context))}</p>",
        _comparison_html(comparison_table(metrics, inputs.oracle)),
        f"<p>{html.escape(quality_sentence(metrics, inputs.oracle))}</p>",
        _targets(inputs.targets, calibration),
        f"<h2>{SECTIONS[1]}</h2>",
        capacity_html(inputs),
        f"<h2>{SECTIONS[2]}</h2>",
        group_html(inputs, SEGMENT),
        f"<h2>{SECTIONS[3]}</h2>",
        group_html(inputs, OWNER),
        f"<h2>{SECTIONS[4]}</h2>",
        f"<p>{html.escape(ece_sentence(metrics['model']['ece'], len(bands), calibration))}</p>",
        calibration_png,
        "<h3>Conversion rate per grade</h3>",
        grades_html(inputs, calibration),
        "<h3>Conversion rate per score band</h3>",
        frame_html(bands, "score band (low to high)"),
        f"<h2>{SECTIONS[5]}</h2>",
        curves_figure(inputs),
        f"<h2>{SECTIONS[6]}</h2>",
        gains_png,
        _gains_html(gains_model, gains_rules),
        f"<h2>{SECTIONS[7]}</h2>",
        distribution_figure(inputs),
        f"<h2>{SECTIONS[8]}</h2>",
        "<p>Each concept's push on a lead's score is the sum of its features' exact SHAP "
        "values; the bars are the mean size of that push over the window.</p>",
        shap_figure(inputs, importance),
        _importance_html(importance),
        _concept_members(inputs),
        f"<h2>{SECTIONS[9]}</h2>",
        family_png,
        frame_html(families, "family"),
        f"<h2>{SECTIONS[10]}</h2>",
        _glossary_html(),
        f"<h2>{SECTIONS[11]}</h2>",
        rules_card_html(inputs.rules_card),
        "</body></html>",
    ]
    return "\n".join(parts)
