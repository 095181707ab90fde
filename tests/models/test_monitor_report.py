"""The monitoring report (models/monitor/report.py) over a hand-built monitor run: the
decision comes first in words, each batch's figures appear with their days watched, the
drift table is worst first, and the page needs no other file."""

from __future__ import annotations

import re

from leadscore.models.monitor.report import SECTIONS, drift_rows, render_monitor_report
from leadscore.models.monitor.svg import Series, line_chart
from leadscore.models.monitor.words import capture_key, in_words, label, maturity, psi_words
from tests.models.monitor_sample import drift_frame, sample_result


def text_of(page: str) -> str:
    """The page's visible text, tags removed and entities read, whitespace squeezed."""
    import html

    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL)
    body = re.sub(r"<svg.*?</svg>", " ", body, flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_the_decision_comes_first_in_words_and_every_section_follows():
    page = render_monitor_report(sample_result())
    text = text_of(page)
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert text.index("Retrain the model. retrain: PSI of lead_source 0.31 > 0.2") < positions[1]
    calm = text_of(render_monitor_report(sample_result("none")))
    assert "No action needed. no action: all within bounds" in calm
    assert "champion model version 3" in text and "outcomes known up to 2026-03-20" in text
    assert "batches judged 4 (3 mature)" in text


def test_live_roc_auc_of_model_and_rules_per_batch_with_days_watched():
    text = text_of(render_monitor_report(sample_result()))
    # the newest mature batch answers the plain question
    assert (
        "In the newest mature batch (scored 2026-02-03: 1,020 leads, 57 conversions in 30 "
        "days), the model ranked a converting lead above a non-converting one 79.8% of the "
        "time, the rules 73.5% (live ROC-AUC 0.798 against 0.735, +0.063)"
    ) in text
    row = "2026-01-05 (b1) 3 1,000 980 60 30 of 30 mature 0.812 0.731 +0.081"
    assert row in text
    assert "2026-03-08 (b4) 3 1,020 1,000 16 12 of 30 still maturing - -" in text
    # the estimate for the young batch, next to its live figure so far
    assert "2026-03-08 (b4) 12 of 30 0.787 -" in text


def test_grades_realised_against_predicted_with_intervals_model_and_rules():
    text = text_of(render_monitor_report(sample_result()))
    # b3, grade A: model 27 of 90 (30.0%, Wilson 21.5% to 40.1%), predicted 29.0%;
    # rules 18 of 90 (20.0%, 13.0% to 29.4%)
    assert ("A 90 27 29.0% 30.0% 21.5% to 40.1% consistent 90 18 20.0% 13.0% to 29.4%") in text
    # b1, grade C: predicted 1.0%, realised 6 of 580 = 1.0%
    assert "C 580 6 1.0% 1.0% 0.5% to 2.2% consistent 580 15 2.6%" in text
    # a young batch gets no verdict
    assert "A 100 9 30.0% 9.0% 4.8% to 16.2% still maturing" in text
    # the newest mature batch's table is the one shown open
    assert re.search(
        r"<details open><summary>Batch scored 2026-02-03 \(b3\)",
        render_monitor_report(sample_result()),
    )


def test_capture_in_the_top_percent_per_batch_model_and_rules():
    text = text_of(render_monitor_report(sample_result()))
    assert "top 5%: model top 5%: rules top 10%: model top 10%: rules" in text
    assert "2026-01-05 (b1) mature 22.0% 15.0% 41.0% 28.0%" in text
    assert "the model's top 10% held 39.0% of the conversions, the rules' top 10% 29.0%" in text


def test_drift_of_the_newest_batch_worst_first_with_the_move_in_words():
    rows = drift_rows(drift_frame("b4"))
    assert [r[0] for r in rows] == ["lead_source", "employees", "the score itself", "pricing_views"]
    assert rows[0][2:] == [
        "0.310",
        "a lot",
        "0.0% -> 0.0%",
        "0.4%",
        "lead_source=partner 2.0% -> 21.3%",
    ]
    assert rows[3][2:5] == ["-", "not measured", "1.0% -> 40.0%"]
    text = text_of(render_monitor_report(sample_result()))
    assert "lead_source categorical 0.310 a lot" in text
    assert text.index("lead_source categorical") < text.index("employees numeric")


def test_quarantine_share_trend_per_batch():
    page = render_monitor_report(sample_result())
    text = text_of(page)
    assert "2026-03-08 (b4) 0.050 0.310 3.10% bad email: 20, missing lead_id: 11" in text
    assert "2026-01-05 (b1) 0.050 0.080 0.40% bad email: 4" in text
    assert page.count("<svg") == 2 and "Share of rows set aside per batch" in page


def test_self_contained_and_no_metric_codes_where_people_read():
    page = render_monitor_report(sample_result())
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "<script" not in page and "<link" not in page
    text = text_of(page)
    for code in ("roc_auc", "max_feature_psi", "quarantine_share", "capture_top", "prediction_psi"):
        assert code not in text


def test_words():
    assert capture_key("capture_top_10_rules") == (10.0, True)
    assert capture_key("capture_top5") == (5.0, False) and capture_key("roc_auc") is None
    assert label("capture_top_20") == "conversions in the top 20%, model"
    assert in_words("retrain: max_feature_psi 0.31 > 0.2") == (
        "retrain: largest attribute shift (PSI) 0.31 > 0.2"
    )
    assert maturity(False, 12, 30) == "still maturing (12 of 30 days)"
    assert [psi_words(v) for v in (0.05, 0.1, 0.2, 0.21, None)] == [
        "little", "some", "some", "a lot", "not measured",
    ]  # fmt: skip


def test_an_empty_run_renders():
    result = sample_result()
    empty = type(result)(
        created_at=result.created_at,
        now=result.now,
        champion_version=None,
        horizon_days=30,
        batches=(),
        decision=result.decision,
    )
    text = text_of(render_monitor_report(empty))
    assert "No batch has been watched for the full 30 days yet" in text
    assert "No batch archived yet." in text and "champion model version unknown" in text
    assert all(s in text for s in SECTIONS)


def test_a_chart_of_one_value_spans_a_band_around_it_not_beyond_a_roc_auc_of_one():
    chart = line_chart(
        "ROC-AUC per batch", ["2026-11-01"], [Series("model", [0.91], "#000")], "ROC-AUC"
    )
    ticks = [float(t) for t in re.findall(r">(\d+\.\d+)</text>", chart)]
    assert ticks and min(ticks) >= 0.86 and max(ticks) <= 0.96
    zero = line_chart("share", ["2026-11-01"], [Series("quarantined", [0.0], "#000")], "share")
    assert min(float(t) for t in re.findall(r">(-?\d+\.\d+)</text>", zero)) == 0.0
