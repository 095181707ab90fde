"""The score-aware solver: exact pruning, the optimum, the fairness band, the counts model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from leadscore.models.routing import aggregate
from leadscore.models.routing.candidates import PENALTY
from leadscore.models.routing.config import Rep
from leadscore.models.routing.route import route
from leadscore.models.routing.solver import solve
from tests.models.routing_sample import pool_of, random_pool, team


def instance(seed: int, leads: int = 14, reps: int = 3, keys: int = 4):
    """Random leads over a few eligibility keys, reps allowed on random keys."""
    rng = np.random.default_rng(seed)
    ev = np.round(rng.uniform(0.01, 1.0, leads), 3)
    key = rng.integers(0, keys, leads)
    allowed = rng.uniform(size=(keys, reps)) < 0.6
    left = rng.integers(1, 4, reps)
    target = left / left.sum()
    return ev, key, allowed, left, np.zeros(reps), target


def objective(solved) -> float:
    return solved.expected - PENALTY * solved.outside_band


@pytest.mark.parametrize("seed", range(8))
def test_pruning_is_exact_against_the_program_on_every_pair(seed):
    ev, key, allowed, left, fixed, target = instance(seed)
    args = (ev, key, allowed, left, fixed, target, 0.2, 10.0)
    pruned, full = solve(*args), solve(*args, prune=False)
    assert full.status == pruned.status == "optimal"
    assert pruned.candidates < full.candidates  # the pruning does drop leads here
    assert objective(pruned) == pytest.approx(objective(full), abs=1e-6)


def brute_force(ev, key, allowed, left) -> float:
    """Most expected value over every assignment of each lead to a rep or to nobody."""
    best = 0.0
    n_reps = len(left)
    for choice in itertools.product(range(-1, n_reps), repeat=len(ev)):
        taken = np.bincount([c for c in choice if c >= 0], minlength=n_reps)
        if (taken > left).any():
            continue
        if any(c >= 0 and not allowed[key[i], c] for i, c in enumerate(choice)):
            continue
        best = max(best, sum(ev[i] for i, c in enumerate(choice) if c >= 0))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_without_the_band_the_solver_finds_the_brute_force_optimum(seed):
    ev, key, allowed, left, fixed, target = instance(seed, leads=7, reps=3, keys=3)
    left = np.minimum(left, 2)
    solved = solve(ev, key, allowed, left, fixed, target, 0.2, 10.0, penalty=0.0)
    assert solved.expected == pytest.approx(brute_force(ev, key, allowed, left), abs=1e-9)


def test_score_aware_beats_round_robin_and_territory_under_the_same_rules():
    pool = random_pool(60, seed=5)
    territory_only = team(skill=None, min_seniority={}, fairness_band=1.0)
    no_rules = territory_only.model_copy(update={"territory": None})
    value = {}
    for name, config, method in (
        ("territory", territory_only, "territory"),
        ("score_aware", territory_only, "score_aware"),
        ("round_robin", no_rules, "round_robin"),
        ("score_aware_no_rules", no_rules, "score_aware"),
    ):
        result = route(pool, config.model_copy(update={"method": method}))
        assert result.reps["within_band"].all(), name  # the baselines are feasible too
        value[name] = result.calls["expected"][result.calls["rep_id"].notna()].sum()
    assert value["score_aware"] > value["territory"] + 0.5
    assert value["score_aware_no_rules"] > value["round_robin"] + 0.5


def test_the_fairness_band_holds_when_it_can():
    reps = [Rep(id=f"r{i}", capacity=c, territories=["US"]) for i, c in enumerate((2, 3, 5))]
    rng = np.random.default_rng(6)
    pool = pool_of(
        [
            {"lead_id": f"L{i:02d}", "probability": float(p), "territory": "US"}
            for i, p in enumerate(np.round(rng.uniform(0.05, 0.95, 30), 3))
        ]
    )
    config = team(reps=reps, skill=None, min_seniority={}, fairness_band=0.05)
    result = route(pool, config.model_copy(update={"method": "score_aware"}))
    reps_frame = result.reps
    assert reps_frame["within_band"].all() and not result.notes
    ratio = reps_frame["share"] / reps_frame["target_share"]
    assert ratio.between(0.95 - 1e-6, 1.05 + 1e-6).all()
    assert "optimal" in result.solver and "gap 0.00%" in result.solver
    # best expected value first: the 10 best leads are the ones called
    called = set(result.calls.dropna(subset=["rep_id"])["lead_id"])
    assert called == set(pool.nlargest(10, "probability")["lead_id"])


def test_a_band_that_cannot_hold_is_reported_with_why():
    reps = [
        Rep(id="wide", capacity=5, territories=["US"]),
        Rep(id="narrow", name="Nia Row", capacity=5, territories=["IS"]),
    ]
    pool = pool_of(
        [{"lead_id": f"U{i}", "probability": 0.8, "territory": "US"} for i in range(8)]
        + [{"lead_id": "I0", "probability": 0.1, "territory": "IS"}]
    )
    config = team(reps=reps, skill=None, min_seniority={}, method="score_aware")
    result = route(pool, config)
    within = result.reps.set_index("rep_id")["within_band"]
    assert not within["narrow"] and not within["wide"]
    assert result.calls["rep_id"].notna().sum() == 6  # every place that can be filled is
    note = next(n for n in result.notes if n.startswith("Nia Row"))
    assert "hold at most 0.10" in note


def test_counts_model_at_scale_keeps_capacity_rules_and_no_skipping(monkeypatch):
    pool = random_pool(400, seed=7, countries=("US", "GB", "DE", "FR"))
    reps = [
        Rep(id=f"r{i}", capacity=3 + i % 4, territories=[["US", "GB", "DE", "FR"][i % 4]])
        for i in range(12)
    ]
    config = team(reps=reps, skill=None, min_seniority={}, method="score_aware")
    exact = route(pool, config)
    rest = pool.assign(ev=pool["probability"])
    monkeypatch.setattr(aggregate, "EXACT_PAIRS", 0)  # the counts model on a small pool
    counts = route(pool, config)
    assert "counts model" in counts.solver
    calls = counts.calls.merge(rest, on="lead_id")
    for rep in reps:
        mine = calls[calls["rep_id"] == rep.id]
        assert len(mine) <= rep.capacity
        assert set(mine["territory"]) <= set(rep.territories)
    # no skipping: in each country the called leads are its best ones
    for _, group in calls.groupby("territory"):
        called = group[group["rep_id"].notna()]["ev"]
        if len(called) and (group["rep_id"].isna()).any():
            assert called.min() >= group[group["rep_id"].isna()]["ev"].max()
    total = exact.calls["rep_id"].notna().sum()
    assert counts.calls["rep_id"].notna().sum() == total  # as many calls
    exact_ev = exact.calls["expected"][exact.calls["rep_id"].notna()].sum()
    counts_ev = counts.calls["expected"][counts.calls["rep_id"].notna()].sum()
    assert counts_ev == pytest.approx(exact_ev, rel=0.02)
