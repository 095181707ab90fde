"""The evaluation report of a training run: one self-contained HTML page.

Pure: it takes the validation window's labels, the model's ranking and probability, the
rules' points and probability, the model's grades and exact contributions with each
feature's family, and returns one HTML string whose figures are inline base64 PNGs drawn
with matplotlib's Agg canvas (no pyplot state, no display, safe in threads). Every number
in it comes from ``models.evaluate`` so the page, the JSON line and MLflow agree.

Sections: headline sentence, model vs rules table, ROC and precision-recall curves,
cumulative gains and lift by decile, calibration (per score band and per grade), score
distribution of converted vs lost, SHAP summary (global importance and beeswarm),
importance by family (fit vs engagement).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from leadscore.features.registry import FeatureRegistry
from leadscore.models.base import LeadScorer
from leadscore.models.evaluate import (
    REPORT_SHARES,
    TOP_SHARE,
    calibration_bins,
    full_metrics,
    share_key,
)
from leadscore.models.quality import TargetResult
from leadscore.models.rules import RuleScorer, grade_of

DECILES = 10
"""Ranking buckets of the gains and lift charts."""

TOP_FEATURES = 15
"""Features shown in the SHAP summary (largest mean |contribution| first)."""

BEESWARM_ROWS = 2000
"""Rows drawn in the beeswarm (a fixed random sample: enough to see the shape, fast)."""

SEED = 0
"""Seed of the beeswarm sample and its vertical jitter, so a report is reproducible."""

SECTIONS = (
    "Model vs rules",
    "ROC and precision-recall",
    "Cumulative gains and lift by decile",
    "Calibration",
    "Score distribution",
    "SHAP summary",
    "Importance by family",
)
"""Section titles, in page order (tests check every one is present)."""

_FIGSIZE = (6.0, 4.0)
_DPI = 90
_MODEL, _RULES = "#1f77b4", "#ff7f0e"


@dataclass(frozen=True)
class ReportInputs:
    """What one validation window tells about the model and the rules."""

    y: np.ndarray
    model_ranking: np.ndarray
    model_probability: np.ndarray
    rule_points: np.ndarray
    rule_probability: np.ndarray
    grades: np.ndarray
    grade_order: Sequence[str]
    contributions: np.ndarray
    features: Sequence[str]
    families: Mapping[str, str]
    feature_values: pd.DataFrame | None = None
    oracle: Mapping[str, float] | None = None
    targets: Sequence[TargetResult] = ()
    title: str = "leadscore evaluation report"
    context: Mapping[str, object] = field(default_factory=dict)


def window_inputs(
    model: LeadScorer,
    rules: RuleScorer,
    X: pd.DataFrame,
    y: np.ndarray,
    registry: FeatureRegistry,
    grade_cutoffs: Mapping[str, float],
    oracle: Mapping[str, float] | None = None,
    context: Mapping[str, object] | None = None,
) -> ReportInputs:
    """Score one validation window with the model and the rules, exactly as a batch would.

    Grades are those of a scoring batch: the score (probability x 100, rounded) against
    the configured cutoffs.
    """
    raw = model.raw_score(X)
    probability = model.calibrated(raw)
    contributions, _ = model.contributions(X)
    return ReportInputs(
        y=np.asarray(y),
        model_ranking=raw,
        model_probability=probability,
        rule_points=rules.points(X),
        rule_probability=rules.predict_proba(X)[:, 1],
        grades=grade_of(np.rint(100 * probability), grade_cutoffs),
        grade_order=list(grade_cutoffs),
        contributions=contributions,
        features=model.features,
        families={f: registry[f].family for f in model.features},
        feature_values=X[model.features],
        oracle=oracle,
        context=dict(context or {}),
    )


def report_metrics(inputs: ReportInputs) -> dict[str, dict[str, float]]:
    """The model's and the rules' full metrics on the window (what the table shows)."""
    y = np.asarray(inputs.y)
    return {
        "model": full_metrics(y, inputs.model_ranking, inputs.model_probability),
        "rules": full_metrics(y, inputs.rule_points, inputs.rule_probability),
    }


def headline(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """The one plain sentence on top of the report."""
    key = f"capture_{share_key(TOP_SHARE)}"
    return (
        f"Calling the top {TOP_SHARE:.0%} by the model would have reached "
        f"{metrics['model'][key]:.0%} of conversions; by the rules, "
        f"{metrics['rules'][key]:.0%}."
    )


def _png(fig: Figure) -> str:
    """The figure as an inline <img> (base64 PNG): the report must need no other file."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=_DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}"/>'


def _figure(ncols: int = 1) -> tuple[Figure, list]:
    """A figure on its own Agg canvas (no pyplot global state: safe in threads)."""
    fig = Figure(figsize=(_FIGSIZE[0] * ncols, _FIGSIZE[1]))
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A frame as an HTML table with fixed decimals (so numbers match the JSON line)."""
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="num")


def _curves(inputs: ReportInputs) -> str:
    """ROC and precision-recall of the model and the rules, side by side."""
    fig, (roc_ax, pr_ax) = _figure(2)
    y = np.asarray(inputs.y)
    for name, ranking, color in (
        ("model", inputs.model_ranking, _MODEL),
        ("rules", inputs.rule_points, _RULES),
    ):
        fpr, tpr, _ = roc_curve(y, ranking)
        roc_ax.plot(fpr, tpr, label=name, color=color)
        precision, recall, _ = precision_recall_curve(y, ranking)
        pr_ax.plot(recall, precision, label=name, color=color)
    roc_ax.plot([0, 1], [0, 1], ls=":", color="grey")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.axhline(y.mean(), ls=":", color="grey", label="base rate")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    roc_ax.legend()
    pr_ax.legend()
    return _png(fig)


def gains_by_decile(y: np.ndarray, ranking: np.ndarray, deciles: int = DECILES) -> pd.DataFrame:
    """Per ranking decile (best first): conversion rate, lift, cumulative capture."""
    y = np.asarray(y, dtype=np.float64)
    order = np.lexsort((np.arange(len(y)), -np.asarray(ranking, dtype=np.float64)))
    chunks = np.array_split(y[order], deciles)
    total = max(y.sum(), 1.0)
    base = y.mean() if len(y) else float("nan")
    rows, reached = [], 0.0
    for i, chunk in enumerate(chunks, start=1):
        reached += chunk.sum()
        rate = chunk.mean() if len(chunk) else float("nan")
        rows.append(
            {
                "decile": i,
                "leads": len(chunk),
                "conversion_rate": rate,
                "lift": rate / base if base else float("nan"),
                "cumulative_capture": reached / total,
            }
        )
    return pd.DataFrame(rows).set_index("decile")


def _gains(inputs: ReportInputs) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """Cumulative gains and lift by decile (figure, model table, rules table)."""
    model = gains_by_decile(inputs.y, inputs.model_ranking)
    rules = gains_by_decile(inputs.y, inputs.rule_points)
    fig, (gain_ax, lift_ax) = _figure(2)
    share = np.arange(0, DECILES + 1) / DECILES
    for name, table, color in (("model", model, _MODEL), ("rules", rules, _RULES)):
        gain_ax.plot(share, [0, *table["cumulative_capture"]], marker="o", label=name, color=color)
        lift_ax.plot(table.index, table["lift"], marker="o", label=name, color=color)
    gain_ax.plot([0, 1], [0, 1], ls=":", color="grey", label="random")
    gain_ax.set(xlabel="share of leads called", ylabel="share of conversions", title="Gains")
    lift_ax.axhline(1, ls=":", color="grey")
    lift_ax.set(xlabel="decile (1 = highest)", ylabel="lift", title="Lift by decile")
    gain_ax.legend()
    lift_ax.legend()
    return _png(fig), model, rules


def grade_table(
    y: np.ndarray, probability: np.ndarray, grades: np.ndarray, order: Sequence[str]
) -> pd.DataFrame:
    """Per grade (best first): leads, mean predicted probability, observed conversion rate."""
    frame = pd.DataFrame({"y": np.asarray(y, float), "p": probability, "grade": grades})
    rows = []
    for grade in order:
        part = frame[frame["grade"] == grade]
        rows.append(
            {
                "grade": grade,
                "leads": len(part),
                "mean_probability": part["p"].mean() if len(part) else float("nan"),
                "conversion_rate": part["y"].mean() if len(part) else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("grade")


def _calibration(inputs: ReportInputs) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """Reliability curve per score band, with the grades on it (figure, bands, grades)."""
    bands = pd.DataFrame(calibration_bins(inputs.y, inputs.model_probability))
    bands.index = pd.Index(range(1, len(bands) + 1), name="score band (low to high)")
    bands["n"] = bands["n"].astype(int)
    grades = grade_table(inputs.y, inputs.model_probability, inputs.grades, inputs.grade_order)
    fig, (ax,) = _figure()
    top = float(
        np.nanmax(
            [*bands["mean_probability"], *bands["observed_rate"], *grades["mean_probability"], 0.01]
        )
    )
    ax.plot([0, top], [0, top], ls=":", color="grey", label="perfect")
    ax.plot(
        bands["mean_probability"],
        bands["observed_rate"],
        marker="o",
        color=_MODEL,
        label="model, per score band",
    )
    known = grades.dropna()
    ax.scatter(
        known["mean_probability"],
        known["conversion_rate"],
        marker="s",
        color="k",
        zorder=3,
        label="per grade",
    )
    for grade, row in known.iterrows():
        ax.annotate(
            str(grade),
            (row["mean_probability"], row["conversion_rate"]),
            textcoords="offset points",
            xytext=(5, -10),
        )
    ax.set(
        xlabel="mean predicted probability", ylabel="observed conversion rate", title="Calibration"
    )
    ax.legend()
    return _png(fig), bands, grades


def _distribution(inputs: ReportInputs) -> str:
    """Score histograms of converted vs not converted: how far apart the model puts them."""
    fig, (ax,) = _figure()
    y = np.asarray(inputs.y)
    p = np.asarray(inputs.model_probability) * 100
    bins = np.linspace(0, max(float(p.max()), 1.0), 40)
    ax.hist(p[y == 0], bins=bins, alpha=0.6, density=True, label="lost / not converted")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, density=True, label="converted")
    ax.set(xlabel="score (probability x 100)", ylabel="density", title="Score distribution")
    ax.legend()
    return _png(fig)


def _importance(inputs: ReportInputs) -> pd.DataFrame:
    """Mean |SHAP| per feature with its family, largest first (global importance)."""
    contributions = np.asarray(inputs.contributions, dtype=np.float64)
    frame = pd.DataFrame(
        {
            "feature": list(inputs.features),
            "family": [inputs.families.get(f, "other") for f in inputs.features],
            "mean_abs_contribution": np.abs(contributions).mean(axis=0)
            if len(contributions)
            else np.zeros(len(inputs.features)),
        }
    )
    return frame.sort_values("mean_abs_contribution", ascending=False, kind="stable")


def _colour_values(values: pd.Series) -> np.ndarray:
    """A feature's values as 0-1 colours: numeric by rank, categories by code; NaN grey."""
    if pd.api.types.is_numeric_dtype(values):
        ranks = values.rank(pct=True)
    else:
        codes = pd.Categorical(values.astype(object)).codes.astype(float)
        codes[codes < 0] = np.nan
        ranks = pd.Series(codes / max(np.nanmax(codes), 1.0) if np.isfinite(codes).any() else codes)
    return ranks.to_numpy(dtype=np.float64)


def _shap(inputs: ReportInputs, importance: pd.DataFrame) -> str:
    """Global importance bars and a beeswarm of the top features (own matplotlib, no pyplot)."""
    top = importance.head(TOP_FEATURES)
    fig, (bar_ax, swarm_ax) = _figure(2)
    fig.set_size_inches(_FIGSIZE[0] * 2, max(_FIGSIZE[1], 0.35 * len(top) + 1))
    names = top["feature"].tolist()[::-1]
    bar_ax.barh(names, top["mean_abs_contribution"].to_numpy()[::-1], color=_MODEL)
    bar_ax.set(xlabel="mean |SHAP| (log-odds)", title="Global importance")
    contributions = np.asarray(inputs.contributions, dtype=np.float64)
    rng = np.random.default_rng(SEED)
    rows = np.arange(len(contributions))
    if len(rows) > BEESWARM_ROWS:
        rows = np.sort(rng.choice(rows, BEESWARM_ROWS, replace=False))
    index = {f: j for j, f in enumerate(inputs.features)}
    scatter = None
    for position, name in enumerate(names):
        values = contributions[rows, index[name]]
        if inputs.feature_values is not None and name in inputs.feature_values:
            colour = _colour_values(inputs.feature_values[name].iloc[rows].reset_index(drop=True))
        else:
            colour = np.full(len(rows), 0.5)
        jitter = rng.uniform(-0.3, 0.3, len(rows))
        scatter = swarm_ax.scatter(
            values,
            position + jitter,
            c=colour,
            cmap="coolwarm",
            s=4,
            vmin=0,
            vmax=1,
            alpha=0.6,
            plotnonfinite=True,
        )
    swarm_ax.set_yticks(range(len(names)), names)
    swarm_ax.axvline(0, color="grey", lw=0.8)
    swarm_ax.set(xlabel="SHAP value (log-odds)", title="Beeswarm (colour: feature value low-high)")
    if scatter is not None:
        fig.colorbar(scatter, ax=swarm_ax, label="feature value (rank)")
    return _png(fig)


def _family(importance: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Mean |SHAP| summed per family: how much of the model is fit vs engagement."""
    families = importance.groupby("family")["mean_abs_contribution"].sum()
    total = families.sum()
    table = pd.DataFrame(
        {"mean_abs_contribution": families, "share": families / total if total else families}
    ).sort_values("mean_abs_contribution", ascending=False)
    fig, (ax,) = _figure()
    ax.bar(table.index.astype(str), table["share"], color=[_MODEL, _RULES, "grey"][: len(table)])
    ax.set(ylabel="share of mean |SHAP|", title="Importance by family")
    return _png(fig), table


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


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;margin-top:2em}
p.headline{font-size:1.15em;background:#f3f7fb;padding:.8em;border-left:4px solid #1f77b4}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .7em;text-align:right}
tr:nth-child(even){background:#f6f6f6} img{max-width:100%} .ctx td{text-align:left}
"""


def render_report(inputs: ReportInputs) -> str:
    """The whole report as one HTML string (figures inline, no external files)."""
    metrics = report_metrics(inputs)
    importance = _importance(inputs)
    curves = _curves(inputs)
    gains_png, gains_model, gains_rules = _gains(inputs)
    calibration_png, bands, grades = _calibration(inputs)
    family_png, families = _family(importance)
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
        f"<h2>{SECTIONS[0]}</h2>",
        "<p>Both scored on the same out-of-time validation window: ranking metrics on the "
        "model's log-odds and the rule points, Brier / log loss / ECE on the probabilities "
        "each one states.</p>",
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
        _distribution(inputs),
        f"<h2>{SECTIONS[5]}</h2>",
        _shap(inputs, importance),
        _table(importance.head(TOP_FEATURES).set_index("feature")),
        f"<h2>{SECTIONS[6]}</h2>",
        family_png,
        _table(families),
        "</body></html>",
    ]
    return "\n".join(parts)
