"""The report for people: words not keys, honest calibration per grade, capacity, groups,
header, concepts, and one header row per table. Pure functions on small known frames."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.features.registry import LEAD_AGE, FeatureRegistry, FeatureSpec
from leadscore.features.snapshots import Split
from leadscore.models.quality import TargetResult
from leadscore.models.report import render_report, targets_table
from leadscore.models.report.calibration import GradeCalibration, grade_calibration, wilson
from leadscore.models.report.capacity import capacity, periods, weekly_volume
from leadscore.models.report.concepts import concept_importance, report_concepts
from leadscore.models.report.glossary import COLUMNS, METRICS
from leadscore.models.report.groups import TOO_FEW, group_table, validation_entities
from leadscore.models.report.header import RunHeader, header_rows, window_dates
from tests.models.test_report import small_window


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(small_window())


def _text(page: str) -> str:
    """What a reader sees: tags dropped, the glossary's MLflow names (code) dropped too."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"<code class='key'>.*?</code>", " ", page)
    return re.sub(r"<[^>]+>", " ", page)


def test_no_metric_key_reaches_the_reader(page: str):
    text = _text(page)
    keys = [k for k in [*METRICS, *COLUMNS] if "_" in k] + ["ece"]
    found = [k for k in keys if re.search(rf"\b{re.escape(k)}\b", text)]
    assert found == []
    # the words are there, each with its meaning, and MLflow's names in the glossary
    assert "<th>ROC-AUC</th>" in page
    assert METRICS["roc_auc"].meaning.startswith("the chance a converting lead is ranked above")
    assert METRICS["capture_top10"].meaning == (
        "share of all conversions found among the top 10% of leads"
    )
    assert f"<td>{METRICS['capture_top10'].meaning}</td>" in page
    assert "<code class='key'>model_capture_top10</code>" in page


class _Tables(HTMLParser):
    """Header rows per table, and rows whose cells are all empty."""

    def __init__(self) -> None:
        super().__init__()
        self.head_rows: list[int] = []
        self.empty_rows = 0
        self._in_head = False
        self._cells: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.head_rows.append(0)
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._cells = []
            if self._in_head:
                self.head_rows[-1] += 1
        elif tag in ("td", "th") and self._cells is not None:
            self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag == "tr" and self._cells is not None:
            self.empty_rows += all(not c.strip() for c in self._cells)
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data


def test_every_table_has_one_header_row_and_no_empty_row(page: str):
    from leadscore.models.rules import RuleScorer
    from tests.models.test_rules_numeric import POINTS, RULES, _frame

    card = RuleScorer(rules=RULES, activity_points=POINTS).card(_frame(), np.array([1, 0, 1, 0]))
    for html in (page, render_report(replace(small_window(), rules_card=card))):
        tables = _Tables()
        tables.feed(html)
        assert len(tables.head_rows) >= 12
        assert set(tables.head_rows[1:]) == {1}  # the header table (first) has no thead
        assert tables.empty_rows == 0


def test_wilson_interval_by_hand():
    # 432 of 800: centre (0.54 + 1.96^2/1600) / (1 + 1.96^2/800), half-width 0.0345
    low, high = wilson(432, 800)
    assert low == pytest.approx(0.5054, abs=1e-4) and high == pytest.approx(0.5743, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)


def _graded() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grade A states 0.62 and converts 0.54 (800 rows); B states 0.30, converts 0.30;
    C states 0.05 and converts 0.10 (400 rows)."""
    y = np.r_[np.ones(432), np.zeros(368), np.ones(150), np.zeros(350), np.ones(40), np.zeros(360)]
    p = np.r_[np.full(800, 0.62), np.full(500, 0.30), np.full(400, 0.05)]
    grades = np.array(["A"] * 800 + ["B"] * 500 + ["C"] * 400)
    return y, p, grades


def test_an_overconfident_grade_is_called_so_and_a_calibrated_one_is_not():
    y, p, grades = _graded()
    a, b, c, d = grade_calibration(y, p, grades, ["A", "B", "C", "D"])
    assert (a.rows, a.predicted, a.observed) == (800, pytest.approx(0.62), 0.54)
    assert a.words() == "overconfident: predicted 0.62, observed 0.54 [0.51, 0.57]"
    assert b.verdict == "consistent" and not b.flagged
    assert c.verdict == "underconfident" and c.words().startswith(
        "underconfident: predicted 0.050, observed 0.10 ["
    )
    assert d.rows == 0 and d.verdict == "no leads"
    # by lead: each row its own lead gives the same verdicts
    by_lead = grade_calibration(y, p, grades, ["A", "B"], leads=np.arange(len(y)))
    assert [g.verdict for g in by_lead] == ["overconfident", "consistent"]
    assert by_lead[0].high < 0.62 < by_lead[0].predicted + 0.01


def test_the_ece_target_is_not_just_met_when_a_grade_is_off():
    y, p, grades = _graded()
    calibration = grade_calibration(y, p, grades, ["A", "B"])
    ece = TargetResult("ece", "model expected calibration error", "<=", 0.02, 0.005, 0.001, 0.01)
    verdict = targets_table([ece], calibration)["verdict"].iloc[0]
    assert verdict == (
        "met on average, but grade A is overconfident (predicted 0.62, observed 0.54 [0.51, 0.57])"
    )
    assert targets_table([ece], calibration[1:])["verdict"].iloc[0] == "met"
    calm = [GradeCalibration("A", 10, 0.5, 0.5, 0.2, 0.8)]
    assert targets_table([ece], calm)["verdict"].iloc[0] == "met"


def _capacity_frame() -> pd.DataFrame:
    """Two snapshot dates 14 days apart; five leads; scores chosen so a hand count is easy."""
    return pd.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d", "a", "b", "c", "e"],
            "as_of": pd.to_datetime(["2026-01-01"] * 4 + ["2026-01-15"] * 4, utc=True),
            "y": [1, 0, 0, 1, 1, 1, 0, 1],
            "model": [4, 3, 2, 1, 4, 1, 3, 2],
            "rules": [1, 2, 3, 4, 1, 4, 2, 3],
        }
    )


def test_capacity_equals_a_hand_count():
    f = _capacity_frame()
    table, span = capacity(
        f["y"].to_numpy(), f["model"].to_numpy(), f["rules"].to_numpy(), f["lead_id"],
        f["as_of"], calls_per_week=[0, 1, 2],
    )  # fmt: skip
    assert (span.count, span.days, span.calls(1)) == (2, 14.0, 2)  # 1 a week = 2 a fortnight
    # 1 call a week: the model calls a, b then a, c -> a converts: 1; the rules call d, c
    # then b, e -> d, b, e: 3. Two a week: everyone, both times -> a, d, b, e: 4.
    assert table["model"].tolist() == [0, 1, 4]
    assert table["rules"].tolist() == [0, 3, 4]
    assert table.loc[0, "random"] == 0 and table.loc[2, "random"] == 4
    assert 0 < table.loc[1, "random"] < 4
    assert weekly_volume(f["lead_id"], span) == 2


def test_capacity_without_dates_is_one_period_of_n_calls():
    f = _capacity_frame().assign(as_of=pd.NaT)
    span = periods(f["as_of"])
    assert (span.count, span.days, span.calls(3)) == (1, None, 3)
    table, _ = capacity(
        f["y"].to_numpy(), f["model"].to_numpy(), f["rules"].to_numpy(), f["lead_id"],
        f["as_of"], calls_per_week=[2],
    )  # fmt: skip
    # one list: the model's first two distinct leads are a (row 0) and a (row 4) -> a, c
    assert table.loc[2, "model"] == 1 and table.loc[2, "rules"] == 2  # d/b at 4: d, b


def test_segment_and_owner_tables_count_by_hand():
    rng = np.random.default_rng(3)
    n = 300
    leads = pd.DataFrame(
        {"lead_id": [f"L{i}" for i in range(100)], "owner": ["ann"] * 90 + ["bo"] * 10}
    )
    entities = validation_entities(
        pd.DataFrame({"lead_id": [f"L{i % 100}" for i in range(n)], "as_of": pd.NaT}), leads
    )
    assert entities["owner"].tolist()[:3] == ["ann"] * 3 and "segment" not in entities
    y = (np.arange(n) % 100 < 30).astype(int)  # leads L0-L29 convert at every snapshot
    model = y + rng.normal(size=n)
    table = group_table(
        entities["owner"], entities["lead_id"], y, model, np.full(n, 0.2), -model,
        np.full(n, 0.1),
    )  # fmt: skip
    ann, bo = table.loc["ann"], table.loc["bo"]
    assert (ann["leads"], ann["conversions"], ann["snapshots"]) == (90, 30, 270)
    assert (bo["leads"], bo["conversions"], bo["snapshots"]) == (10, 0, 30)
    assert ann["observed_rate"] == pytest.approx(90 / 270) and bo["observed_rate"] == 0
    assert ann["model_mean_probability"] == pytest.approx(0.2)
    assert ann["rules_mean_probability"] == pytest.approx(0.1)
    mask = entities["owner"].eq("ann").to_numpy()
    assert ann["model_roc_auc"] == pytest.approx(roc_auc_score(y[mask], model[mask]))
    assert ann["rules_roc_auc"] == pytest.approx(1 - ann["model_roc_auc"])
    assert bo["model_roc_auc"] == TOO_FEW == bo["rules_roc_auc"]  # one class only
    many = group_table(
        pd.Series([f"o{i % 30}" for i in range(n)]), entities["lead_id"], y, model,
        np.full(n, 0.2), model, np.full(n, 0.1), max_groups=25,
    )  # fmt: skip
    assert len(many) == 26 and many.index[-1] == "the other 5"
    assert many.loc["the other 5", "snapshots"] == 50


def test_the_page_has_segment_owner_and_capacity_views(page: str):
    section = page[page.index("<h2>By owner</h2>") : page.index("<h2>Calibration</h2>")]
    assert section.count("<tr><th>owner ") == 4 and "<td>250</td><td>" in section
    capacity_part = page[page.index("<h2>Calls per week") : page.index("<h2>By segment</h2>")]
    assert '<svg class="chart"' in capacity_part and '<polyline class="model"' in capacity_part
    assert re.search(r"\d+ calls a week, best leads first, reach \d+ conversions", capacity_part)
    no_entities = render_report(replace(small_window(), entities=None))
    assert "no per-owner view" in no_entities and "no capacity view" in no_entities


def test_header_names_run_version_window_and_mlflow(page: str):
    for fragment in (
        "<th>MLflow run</th><td><code>0123456789abcdef</code>",
        "<th>model</th><td>leadscore version 7 (promoted to champion)</td>",
        "<th>training data</th><td>leads as of 2025-01-01 to 2025-09-30",
        "<th>data as of</th><td>2026-05-01</td>",
        "<code>mlflow ui --backend-store-uri sqlite:////tmp/mlflow.db</code>",
        '<a href="http://127.0.0.1:5000/#/experiments/1/runs/0123456789abcdef" rel="noopener noreferrer">http://127.0.0.1:5000/#/experiments/1/runs/0123456789abcdef</a>',
        '<a href="http://127.0.0.1:5000/#/models/leadscore/versions/7" rel="noopener noreferrer">http://127.0.0.1:5000/#/models/leadscore/versions/7</a>',
    ):
        assert fragment in page
    rows = dict(header_rows(None))
    assert rows["model"] == "not registered" and rows["MLflow run"].startswith("not logged")
    server = dict(
        header_rows(RunHeader("r1", "4", "m", "2", "not promoted: roc_auc", "https://ml.example/"))
    )
    assert server["open in MLflow"] == (
        'run: <a href="https://ml.example/#/experiments/4/runs/r1" rel="noopener noreferrer">https://ml.example/#/experiments/4/runs/r1</a><br>'
        'model version: <a href="https://ml.example/#/models/m/versions/2" rel="noopener noreferrer">https://ml.example/#/models/m/versions/2</a>'
    )
    assert server["model"] == "m version 2 (not promoted: ROC-AUC)"


def test_window_dates_in_words():
    rows = pd.DataFrame(
        {"lead_id": list("abcd"), "as_of": pd.to_datetime(
            ["2025-01-01", "2025-02-01", "2025-06-01", "2025-06-15"], utc=True)}
    )  # fmt: skip
    split = Split(np.array([0, 1]), np.array([2, 3]), "out_of_time", pd.NaT, pd.NaT)
    assert window_dates(rows, split, pd.Timestamp("2025-10-01", tz="UTC"), 90) == {
        "training data": "leads as of 2025-01-01 to 2025-02-01 (2 examples)",
        "validation data": "leads as of 2025-06-01 to 2025-06-15 (2 examples), outcomes "
        "followed 90 days",
        "data as of": "2025-10-01",
    }
    undated = window_dates(rows.assign(as_of=pd.NaT), split, pd.NaT, 90)
    assert undated["validation data"] == "2 examples (no dates)"
    assert undated["data as of"] == "no dates"


def _spec(name: str, family: str, description: str, **kw: object) -> FeatureSpec:
    return FeatureSpec(name, family, "numeric", description, "{value}", **kw)  # type: ignore[arg-type]


class _Plain:
    """A registry that declares no concepts (as before ``FeatureRegistry.concepts``)."""

    def __init__(self, specs: list[FeatureSpec]) -> None:
        self._specs = {s.name: s for s in specs}

    def __getitem__(self, name: str) -> FeatureSpec:
        return self._specs[name]


def test_concepts_from_the_registry_and_lead_age_is_not_engagement():
    specs = [
        _spec("industry", "fit", "lead's industry"),
        _spec("n_pricing_7d", "engagement", "pricing views, 7 days"),
        _spec("decay_pricing", "engagement", "pricing views weighted"),
        _spec(LEAD_AGE, "engagement", "days since the lead was created"),
    ]
    plain = report_concepts(_Plain(specs), [s.name for s in specs])  # type: ignore[arg-type]
    assert [(c.label, c.family) for c in plain] == [
        ("lead's industry", "fit"),
        ("pricing views, 7 days", "engagement"),
        ("pricing views weighted", "engagement"),
        ("days since the lead was created", "lifecycle"),
    ]

    class Concept:
        def __init__(self, key: str, label: str, family: str, features: tuple) -> None:
            self.key, self.label, self.family, self.features = key, label, family, features
            self.direction = 1

    class WithConcepts(FeatureRegistry):
        def concepts(self) -> dict[str, Concept]:
            return {
                "pricing": Concept(
                    "pricing", "pricing-page views", "engagement", ("n_pricing_7d", "decay_pricing")
                ),
                "age": Concept("age", "lead age", "lifecycle", (LEAD_AGE,)),
            }

    features = [s.name for s in specs]
    concepts = report_concepts(WithConcepts(specs), features)
    assert [(c.key, c.label, c.family, c.features) for c in concepts] == [
        ("industry", "lead's industry", "fit", ("industry",)),
        ("pricing", "pricing-page views", "engagement", ("n_pricing_7d", "decay_pricing")),
        ("age", "lead age", "lifecycle", (LEAD_AGE,)),
    ]
    # a concept's push is the sum of its features' SHAP per lead: +1 and -1 cancel
    contributions = np.array([[0.5, 1.0, -1.0, 0.2], [-0.5, 2.0, 1.0, -0.2]])
    importance = concept_importance(contributions, features, concepts).set_index("concept")
    assert importance.loc["pricing", "mean_abs_contribution"] == pytest.approx((0 + 3) / 2)
    assert importance.loc["industry", "mean_abs_contribution"] == pytest.approx(0.5)
    assert importance.index[0] == "pricing"


def test_the_page_shows_concepts_and_families_in_words(page: str):
    families = page[page.index("<h2>Importance by family</h2>") :]
    assert "<th>engagement (what the lead did)</th>" in families
    drivers = page[page.index("<h2>What drives the score</h2>") :]
    assert drivers.index("<th>visits</th>") < drivers.index("<th>industry</th>")
