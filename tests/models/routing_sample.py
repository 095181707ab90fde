"""Small pools and teams for the routing tests (real values, a few leads)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.models.routing.config import SENIORITY_ORDER, Rep, RoutingConfig


def pool_of(rows: list[dict]) -> pd.DataFrame:
    """A pool frame from dicts with lead_id / probability and, optionally, the rest."""
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["lead_id", "probability"])
    defaults = {
        "grade": "B",
        "owner": None,
        "created_at": pd.Timestamp("2026-12-01", tz="UTC"),
        "territory": None,
        "skill": None,
        "language": None,
        "value": np.nan,
    }
    for column, value in defaults.items():
        if column not in frame:
            frame[column] = value
    return frame


def random_pool(n: int, seed: int, countries: tuple[str, ...] = ("US", "GB", "DE")) -> pd.DataFrame:
    """``n`` leads with probabilities, grades, countries, segments and arrival times."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(2, 3, n), 4)
    return pool_of(
        [
            {
                "lead_id": f"L{i:04d}",
                "probability": p[i],
                "grade": "A" if p[i] > 0.6 else "B",
                "created_at": pd.Timestamp("2026-12-01", tz="UTC")
                + pd.Timedelta(minutes=int(rng.integers(0, 10_000))),
                "territory": countries[int(rng.integers(0, len(countries)))],
                "skill": ["smb", "enterprise"][int(rng.integers(0, 2))],
            }
            for i in range(n)
        ]
    )


def team(**overrides: object) -> RoutingConfig:
    """Three reps over US / GB / DE with smb / enterprise skills, territory + skill rules."""
    reps = [
        Rep(id="alice", name="Alice Moreau", capacity=4, territories=["US", "GB"],
            skills=["enterprise"], seniority="senior"),
        Rep(id="bo", name="Bo Lind", capacity=5, territories=["DE"], skills=[], seniority="mid"),
        Rep(id="cy", name="Cy Ray", capacity=6, territories=["US", "DE"], skills=["smb"],
            seniority="junior"),
    ]  # fmt: skip
    settings: dict[str, object] = {
        "reps": reps,
        "territory": "country",
        "skill": "segment",
        "min_seniority": {"A": "mid"},
        "fairness_band": 0.5,
        "rebalance": True,
    }
    settings.update(overrides)
    return RoutingConfig(**settings)


def may_take(rep: Rep, lead: pd.Series, config: RoutingConfig) -> bool:
    """The eligibility rules written out plainly, to check the engine against."""

    def fits(allowed: list[str], value: object) -> bool:
        if not allowed:
            return True
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return False
        return str(value).strip().casefold() in {a.casefold() for a in allowed}

    if config.territory and not fits(rep.territories, lead["territory"]):
        return False
    if config.skill and not fits(rep.skills, lead["skill"]):
        return False
    if config.language and not fits(rep.languages, lead["language"]):
        return False
    need = config.min_seniority.get(str(lead["grade"]))
    return need is None or SENIORITY_ORDER.index(rep.seniority) >= SENIORITY_ORDER.index(need)
