"""Leads: creation times, personas, observable attributes, hidden fit, interest and keys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadscore.synthetic import world
from leadscore.synthetic.vocabulary import INDUSTRIES, OWNERS_BY_SEGMENT, SIZE_BOUNDS, VOCABULARY


def draw_categories(rng: np.random.Generator, rows: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Draw one category code per element; ``probs[rows[i]]`` is element i's distribution."""
    cdf = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
    u = rng.random(len(rows))
    codes = (u[:, None] > cdf[rows]).sum(axis=1)
    return np.minimum(codes, probs.shape[-1] - 1)


def _creation_seconds(rng: np.random.Generator, n: int, span: int) -> np.ndarray:
    """Sorted creation offsets (seconds into a ``span``) with a linearly growing volume."""
    g = world.CREATION_GROWTH
    u = rng.random(n)
    x = (np.sqrt(1.0 + 2.0 * g * u * (1.0 + g / 2.0)) - 1.0) / g  # inverse CDF of 1 + g*x
    return np.sort(np.floor(x * span).astype(np.int64))


def _fit_logit(rng: np.random.Generator, codes: dict[str, np.ndarray]) -> np.ndarray:
    """Hidden fit: additive attribute effects, two ICP interactions and unexplained noise."""
    fit = np.full(len(codes["industry"]), world.FIT_OFFSET)
    for name, effect in world.FIT_EFFECT.items():
        fit += effect[codes[name]]

    icp = icp_by_industry(codes["company_size"])[np.arange(len(fit)), codes["industry"]]
    fit += world.FIT_INTERACTION * icp
    return fit + rng.normal(0.0, world.FIT_NOISE_SD, len(fit))


def icp_by_industry(size_codes: np.ndarray) -> np.ndarray:
    """Whether a lead of each company size (``size_codes``, one per lead) would match an
    ideal customer profile in each industry: booleans of shape (leads, industries).

    The generator reads each lead's own industry; the bench's knowable bound weighs every
    industry when the export leaves a lead's industry blank.
    """
    industry = np.arange(len(INDUSTRIES))
    icp = np.zeros((len(size_codes), len(INDUSTRIES)), dtype=bool)
    for industries, sizes in world.ICP_COMBINATIONS:
        in_industry = np.isin(industry, [VOCABULARY["industry"].index(v) for v in industries])
        in_size = np.isin(size_codes, [VOCABULARY["company_size"].index(v) for v in sizes])
        icp |= in_industry[None, :] & in_size[:, None]
    return icp


def _firmographics(
    rng: np.random.Generator, size_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Employees (log-uniform inside the size bucket) and log-normal revenue that tracks them."""
    bounds = np.array(SIZE_BOUNDS)[size_codes]
    lo, hi = np.log(bounds[:, 0]), np.log(bounds[:, 1] + 1.0)
    employees = np.floor(np.exp(lo + rng.random(len(size_codes)) * (hi - lo)))
    employees = np.clip(employees, bounds[:, 0], bounds[:, 1])
    revenue = np.exp(np.log(0.15 * employees) + rng.normal(0.0, 0.6, len(size_codes)))
    return employees.astype(float), np.round(revenue, 3)


def draw_owners(rng: np.random.Generator, segments: np.ndarray) -> np.ndarray:
    """A sales rep per lead, drawn from the reps covering the lead's segment."""
    owners = np.empty(len(segments), dtype=object)
    for segment, reps in OWNERS_BY_SEGMENT.items():
        mask = segments == segment
        owners[mask] = np.array(reps, dtype=object)[rng.integers(0, len(reps), mask.sum())]
    return owners


def with_nulls(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Blank out ``share`` of the values (None for strings, NaN for floats)."""
    out = values.astype(object) if values.dtype.kind in "OUS" else values.astype(float)
    mask = rng.random(len(values)) < share
    out[mask] = None if out.dtype == object else np.nan
    return out


@dataclass(frozen=True)
class Population:
    """Static per-lead draws: what sales sees and what is hidden."""

    created: np.ndarray  # int64 seconds since the epoch
    persona: np.ndarray  # int codes into PERSONAS
    codes: dict[str, np.ndarray]  # attribute name -> codes into its vocabulary
    employees: np.ndarray
    revenue: np.ndarray
    fit: np.ndarray
    log_interest: np.ndarray
    burst_key: np.ndarray  # uint64: seeds the lead's bursts of activity (hidden)
    calendar_key: np.uint64  # seeds the CRM's campaign calendar (hidden)


def draw_population(rng: np.random.Generator, n: int, start: int, end: int) -> Population:
    """Draw creation times, personas, attributes, hidden fit, interest and burst keys."""
    created = start + _creation_seconds(rng, n, end - start)
    persona = draw_categories(rng, np.zeros(n, dtype=int), world.PERSONA_SHARE[None, :])
    codes = {name: draw_categories(rng, persona, mix) for name, mix in world.PERSONA_MIX.items()}
    employees, revenue = _firmographics(rng, codes["company_size"])
    fit = _fit_logit(rng, codes)
    log_interest = world.INTEREST_FIT_SLOPE * fit + rng.normal(0.0, world.INTEREST_SD, n)
    burst_key = rng.integers(0, 2**64, n, dtype=np.uint64)
    calendar_key = rng.integers(0, 2**64, 1, dtype=np.uint64)[0]
    return Population(
        created, persona, codes, employees, revenue, fit, log_interest, burst_key, calendar_key
    )
