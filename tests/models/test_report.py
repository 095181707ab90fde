"""The evaluation report: every section present, numbers equal to ``models.evaluate``.

The report is pure, so it is tested on a small known window: labels drawn from a known
probability, a model that ranks by it and a coarser "rules" score that sees half of it.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from leadscore.models.evaluate import (
    calibration_bins,
    evaluate,
    expected_calibration_error,
    full_metrics,
    lift_and_capture,
    log_loss,
)
from leadscore.models.report import SECTIONS, ReportInputs, gains_by_decile, headline, render_report
from leadscore.models.report.header import RunHeader

N = 3000


@pytest.fixture(scope="module")
def window() -> ReportInputs:
    return small_window()


def small_window() -> ReportInputs:
    """Labels drawn from a known probability, the model ranking by it, coarse rules."""
    rng = np.random.default_rng(1)
    fit = rng.normal(size=N)
    engagement = rng.normal(size=N)
    logit = -2.0 + fit + 1.5 * engagement
    p = 1 / (1 + np.exp(-logit))
    y = (rng.uniform(size=N) < p).astype(int)
    points = np.clip(np.round(50 + 10 * fit), 0, 100)  # the rules see fit only, coarsely
    rule_p = pd.Series(y).groupby(points).transform("mean").to_numpy()
    contributions = np.column_stack([fit, 1.5 * engagement, 0.01 * rng.normal(size=N)])
    grades = np.where(p >= 0.4, "A", np.where(p >= 0.2, "B", np.where(p >= 0.08, "C", "D")))
    values = pd.DataFrame({"industry": rng.choice(["a", "b"], N), "visits": engagement})
    # 1,000 leads seen at 3 fortnightly snapshots, 4 owners, 2 segments
    entities = pd.DataFrame(
        {
            "lead_id": [f"L{i % 1000:04d}" for i in range(N)],
            "as_of": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(14 * (np.arange(N) // 1000), unit="D"),
            "owner": [f"owner {i % 4}" for i in range(N)],
            "segment": np.where(np.arange(N) % 1000 < 600, "smb", "enterprise"),
        }
    )
    return ReportInputs(
        y=y,
        model_ranking=logit,
        model_probability=p,
        rule_points=points,
        rule_probability=rule_p,
        grades=grades,
        grade_order=["A", "B", "C", "D"],
        contributions=contributions,
        features=["industry", "visits", "noise"],
        families={"industry": "fit", "visits": "engagement", "noise": "fit"},
        feature_values=values,
        oracle={"roc_auc": 0.9},
        context={"split": "snapshots of the newest 42 days"},
        entities=entities,
        header=RunHeader(
            run_id="0123456789abcdef",
            experiment_id="1",
            model_name="leadscore",
            model_version="7",
            promotion="promoted to champion",
            tracking_uri="sqlite:////tmp/mlflow.db",
            dates={
                "training data": "leads as of 2025-01-01 to 2025-09-30 (9,000 examples)",
                "validation data": "leads as of 2026-01-01 to 2026-01-29 (3,000 examples)",
                "data as of": "2026-05-01",
            },
        ),
    )


@pytest.fixture(scope="module")
def page(window: ReportInputs) -> str:
    return render_report(window)


def test_every_section_and_figure_is_inline(page: str):
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6  # curves, gains, calibration, distribution, shap, family
    for encoded in images:
        assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: nothing fetched; the only addresses are links to the MLflow UI
    assert re.findall(r'src="(?!data:)', page) == [] and "<link" not in page
    link = r'<a href="(http://127\.0\.0\.1:5000/#/[^"]+)" rel="noopener noreferrer">\1</a>'
    outside = re.sub(link, "", page)
    assert "http" not in outside and len(re.findall(link, page)) == 2


def test_numbers_match_evaluate(window: ReportInputs, page: str):
    model = evaluate(window.y, window.model_ranking, window.model_probability)
    rules = evaluate(window.y, window.rule_points, window.rule_probability)
    for value in (model["roc_auc"], rules["roc_auc"], model["brier"], rules["pr_auc"]):
        assert f"{value:.4f}" in page
    ece = expected_calibration_error(window.y, window.model_probability)
    assert f"{ece:.4f}" in page
    _, capture = lift_and_capture(window.y, window.model_ranking, 0.05)
    assert f"{capture:.4f}" in page
    assert model["roc_auc"] > rules["roc_auc"] + 0.05  # the fixture is what it claims


def test_headline_sentence(window: ReportInputs, page: str):
    model = full_metrics(window.y, window.model_ranking, window.model_probability)
    rules = full_metrics(window.y, window.rule_points, window.rule_probability)
    sentence = headline({"model": model, "rules": rules})
    assert sentence == (
        f"Calling the top 10% by the model would have reached {model['capture_top10']:.0%} "
        f"of conversions; by the rules, {rules['capture_top10']:.0%}."
    )
    assert sentence in page


def test_family_importance_and_grades(page: str):
    # engagement drives 1.5x the logit of fit: it must lead the family table
    families = page[page.index("<h2>Importance by family</h2>") :]
    assert families.index("engagement") < families.index("<td>")  # first row
    grades = page[page.index("Conversion rate per grade") :]
    assert all(f"<th>{g}</th>" in grades for g in "ABCD")


def test_gains_by_decile_by_hand():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    table = gains_by_decile(y, np.arange(10, 0, -1), deciles=5)
    assert table["conversion_rate"].tolist() == [0.5, 0.0, 0.5, 0.0, 0.0]
    assert table["cumulative_capture"].tolist() == [0.5, 0.5, 1.0, 1.0, 1.0]
    assert table["lift"].iloc[0] == pytest.approx(2.5)


def test_trust_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.8])
    assert log_loss(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.7, 0.6, 0.8])))
    bins = calibration_bins(y, p, n_bins=2)
    assert bins == [
        {"n": 2.0, "mean_probability": pytest.approx(0.2), "observed_rate": 0.0},
        {"n": 2.0, "mean_probability": pytest.approx(0.7), "observed_rate": 1.0},
    ]
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.25)
    m = full_metrics(y, p, p)
    assert m["capture_top5"] == pytest.approx(0.5) and m["lift_top20"] == pytest.approx(2.0)
    assert set(evaluate(y, p, p)) < set(m)


def test_quality_targets_table_states_value_interval_and_verdict(window: ReportInputs):
    from dataclasses import replace

    from leadscore.models.config import QualityTargets
    from leadscore.models.quality import assess

    targets = assess(
        QualityTargets(min_margin_over_rules=0.5, max_calibration_error=0.05, resamples=50),
        window.y,
        np.arange(N),
        window.model_ranking,
        window.model_probability,
        window.rule_points,
    )
    page = render_report(replace(window, targets=targets))
    table = page[page.index("<h3>Quality targets</h3>") : page.index(f"<h2>{SECTIONS[1]}</h2>")]
    margin, ece = targets
    assert not margin.met and ece.met  # the fixture: margin 0.15, ECE 0.025
    for target, verdict in ((margin, "missed"), (ece, "met")):
        op = target.op.replace("<", "&lt;").replace(">", "&gt;")
        row = table[table.index(f"{target.description} {op}") :]
        row = row[: row.index("</tr>")]
        assert f"{target.value:.4f}" in row
        assert f"{target.low:.4f} to {target.high:.4f}" in row
        assert f"<td>{verdict}</td>" in row
    assert "<th>95% interval</th>" in table
    assert "Quality targets" not in render_report(window)  # none configured: no table


def test_the_report_names_its_split_in_words(window: ReportInputs):
    from types import SimpleNamespace

    from leadscore.features.snapshots import LABEL, Snapshots, ordered_split, random_split
    from leadscore.models.config import ModelConfig
    from leadscore.models.recipe import TrainingData, window_context
    from leadscore.models.report.page import split_sentence

    rows = pd.DataFrame({"lead_id": [f"L{i}" for i in range(10)], "as_of": pd.NaT})
    snaps = Snapshots(rows.assign(**{LABEL: [0, 1] * 5}), n_censored=0, data_end=pd.NaT)
    model = SimpleNamespace(calibration_="sigmoid")
    expected = {
        "the last 20% of rows in file order (the file has no dates; out of time as far as the "
        "file lists leads in time order)": ordered_split(snaps, 0.2, by_time=False),
        "a random 20% of leads with a known outcome, stratified by outcome (not out of time: "
        "an optimistic estimate)": random_split(snaps, 0.2, seed=1),
    }
    for words, split in expected.items():
        data = TrainingData(snaps, split, rows, snaps.rows[LABEL].to_numpy(), None)
        context = window_context(data, model, ModelConfig())
        assert context["split"] == words
        sentence = split_sentence(context)
        assert sentence.startswith(f"Both scored on the same validation rows, {words}: ranking")
    page = render_report(replace(window, context=context))  # the random split's
    assert html.escape(sentence) in page and "out-of-time validation window" not in page
    assert f"<th>split</th><td>{html.escape(words)}</td>" in page
    assert split_sentence({}).startswith("Both scored on the same validation rows: ranking")
