"""The monitoring report's per-batch sections: grades, capture, drift, data quality.

Each function takes the monitor run (or one batch) and returns the HTML of a section's
body (``report.py`` adds the titles and the page); the small formatting helpers every
section shares live here too. Tables through ``models.report.tables`` (one header row,
cells escaped), words through ``monitor.words``.
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
from leadscore.models.report.tables import table_html


def num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def day(stamp: object) -> str:
    value = pd.Timestamp(stamp)  # type: ignore[arg-type]
    return "?" if pd.isna(value) else value.strftime("%Y-%m-%d")


def sentence(text: str) -> str:
    """A glossary meaning as a sentence: first letter up (never lowering "ROC-AUC")."""
    return text[:1].upper() + text[1:] + "."


def batch_name(b: BatchResult) -> str:
    return f"{day(b.as_of)} ({b.batch_id})"


def newest_mature(result: MonitorResult) -> BatchResult | None:
    return next((b for b in reversed(result.batches) if b.mature), None)


def captures(batches: Sequence[BatchResult]) -> list[float]:
    """The top-k% shares the batches carry (``capture_top_<k>``), smallest first."""
    found = {words.capture_key(k) for b in batches for k in b.metrics}
    return sorted({k for k, _ in (f for f in found if f is not None)})


def capture(b: BatchResult, k: float, rules: bool) -> float | None:
    for key, value in b.metrics.items():
        if words.capture_key(key) == (k, rules):
            return value
    return None


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
    opened = newest_mature(result) or shown[0]
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
        summary = f"Batch scored {batch_name(b)}: {status}"
        table = table_html(_GRADE_HEADER, grade_rows(b), classes="num words")
        attr = " open" if b is opened else ""
        parts.append(f"<details{attr}><summary>{html.escape(summary)}</summary>{table}</details>")
    return "".join(parts)


def capture_html(result: MonitorResult) -> str:
    """Per batch: the share of its conversions among the top k% of leads, model vs rules."""
    ks = captures(result.batches)
    if not ks:
        return "<p>No capture was measured.</p>"
    header = ["batch (scored on)", "status"] + [
        f"top {k:g}%: {side}" for k in ks for side in ("model", "rules")
    ]
    rows = [
        [
            batch_name(b),
            words.maturity(b.mature, b.observed_days, result.horizon_days),
            *(words.share(capture(b, k, rules)) for k in ks for rules in (False, True)),
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
                num(psi),
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
            f"<p>Batch scored {html.escape(batch_name(b))}: no reference profile came with "
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
        f"<p>Batch scored {html.escape(batch_name(b))}, against the training leads of its "
        f"model (version {html.escape(b.model_version)}). Worst first. "
        f"{html.escape(sentence(words.TERMS['psi'].meaning))}</p>"
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
            batch_name(b),
            num(b.metrics.get("prediction_psi")),
            num(b.metrics.get("max_feature_psi")),
            words.share(b.metrics.get("quarantine_share"), 2),
            _quarantine_words(b),
        ]
        for b in reversed(result.batches)
    ]
    shares = [b.metrics.get("quarantine_share") for b in result.batches]
    top = max([float(s) for s in shares if s is not None and not math.isnan(s)] + [0.01])
    chart = line_chart(
        "Share of rows set aside per batch",
        [day(b.as_of) for b in result.batches],
        [Series("rows set aside", [None if s is None else 100 * s for s in shares], "#b3261e")],
        "% of rows read",
        y_range=(0.0, 100 * top * 1.2),
        y_format="{:.1f}%",
    )
    return table_html(header, rows, classes="num words") + chart
