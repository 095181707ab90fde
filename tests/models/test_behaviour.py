"""Behavioural tests of the demo model (Made-With-ML style).

The model is the one `make demo` trains: leadscore.yaml's synthetic CRM (20k leads, seed
42) through the contract and the train flow's recipe (``models.recipe``); the leads are its
open leads as of the score flow's time.

Invariance: what must not matter to a score (the lead's id, its owner, the order of the
rows) changes no score. Direction: what must only help (a recent high-intent activity)
never lowers the engagement sub-score, measured over every open lead of the CRM.
Everything goes through the real path: contract columns -> point-in-time features ->
``score_frame`` (probability, grade, exact contributions summed by family).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.builder import build_features, entities_at
from leadscore.features.contract import (
    ACTIVITY_TYPE,
    LEAD_ID,
    OCCURRED_AT,
    OPEN,
    OWNER,
    STATUS,
    VALUE,
)
from leadscore.features.registry import ENGAGEMENT, FIT
from leadscore.models import recipe
from leadscore.models.scoring import score_frame
from leadscore.pipelines.settings import Settings
from tests.conftest import ROOT

HIGH_INTENT = "meeting_booked"
DAYS_BEFORE = 1


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    """leadscore.yaml as `make demo` reads it, in a folder of its own."""
    from leadscore.pipelines.settings import load_settings

    folder = tmp_path_factory.mktemp("demo")
    (folder / "leadscore.yaml").write_text((ROOT / "leadscore.yaml").read_text())
    return load_settings(folder / "leadscore.yaml")


@pytest.fixture(scope="module")
def world(settings: Settings):
    """The demo model: the demo's synthetic CRM (leadscore.yaml's size and seed) loaded
    through the contract, split and fitted as the train flow does; its open leads as of
    the time the score flow uses."""
    from leadscore.pipelines.sources import load_crm, scoring_time
    from leadscore.synthetic import generate_crm, write_crm

    demo = settings.synthetic
    write_crm(generate_crm(demo.leads, seed=demo.seed), settings.project_dir / demo.out_dir)
    crm = load_crm(settings)
    leads, activities = crm.leads, crm.activities
    data = recipe.examples(leads, activities, crm.end, settings)
    model = recipe.fit_model(data, settings.model)
    rules = recipe.scoring_rules(settings.rules, settings.features)
    open_leads = leads[leads[STATUS] == OPEN].reset_index(drop=True)
    return {
        "model": model,
        "rules": rules,
        "registry": model.registry_,
        "leads": open_leads,
        "activities": activities,
        "as_of": scoring_time(settings.data.as_of, crm.end),
        "crm": crm,
        "data": data,
    }


def _scores(world, settings: Settings, leads: pd.DataFrame, activities: pd.DataFrame):
    X = build_features(leads, activities, entities_at(leads, world["as_of"]), settings.features)
    frame = score_frame(
        X, world["model"], world["rules"], world["registry"], settings.scoring, leads
    )
    return frame.set_index(LEAD_ID)


@pytest.fixture(scope="module")
def baseline(world, settings: Settings) -> pd.DataFrame:
    return _scores(world, settings, world["leads"], world["activities"])


def _same_scores(a: pd.DataFrame, b: pd.DataFrame) -> None:
    b = b.loc[a.index]
    for column in ("probability", "score", "grade", FIT, ENGAGEMENT, "rule_score", "reasons"):
        assert (a[column].to_numpy() == b[column].to_numpy()).all(), column


def test_there_is_something_to_score(baseline: pd.DataFrame):
    assert len(baseline) > 200
    assert baseline["probability"].std() > 0.01  # a model that says the same of all proves nothing


def test_lead_id_does_not_change_a_score(world, settings: Settings, baseline: pd.DataFrame):
    rename = {old: f"crm-{i:06d}-x" for i, old in enumerate(reversed(world["leads"][LEAD_ID]))}
    leads = world["leads"].assign(**{LEAD_ID: world["leads"][LEAD_ID].map(rename)})
    acts = world["activities"]
    acts = acts[acts[LEAD_ID].isin(rename)].assign(**{LEAD_ID: lambda a: a[LEAD_ID].map(rename)})
    renamed = _scores(world, settings, leads, acts)
    renamed.index = renamed.index.map({v: k for k, v in rename.items()})
    _same_scores(baseline, renamed)


def test_owner_does_not_change_a_score(world, settings: Settings, baseline: pd.DataFrame):
    leads = world["leads"].assign(**{OWNER: "someone.else@example.com"})
    _same_scores(baseline, _scores(world, settings, leads, world["activities"]))


def test_row_order_does_not_change_a_score(world, settings: Settings, baseline: pd.DataFrame):
    rng = np.random.default_rng(0)
    leads = world["leads"].sample(frac=1.0, random_state=1).reset_index(drop=True)
    acts = world["activities"].iloc[rng.permutation(len(world["activities"]))]
    shuffled = _scores(world, settings, leads, acts.reset_index(drop=True))
    _same_scores(baseline, shuffled)
    # ranks are a function of the scores, so they agree too (ties aside: compare sorted)
    assert sorted(shuffled["rank"]) == sorted(baseline["rank"])


def _with_recent_meeting(world, settings: Settings) -> pd.DataFrame:
    """Every open lead's scores after one more high-intent activity a day before as_of."""
    leads = world["leads"]
    when = world["as_of"] - pd.Timedelta(days=DAYS_BEFORE)
    booked = pd.DataFrame(
        {
            LEAD_ID: leads[LEAD_ID].to_numpy(),
            ACTIVITY_TYPE: HIGH_INTENT,
            OCCURRED_AT: pd.Series(when, index=leads.index).astype(
                world["activities"][OCCURRED_AT].dtype
            ),
            VALUE: np.nan,
        }
    )
    acts = pd.concat([world["activities"], booked[world["activities"].columns]], ignore_index=True)
    return _scores(world, settings, leads, acts)


@pytest.fixture(scope="module")
def engagement_delta(world, settings: Settings, baseline: pd.DataFrame) -> np.ndarray:
    after = _with_recent_meeting(world, settings).loc[baseline.index]
    return after[ENGAGEMENT].to_numpy() - baseline[ENGAGEMENT].to_numpy()


def test_a_recent_meeting_raises_engagement_of_most_leads(engagement_delta: np.ndarray):
    # measured over every open lead: the typical lead gains clearly, most leads gain
    assert np.median(engagement_delta) > 0.05
    assert engagement_delta.mean() > 0.1
    assert (engagement_delta > 0).mean() > 0.75


def test_a_recent_meeting_never_lowers_engagement(engagement_delta: np.ndarray):
    # Enforced by model.monotone (directions on behaviour features, isolated from the fit
    # features). Unconstrained, 97 of the demo's 2,955 open leads (worst -0.29 log-odds)
    # lose engagement (see the next test); constrained, 98% gain, median +0.72.
    assert engagement_delta.min() >= -1e-9, f"{(engagement_delta < 0).sum()} leads lost engagement"


def test_without_monotone_rules_a_meeting_can_lower_engagement(world, settings: Settings):
    """The guarantee comes from the constraints: the same world unconstrained breaks it
    (measured on the demo: 97 of 2,955 open leads lose engagement, worst -0.29 log-odds)."""
    from leadscore.models.config import MonotoneConfig

    # the configured LightGBM: model.kind auto picks a regularised one on this world, which
    # unconstrained leaves under the 2% checked here losing engagement (smoother trees)
    free = settings.model.model_copy(
        update={"kind": "lightgbm", "monotone": MonotoneConfig(directions={})}
    )
    model = recipe.fit_model(world["data"], free)
    unconstrained = {**world, "model": model}
    before = _scores(unconstrained, settings, world["leads"], world["activities"])
    after = _with_recent_meeting(unconstrained, settings).loc[before.index]
    delta = after[ENGAGEMENT].to_numpy() - before[ENGAGEMENT].to_numpy()
    assert (delta < -1e-9).sum() > 0.02 * len(delta), "unconstrained model already monotone"


def test_never_doing_a_thing_counts_as_long_ago(world, settings: Settings):
    """A lead that never had a good activity is never helped by that activity's recency,
    and one that never unsubscribed never hurt by it, whatever its age: "never" reads as
    longer ago than any real activity. (Filled with the lead's age, a new lead's "never"
    read as "just now": on a 2k-lead CRM, 38 of 59 "no ... yet" reasons pointed the wrong
    way, and 6% of the demo's open leads showed "no form submission yet (+)".)"""
    from leadscore.features.registry import decay_name, recency_name

    leads = world["leads"]
    X = build_features(
        leads, world["activities"], entities_at(leads, world["as_of"]), settings.features
    )
    contributions, _ = world["model"].contributions(X)
    column = {name: j for j, name in enumerate(world["model"].features)}
    checked = 0
    for kind, points in settings.features.activity_points().items():
        never = (X[decay_name(kind)] == 0).to_numpy()
        if points == 0 or not never.any():
            continue
        phi = contributions[never, column[recency_name(kind)]]
        if points > 0:
            assert (phi <= 1e-9).all(), (kind, phi.max())
        else:
            assert (phi >= -1e-9).all(), (kind, phi.min())
        checked += int(never.sum())
    assert checked > 5 * len(leads)  # most leads never did most things
