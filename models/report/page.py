"""The evaluation report as one self-contained HTML page (figures inline, no other file)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd

from leadscore.models.evaluate import REPORT_SHARES, share_key
from leadscore.models.quality import TargetResult
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
from leadscore.models.report.window import ReportInputs, headline, report_metrics

SECTIONS = (
    "Model vs rules",
    "ROC and precision-recall",
    "Cumulative gains and lift by decile",
    "Calibration",
    "Score distribution",
    "SHAP summary",
    "Importance by family",
    "Rules card",
)
"""Section titles, in page order (tests check every one is present)."""


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A frame as an HTML table with fixed decimals (so numbers match the JSON line)."""
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="num")


def comparison_table(
    metrics: Mapping[str, Mapping[str, float]], oracle: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Model vs rules (and the oracle when known) on the same window, one metric per row."""
    keys = ["roc_auc", "pr_auc", "brier", "log_loss", "ece"]
    for share in REPORT_SHARES:
        keys += [f"lift_{share_key(share)}", f"capture_{share_key(share)}"]
    columns = {"model": metrics["model"], "rules": metrics["rules"]}
    if oracle:
        columns["oracle"] = oracle
    return pd.DataFrame(
        {name: [float(m.get(k, float("nan"))) for k in keys] for name, m in columns.items()},
        index=pd.Index(keys, name="metric"),
    )


def targets_table(targets: Sequence[TargetResult]) -> pd.DataFrame:
    """The quality targets as the report shows them: bound, value, interval, verdict."""
    levels = sorted({f"{t.confidence:.0%}" for t in targets})
    return pd.DataFrame(
        {
            "target": [f"{t.description} {t.op} {t.bound:g}" for t in targets],
            "value": [f"{t.value:.4f}" for t in targets],
            f"{'/'.join(levels)} interval": [f"{t.low:.4f} to {t.high:.4f}" for t in targets],
            "verdict": ["met" if t.met else "missed" for t in targets],
        }
    ).set_index("target")


def _targets(targets: Sequence[TargetResult]) -> str:
    if not targets:
        return ""
    return (
        "<h3>Quality targets</h3><p>Each judged on the window's value; the interval is a "
        "bootstrap over leads (a lead's snapshots are drawn together), so a verdict whose "
        "interval straddles its bound could go either way on another window.</p>"
        + _table(targets_table(targets))
    )


def quality_sentence(
    metrics: Mapping[str, Mapping[str, float]], oracle: Mapping[str, float] | None = None
) -> str:
    """Where the model's ROC-AUC stands against the rules and, when known, the oracle."""
    model, rules = metrics["model"]["roc_auc"], metrics["rules"]["roc_auc"]
    text = f"Model ROC-AUC {model:.4f}: {model - rules:+.4f} over the rules ({rules:.4f})"
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
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;margin-top:2em}
p.headline{font-size:1.15em;background:#f3f7fb;padding:.8em;border-left:4px solid #1f77b4}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .7em;text-align:right}
tr:nth-child(even){background:#f6f6f6} img{max-width:100%} .ctx td,.card td{text-align:left}
div.warn{background:#fff6e5;border-left:4px solid #e69500;padding:.2em .8em;margin:1em 0}
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


def render_report(inputs: ReportInputs) -> str:
    """The whole report as one HTML string (figures inline, no external files)."""
    metrics = report_metrics(inputs)
    importance = importance_table(inputs)
    curves = curves_figure(inputs)
    gains_png, gains_model, gains_rules = gains_figure(inputs)
    calibration_png, bands, grades = calibration_figure(inputs)
    family_png, families = family_figure(importance)
    context = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in inputs.context.items()
    )
    gains = pd.concat({"model": gains_model, "rules": gains_rules}, axis=1)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(inputs.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(inputs.title)}</h1>",
        f"<p class='headline'>{html.escape(headline(metrics))}</p>",
        f"<table class='ctx'>{context}</table>" if context else "",
        _leakage(inputs.leakage),
        f"<h2>{SECTIONS[0]}</h2>",
        f"<p>{html.escape(split_sentence(inputs.context))}</p>",
        _table(comparison_table(metrics, inputs.oracle)),
        f"<p>{html.escape(quality_sentence(metrics, inputs.oracle))}</p>",
        _targets(inputs.targets),
        f"<h2>{SECTIONS[1]}</h2>",
        curves,
        f"<h2>{SECTIONS[2]}</h2>",
        gains_png,
        _table(gains, 3),
        f"<h2>{SECTIONS[3]}</h2>",
        f"<p>Expected calibration error (ECE, {len(bands)} equal-count bands): "
        f"{metrics['model']['ece']:.4f}.</p>",
        calibration_png,
        "<h3>Conversion rate per score band</h3>",
        _table(bands),
        "<h3>Conversion rate per grade</h3>",
        _table(grades),
        f"<h2>{SECTIONS[4]}</h2>",
        distribution_figure(inputs),
        f"<h2>{SECTIONS[5]}</h2>",
        shap_figure(inputs, importance),
        _table(importance.head(TOP_FEATURES).set_index("feature")),
        f"<h2>{SECTIONS[6]}</h2>",
        family_png,
        _table(families),
        f"<h2>{SECTIONS[7]}</h2>",
        rules_card_html(inputs.rules_card),
        "</body></html>",
    ]
    return "\n".join(parts)
