"""The knowable bound (bench/knowable_oracle.py): the traits' posterior given an export.

Its likelihood rebuilds the generator's rules by hand, so the tests hold it to the
generator: with the trait noise off the prior is the generator's fit exactly; the burst
chain matches the generator's countdown; the posterior of each trait is unbiased for the
truth (regressing truth on the posterior mean gives a slope of 1, the signature of a
correct posterior) and reads more of it than the prior; the burst it infers is the one
running; and nothing at or after as_of moves it.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import poisson

import leadscore.synthetic as synthetic
from bench.knowable_oracle import (
    Grid,
    _burst_transition,
    fit_prior,
    knowable_probability,
    posterior,
)
from bench.oracle_gap import world_overrides
from leadscore.synthetic import world

pytestmark = pytest.mark.slow

AS_OF = (pd.Timestamp("2026-06-01", tz="UTC"), pd.Timestamp("2026-09-15 13:30", tz="UTC"))


def _open_at(leads: pd.DataFrame) -> pd.DataFrame:
    """(lead_id, as_of) of every lead open at each of AS_OF."""
    parts = []
    for as_of in AS_OF:
        open_then = (leads["created_at"] < as_of) & (
            leads["closed_at"].isna() | (leads["closed_at"] > as_of)
        )
        parts.append(pd.DataFrame({"lead_id": leads.loc[open_then, "lead_id"], "as_of": as_of}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def crm() -> synthetic.SyntheticCRM:
    return synthetic.generate_crm(3000, seed=3)


@pytest.fixture(scope="module")
def entities(crm: synthetic.SyntheticCRM) -> pd.DataFrame:
    return _open_at(crm.leads)


@pytest.fixture(scope="module")
def post(crm: synthetic.SyntheticCRM, entities: pd.DataFrame):
    return posterior(crm.leads, crm.activities, crm.truth, entities)


def test_without_fit_noise_the_prior_is_the_generators_fit() -> None:
    with world_overrides({"FIT_NOISE_SD": 0.0}):
        crm = synthetic.generate_crm(2000, seed=11)
        mean, sd = fit_prior(crm.leads)
    blank = crm.leads[["industry", "seniority", "department"]].isna().any(axis=1).to_numpy()
    assert 0 < blank.sum() < 200
    assert np.allclose(mean[~blank], crm.truth["fit_logit"].to_numpy()[~blank], atol=1e-12)
    assert np.all(sd[~blank] == 0) and np.all(sd[blank] > 0)


def test_burst_chain_matches_the_generators_countdown() -> None:
    keys = np.random.default_rng(0).integers(0, 2**64, 400_000, dtype=np.uint64)
    left = np.zeros(len(keys), dtype=np.int64)
    runs = np.zeros((2, 2))
    for day in range(20_000, 20_060):
        after = synthetic.advance_bursts(left, keys, day)
        np.add.at(runs, ((left > 0).astype(int), (after > 0).astype(int)), 1)
        left = after
    empirical = runs / runs.sum(axis=1, keepdims=True)
    assert np.allclose(empirical, _burst_transition(), atol=0.004)


def test_posterior_is_unbiased_for_the_hidden_traits(crm, entities, post) -> None:
    assert len(entities) > 600
    assert np.allclose(post.weight.sum(axis=1), 1.0)
    truth = crm.truth.set_index("lead_id").loc[entities["lead_id"]]
    for trait, column in (("log_interest", "log_interest"), ("fit", "fit_logit")):
        guess = (post.weight * getattr(post, trait)).sum(axis=1)
        prior = getattr(post, trait).mean(axis=1)  # equal prior weights: the prior mean
        true = truth[column].to_numpy()
        slope = np.cov(true, guess)[0, 1] / guess.var(ddof=1)
        assert 0.9 < slope < 1.1, (trait, slope)
        assert np.corrcoef(true, guess)[0, 1] > np.corrcoef(true, prior)[0, 1]
    interest = (post.weight * post.log_interest).sum(axis=1)
    r = np.corrcoef(truth["log_interest"], interest)[0, 1]
    assert r > 0.8  # activity counts read the interest


def test_posterior_reads_the_running_burst(crm, entities, post) -> None:
    rows = synthetic.oracle_rows(crm.truth, crm.activities, entities, 90)
    running = rows.burst_left > 0
    p = (post.weight * post.burst).sum(axis=1)
    assert 0.01 < running.mean() < 0.2
    assert p.mean() == pytest.approx(running.mean(), abs=0.02)
    assert running[p > 0.5].mean() > 0.5 and running[p < 0.1].mean() < 0.1


def test_posterior_ignores_what_happens_at_or_after_as_of(crm, entities, post) -> None:
    picked = entities[entities["as_of"] == AS_OF[-1]].iloc[::5]  # each lead's last row
    later = pd.DataFrame(
        {
            "lead_id": np.repeat(picked["lead_id"].to_numpy(), 2),
            "activity_type": ["meeting_booked", "unsubscribe"] * len(picked),
            "occurred_at": np.stack(
                [picked["as_of"], picked["as_of"] + pd.Timedelta(days=3)], axis=1
            ).ravel(),
            "value": np.nan,
        }
    )
    moved = pd.concat([crm.activities, later], ignore_index=True)
    again = posterior(crm.leads, moved, crm.truth, entities)
    assert np.array_equal(again.weight, post.weight) and np.array_equal(again.burst, post.burst)


def test_knowable_bound_tracks_the_hidden_oracle(crm, entities) -> None:
    some = entities.iloc[::3].reset_index(drop=True)
    knowable = knowable_probability(crm.leads, crm.activities, crm.truth, some, 90, paths=32)
    hidden = synthetic.oracle_probability(crm.truth, crm.activities, some, 90, paths=32)
    assert knowable.shape == hidden.shape and np.all((knowable >= 0) & (knowable <= 1))
    assert knowable.mean() == pytest.approx(hidden.mean(), rel=0.1)  # same world, same level
    assert 0.8 < np.corrcoef(knowable, hidden)[0, 1] < 0.999  # close, but not told the traits


def _brute_force_log_likelihood(
    crm: synthetic.SyntheticCRM, lead_id: str, as_of: pd.Timestamp, fit: float, log_interest: float
) -> float:
    """log P(the lead's export up to as_of | its traits), summing over every burst path,
    day by day with the generator's own hazard and rate functions (scalar, no filter)."""
    lead = crm.leads.set_index("lead_id").loc[lead_id]
    hidden = crm.truth.set_index("lead_id").loc[lead_id]
    acts = crm.activities[crm.activities["lead_id"] == lead_id]
    acts = acts[acts["occurred_at"] < as_of]
    t = acts["occurred_at"].to_numpy("datetime64[s]").astype(np.int64)
    kinds = pd.Index(synthetic.ALL_TYPES).get_indexer(acts["activity_type"])
    created = int(pd.Timestamp(lead["created_at"]).value // 10**9)
    end = -(-as_of.value // 10**9)
    first, last = created // 86400, end // 86400
    key = np.uint64(np.int64(hidden["calendar_key"]).view(np.uint64))
    industry = synthetic.INDUSTRIES.index(hidden["true_industry"])
    calendar = synthetic.activity_calendar(first, last - first + 1, key)[:, industry]
    units = synthetic.Units.of(
        np.array([created]), np.array([fit]), np.array([log_interest]), np.zeros(1, np.uint64)
    )
    step = _burst_transition()
    days = list(range(first, last + 1))
    total = -np.inf
    for path in range(2 ** len(days)):
        bursts = [(path >> j) & 1 for j in range(len(days))]
        if bursts[0]:
            continue  # no burst on the creation day
        logp = sum(np.log(step[a, b]) for a, b in pairwise(bursts))
        for j, day in enumerate(days):
            start = day * 86400
            lo, hi = max(start, created), min(start + 86400, end)
            past = t < start
            engagement = float(
                (world.WEIGHT_BY_CODE[kinds[past]] * synthetic.decay(start - t[past])).sum()
            )
            recent = np.array([np.log1p(max(engagement, 0.0))])
            unsub = np.array([bool((kinds[past] == synthetic.TYPE_CODE["unsubscribe"]).any())])
            last_seen = np.array([max([created, *t[past]])])
            exo = synthetic.exogenous_rate(
                np.array([log_interest]),
                np.array([created]),
                day,
                calendar[j],
                np.array([bursts[j] * 5]),
            )
            rate = synthetic.activity_rate(exo, recent, unsub)[0] * (hi - lo) / 86400
            today = kinds[(t >= lo) & (t < hi)]
            logp += poisson.logpmf(len(today), rate)
            logits = world.MIX_BASE + world.MIX_SLOPE_E * recent[0] + world.MIX_SLOPE_FIT * fit
            logp += (logits[today] - logsumexp(logits)).sum()
            if created < start:
                p_close = synthetic.conversion_hazard(
                    units.hazard_offset, recent
                ) + synthetic.loss_hazard(units.loss_base, last_seen, unsub, start)
                logp += np.log1p(-min(float(p_close[0]), 1.0) * (hi - start) / 86400)
        total = np.logaddexp(total, logp)
    return float(total)


def test_filter_equals_a_brute_force_over_every_burst_path(crm) -> None:
    leads, acts = crm.leads, crm.activities
    as_of = pd.Timestamp("2026-07-01 09:15", tz="UTC")
    young = leads[
        (leads["created_at"] > as_of - pd.Timedelta(days=9)) & (leads["created_at"] < as_of)
    ]
    young = young[young["closed_at"].isna() | (young["closed_at"] > as_of)]
    counts = acts[acts["occurred_at"] < as_of]["lead_id"].value_counts()
    picked = [lead for lead in young["lead_id"] if counts.get(lead, 0) >= 3][:3]
    assert len(picked) == 3
    entities = pd.DataFrame({"lead_id": picked, "as_of": as_of})
    post = posterior(leads, acts, crm.truth, entities, Grid(fit=2, interest=3))
    for row, lead in enumerate(picked):
        brute = np.array(
            [
                _brute_force_log_likelihood(crm, lead, as_of, f, g)
                for f, g in zip(post.fit[row], post.log_interest[row], strict=True)
            ]
        )
        expected = np.exp(brute - logsumexp(brute))
        assert np.allclose(post.weight[row], expected, rtol=1e-6, atol=1e-12)
