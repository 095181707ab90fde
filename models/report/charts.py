"""The report's figures: matplotlib on its own Agg canvas, returned as inline PNG <img>.

No pyplot state, no display, safe in threads; each function takes the window
(:class:`ReportInputs`) and returns the HTML of its figure and, where the page shows one,
the table the figure was drawn from.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from leadscore.models.evaluate import calibration_bins
from leadscore.models.report.calibration import GradeCalibration
from leadscore.models.report.concepts import (
    concept_contributions,
    concept_importance,
    family_importance,
)
from leadscore.models.report.glossary import family_label
from leadscore.models.report.window import ReportInputs

DECILES = 10
"""Ranking buckets of the gains and lift charts."""

TOP_FEATURES = 15
"""Concepts shown in the importance chart (largest mean |contribution| first)."""

BEESWARM_ROWS = 2000
"""Rows drawn in the beeswarm (a fixed random sample: enough to see the shape, fast)."""

SEED = 0
"""Seed of the beeswarm sample and its vertical jitter, so a report is reproducible."""

_FIGSIZE = (6.0, 4.0)
_DPI = 90
_MODEL, _RULES = "#1f77b4", "#ff7f0e"


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


def curves_figure(inputs: ReportInputs) -> str:
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


def gains_figure(inputs: ReportInputs) -> tuple[str, pd.DataFrame, pd.DataFrame]:
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


def calibration_figure(
    inputs: ReportInputs, per_grade: Sequence[GradeCalibration]
) -> tuple[str, pd.DataFrame]:
    """Reliability curve per score band, with each grade and its interval (figure, bands)."""
    bands = pd.DataFrame(calibration_bins(inputs.y, inputs.model_probability))
    bands.index = pd.Index(range(1, len(bands) + 1), name="score band (low to high)")
    bands["n"] = bands["n"].astype(int)
    known = [g for g in per_grade if g.rows]
    fig, (ax,) = _figure()
    top = float(
        np.nanmax(
            [*bands["mean_probability"], *bands["observed_rate"], *(g.high for g in known), 0.01]
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
    if known:
        ax.errorbar(
            [g.predicted for g in known],
            [g.observed for g in known],
            yerr=[
                [max(g.observed - g.low, 0) for g in known],
                [max(g.high - g.observed, 0) for g in known],
            ],
            fmt="s",
            color="k",
            capsize=3,
            zorder=3,
            label="per grade (95% interval)",
        )
    for g in known:
        ax.annotate(g.grade, (g.predicted, g.observed), textcoords="offset points", xytext=(5, -10))
    ax.set(
        xlabel="mean predicted probability", ylabel="observed conversion rate", title="Calibration"
    )
    ax.legend()
    return _png(fig), bands


def distribution_figure(inputs: ReportInputs) -> str:
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


def importance_table(inputs: ReportInputs) -> pd.DataFrame:
    """Mean |SHAP| per concept (its features' SHAP summed per lead), largest first."""
    return concept_importance(inputs.contributions, inputs.features, inputs.concept_groups())


def _colour_values(values: pd.Series) -> np.ndarray:
    """A feature's values as 0-1 colours: numeric by rank, categories by code; NaN grey."""
    if pd.api.types.is_numeric_dtype(values):
        ranks = values.rank(pct=True)
    else:
        codes = pd.Categorical(values.astype(object)).codes.astype(float)
        codes[codes < 0] = np.nan
        ranks = pd.Series(codes / max(np.nanmax(codes), 1.0) if np.isfinite(codes).any() else codes)
    return ranks.to_numpy(dtype=np.float64)


def _concept_colour(inputs: ReportInputs, features: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """A concept's colour per row: its feature's value when it has one feature, else grey."""
    values = inputs.feature_values
    if len(features) == 1 and values is not None and features[0] in values:
        return _colour_values(values[features[0]].iloc[rows].reset_index(drop=True))
    return np.full(len(rows), 0.5)


def shap_figure(inputs: ReportInputs, importance: pd.DataFrame) -> str:
    """Importance bars and a beeswarm of the top concepts (own matplotlib, no pyplot)."""
    top = importance.head(TOP_FEATURES)
    fig, (bar_ax, swarm_ax) = _figure(2)
    fig.set_size_inches(_FIGSIZE[0] * 2.3, max(_FIGSIZE[1], 0.35 * len(top) + 1))
    labels = [_short(text) for text in top["label"].tolist()[::-1]]
    bar_ax.barh(labels, top["mean_abs_contribution"].to_numpy()[::-1], color=_MODEL)
    bar_ax.set(xlabel="mean |SHAP| (log-odds)", title="What moves the score")
    concepts = {c.key: c for c in inputs.concept_groups()}
    keys = top["concept"].tolist()[::-1]
    summed = concept_contributions(
        inputs.contributions, inputs.features, [concepts[k] for k in keys]
    )
    rng = np.random.default_rng(SEED)
    rows = np.arange(len(summed))
    if len(rows) > BEESWARM_ROWS:
        rows = np.sort(rng.choice(rows, BEESWARM_ROWS, replace=False))
    scatter = None
    for position, key in enumerate(keys):
        colour = _concept_colour(inputs, concepts[key].features, rows)
        jitter = rng.uniform(-0.3, 0.3, len(rows))
        scatter = swarm_ax.scatter(
            summed[rows, position],
            position + jitter,
            c=colour,
            cmap="coolwarm",
            s=4,
            vmin=0,
            vmax=1,
            alpha=0.6,
            plotnonfinite=True,
        )
    swarm_ax.set_yticks(range(len(keys)), [""] * len(keys))  # same rows as the bars beside it
    swarm_ax.set_ylim(bar_ax.get_ylim())
    swarm_ax.axvline(0, color="grey", lw=0.8)
    swarm_ax.set(xlabel="push on the score per lead (log-odds)", title="Per lead (colour: value)")
    if scatter is not None:
        fig.colorbar(scatter, ax=swarm_ax, label="value, low to high (grey: several features)")
    return _png(fig)


def _short(text: str, limit: int = 48) -> str:
    """A label short enough for a chart axis (the table beside it has it in full)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def family_figure(importance: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Mean |SHAP| summed per family: how much of the model is fit, engagement, lifecycle."""
    table = family_importance(importance)
    fig, (ax,) = _figure()
    colours = {"fit": _MODEL, "engagement": _RULES, "lifecycle": "#2ca02c"}
    ax.bar(
        [family_label(f).split(" (")[0] for f in table.index],
        table["share"],
        color=[colours.get(f, "grey") for f in table.index],
    )
    ax.set(ylabel="share of mean |SHAP|", title="Importance by family")
    return _png(fig), table
