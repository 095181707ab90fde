"""`make bench-routing`: score-aware routing against the baselines, and at scale (#18 item 5).

(a) **Demo CRM**: the pool of the demo's published batch (``data/scores.db``, grades in
``routing.pool_grades``: probability, grade, owner, segment, country from ``attributes``;
created_at from ``data/synthetic/leads.parquet``; run ``leadscore demo`` first) routed to
the shipped 12-rep team of leadscore.yaml with ``rebalance: true``, by every method:
expected conversions (sum of probabilities of the leads on a list), their ratio to round
robin and to territory, how many assignments break a rule of the team (territory, skill,
seniority), the fairness spread (min / max over reps of share / target share) and the
time. Twice: with the team's full rules, and with the territory rule only (skill and
seniority off), where every method but round robin obeys the same rules as the solver.

(b) **Scale**: a synthetic pool of ``--leads`` leads (default 1M: 20 countries, 3 segments,
2 languages, probabilities from Beta(2, 5), grades A/B) routed to ``--reps`` reps (default
200, capacities 10-40, 1-3 countries, 1-2 segments, a few generalists) with
``score_aware``: the time of ``route()`` end to end and the process's peak RSS (target
< 30 s).

The last line is one JSON object: ``{"demo": {...}, "scale": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.models.routing import rules
from leadscore.models.routing.config import Rep, RoutingConfig
from leadscore.models.routing.route import RULES_OF, expected_value, route
from leadscore.pipelines.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 30.0
METHODS = ("round_robin", "territory", "skill", "score_aware")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def demo_pool(store: Path, leads: Path, config: RoutingConfig) -> pd.DataFrame:
    """The pool of the store's current batch, as the score flow builds it."""
    with sqlite3.connect(store) as db:
        scores = pd.read_sql(
            "select s.lead_id, s.owner, s.segment, s.probability, s.grade, s.attributes "
            "from scores s join current_batch c on s.batch_id = c.batch_id",
            db,
        )
    scores = scores[scores["grade"].isin(config.pool_grades)]
    attributes = scores["attributes"].map(lambda a: json.loads(a) if a else {})
    created = pd.read_parquet(leads, columns=["lead_id", "created_at"])
    pool = pd.DataFrame(
        {
            "lead_id": scores["lead_id"],
            "probability": scores["probability"],
            "grade": scores["grade"],
            "owner": scores["owner"],
            "territory": attributes.map(lambda a: a.get(config.territory or "", None)),
            "skill": scores["segment"] if config.skill == "segment" else None,
            "language": None,
            "value": np.nan,
        }
    )
    return pool.merge(created, on="lead_id", how="left").reset_index(drop=True)


def rule_breaks(pool: pd.DataFrame, calls: pd.DataFrame, config: RoutingConfig) -> int:
    """Assignments a rep may not take under the team's full rules."""
    by_id = {r.id: i for i, r in enumerate(config.reps)}
    ordered = pool.assign(_id=pool["lead_id"].astype(str)).sort_values("_id", kind="stable")
    ordered = ordered.reset_index(drop=True)
    keys = rules.lead_keys(ordered, config)
    allowed = rules.eligibility(keys, config, RULES_OF["score_aware"])
    placed = calls.set_index("lead_id")["rep_id"].reindex(ordered["lead_id"]).to_numpy()
    rep = np.array([by_id.get(r, -1) if isinstance(r, str) else -1 for r in placed])
    on = rep >= 0
    return int((~allowed[keys.key[on], rep[on]]).sum())


def compare(pool: pd.DataFrame, config: RoutingConfig) -> dict[str, Any]:
    """Every method on one pool: expected conversions, ratios, rule breaks, spread, time."""
    out: dict[str, Any] = {}
    for method in METHODS:
        start = time.perf_counter()
        result = route(pool, config.model_copy(update={"method": method}))
        seconds = time.perf_counter() - start
        placed = result.calls.dropna(subset=["rep_id"])
        ratio = result.reps["share"] / result.reps["target_share"].where(
            result.reps["target_share"] > 0
        )
        out[method] = {
            "assigned": len(placed),
            "expected": round(float(placed["expected"].sum()), 3),
            "rule_breaks": rule_breaks(pool, result.calls, config),
            "spread_min": round(float(ratio.min()), 3),
            "spread_max": round(float(ratio.max()), 3),
            "reps_within_band": int(result.reps["within_band"].sum()),
            "seconds": round(seconds, 3),
            **({"solver": result.solver} if result.solver else {}),
        }
    for method in METHODS:
        for base in ("round_robin", "territory"):
            out[method][f"vs_{base}"] = round(
                out[method]["expected"] / (out[base]["expected"] or 1.0), 3
            )
    return out


def synthetic(leads: int, n_reps: int, seed: int) -> tuple[pd.DataFrame, RoutingConfig]:
    """A pool of ``leads`` leads and a team of ``n_reps`` reps (see the module doc)."""
    rng = np.random.default_rng(seed)
    countries = [f"C{i:02d}" for i in range(20)]
    country_weight = rng.dirichlet(np.full(20, 2.0))
    segments = ["smb", "mid_market", "enterprise"]
    p = rng.beta(2, 5, leads)
    country = rng.choice(len(countries), leads, p=country_weight)
    pool = pd.DataFrame(
        {
            "lead_id": pd.Series([f"S{i:07d}" for i in range(leads)], dtype=object),
            "probability": p,
            "grade": np.where(p > 0.45, "A", "B"),
            "owner": None,
            "created_at": pd.Timestamp("2026-12-01", tz="UTC")
            - pd.to_timedelta(rng.uniform(0, 30, leads), unit="D"),
            "territory": np.array(countries, dtype=object)[country],
            "skill": rng.choice(np.array(segments, dtype=object), leads, p=[0.5, 0.35, 0.15]),
            "language": np.where(country % 5 == 0, "fr", "en").astype(object),
            "value": np.nan,
        }
    )
    reps = []  # a team laid out like the lead flow: home countries in proportion to it
    for i in range(n_reps):
        generalist = rng.uniform() < 0.05
        home = rng.choice(20, p=country_weight)
        more = rng.choice(20, rng.integers(0, 3), replace=False, p=country_weight)
        skills = rng.choice(segments, rng.integers(1, 3), replace=False, p=[0.5, 0.35, 0.15])
        reps.append(
            Rep(
                id=f"rep{i:03d}",
                capacity=int(rng.integers(10, 41)),
                territories=[] if generalist else sorted({countries[c] for c in [home, *more]}),
                skills=[] if generalist else sorted(skills.tolist()),
                languages=["en", "fr"] if home % 5 == 0 or rng.uniform() < 0.2 else ["en"],
                seniority=str(rng.choice(["junior", "mid", "senior"], p=[0.3, 0.4, 0.3])),
            )
        )
    config = RoutingConfig(
        reps=reps,
        method="score_aware",
        territory="country",
        skill="segment",
        language="language",
        min_seniority={"A": "mid"},
        rebalance=True,
    )
    return pool, config


def scale(leads: int, n_reps: int, seed: int) -> dict[str, Any]:
    """Time ``route()`` with the solver on the synthetic pool."""
    pool, config = synthetic(leads, n_reps, seed)
    before = peak_rss_mb()
    start = time.perf_counter()
    result = route(pool, config)
    seconds = time.perf_counter() - start
    placed = result.calls.dropna(subset=["rep_id"])
    return {
        "leads": leads,
        "reps": n_reps,
        "capacity": sum(r.capacity for r in config.reps),
        "assigned": len(placed),
        "expected": round(float(expected_value(pool)[:0].sum() + placed["expected"].sum()), 2),
        "reps_within_band": int(result.reps["within_band"].sum()),
        "solver": result.solver,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "rss_before_mb": round(before),
        "verdict": "pass" if seconds < TARGET_S else "fail",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "leadscore.yaml"))
    parser.add_argument("--store", default=str(ROOT / "data" / "scores.db"))
    parser.add_argument("--leads-file", default=str(ROOT / "data" / "synthetic" / "leads.parquet"))
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    if Path(args.store).exists():
        team = load_settings(args.config).routing.model_copy(update={"rebalance": True})
        pool = demo_pool(Path(args.store), Path(args.leads_file), team)
        territory_only = team.model_copy(update={"skill": None, "min_seniority": {}})
        result["demo"] = {
            "pool": len(pool),
            "capacity": sum(r.capacity for r in team.reps),
            "full_rules": compare(pool, team),
            "territory_only": compare(pool, territory_only),
        }
        for name in ("full_rules", "territory_only"):
            print(f"[bench-routing] demo, {name}:", file=sys.stderr)
            for method, row in result["demo"][name].items():
                print(f"  {method:12s} {row}", file=sys.stderr)
    else:
        print(f"[bench-routing] no {args.store}: run `leadscore demo` first", file=sys.stderr)
    result["scale"] = scale(args.leads, args.reps, args.seed)
    print(f"[bench-routing] scale: {result['scale']}", file=sys.stderr)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
