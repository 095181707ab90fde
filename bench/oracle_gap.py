"""Where the model's distance to the oracle goes (issue #4's synthetic target: <= 0.01).

On one synthetic CRM's out-of-time split this fits the configured model six times: on
the pipeline's features; on those plus one of two columns any export could give
(:func:`observable_columns`: the world's exact engagement sum, a count-based estimate of
interest), to see whether the features miss something observable; and on those plus
columns no CRM export has, from the generator's ``truth``: each lead's hidden fit, its
hidden interest, and both. All are scored on the same validation window as the oracle
(``leadscore.synthetic.oracle_probability``). The first distance is the model's; the last
is what remains once the traits the world hides are handed over (the state at the
snapshot, such as a running burst, and finite data).

Besides the hidden oracle it scores the window with the knowable bound
(``bench/knowable_oracle.py``): the conversion probability given only what the export
shows and the world's rules, each lead's traits weighed by their posterior. The model's
distance to it is what the pipeline misses of what an export can tell; its distance to
the hidden oracle is what no export tells.

``--world NAME=VALUE`` (repeatable) changes one of the generator's numeric constants for
the run, to ask what a world that hides less would give, e.g. ``--world INTEREST_SD=0.2
--world FIT_NOISE_SD=0.2``. The data and the oracle both see the change; nothing else does.

One CRM's validation window is one draw of the world: ``--seed`` repeated gives the same
decomposition on other CRMs of the same size, to tell the world's gap from one draw's.

Run: ``python -m bench.oracle_gap [--leads 20000] [--seed 42 ...] [--world NAME=VALUE ...]``;
prints one JSON line per seed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

import leadscore.synthetic as synthetic
from bench.data import training_frames
from bench.knowable_oracle import knowable_probability
from leadscore.features.registry import FIT, FeatureRegistry, FeatureSpec, build_registry
from leadscore.models import training
from leadscore.models.evaluate import evaluate
from leadscore.synthetic import world

HIDDEN = {"fit_logit": "hidden fit", "log_interest": "hidden interest"}
OBSERVABLE = {
    "exact_engagement": "the world's engagement sum",
    "activity_rate": "activities per expected activity",
}
LABELS = {**HIDDEN, **OBSERVABLE}
VARIANTS = {
    "model": (),
    "model_with_exact_engagement": ("exact_engagement",),
    "model_with_activity_rate": ("activity_rate",),
    "model_with_hidden_fit": ("fit_logit",),
    "model_with_hidden_interest": ("log_interest",),
    "model_with_hidden_traits": ("fit_logit", "log_interest"),
}


def parse_world(pairs: list[str]) -> dict[str, float]:
    """``NAME=VALUE`` pairs -> overrides; NAME must be a numeric constant of the generator."""
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        current = getattr(world, name, None)
        if not sep or not name.isupper() or not isinstance(current, int | float):
            raise SystemExit(f"--world {pair!r}: not NAME=VALUE of a numeric generator constant")
        overrides[name] = float(value)
    return overrides


@contextmanager
def world_overrides(overrides: Mapping[str, float]) -> Iterator[None]:
    """The generator's constants changed for the block, restored after."""
    before = {name: getattr(world, name) for name in overrides}
    try:
        for name, value in overrides.items():
            setattr(world, name, value)
        yield
    finally:
        for name, value in before.items():
            setattr(world, name, value)


def _seconds(values: pd.Series) -> np.ndarray:
    return values.to_numpy("datetime64[s]").astype(np.int64)


def observable_columns(
    X: pd.DataFrame, leads: pd.DataFrame, activities: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Two columns any export could give, which a reader may suspect the pipeline misses.

    Both read only activities strictly before each row's ``as_of``:
    ``exact_engagement`` is log1p of the world's own decayed sum (its weights and
    half-life, where the features use configured points and half-life);
    ``activity_rate`` is log((activities + 2) / (expected + 2)), the lead's count against
    what the world's age curve (novelty fading to a floor, weekends) would give a lead of
    average interest: the count-based estimate of the hidden interest.
    """
    codes, uniques = pd.factorize(activities["lead_id"])
    row_code = pd.Index(uniques).get_indexer(X["lead_id"])
    created_at = leads.set_index("lead_id")["created_at"]
    t = _seconds(activities["occurred_at"])
    c_act = _seconds(created_at.loc[uniques])[codes]
    weight = activities["activity_type"].map(world.TRUE_WEIGHTS).fillna(0.0).to_numpy()
    order = np.lexsort((t, codes))
    codes, t, weight, c_act = codes[order], t[order], weight[order], c_act[order]
    half_life = world.TRUE_HALF_LIFE_DAYS * synthetic.SECONDS_PER_DAY
    grown = np.cumsum(weight * np.exp2((t - c_act) / half_life))  # one lead's sum per code
    keys = codes.astype(np.int64) << 32 | (t - c_act)
    since = _seconds(X["as_of"]) - _seconds(created_at.loc[X["lead_id"]])  # lead's age
    known = row_code >= 0
    lead_key = np.maximum(row_code, 0).astype(np.int64) << 32
    start = np.searchsorted(keys, lead_key)
    end = np.searchsorted(keys, lead_key | since)
    end = np.where(known, end, start)
    before = np.where(start > 0, grown[np.maximum(start - 1, 0)], 0.0)
    total = np.where(end > start, grown[np.maximum(end - 1, 0)] - before, 0.0)
    engagement = total * np.exp2(-since / half_life)
    age = since / synthetic.SECONDS_PER_DAY
    floor, tau = world.AGE_FLOOR, world.AGE_DECAY_DAYS
    week = (5 + 2 * world.WEEKEND_FACTOR) / 7
    expected = (
        world.BASE_ACTIVITY_RATE
        * week
        * (floor * age + (1 - floor) * tau * (1 - np.exp(-age / tau)))
    )
    return {
        "exact_engagement": np.log1p(np.maximum(engagement, 0.0)),
        "activity_rate": np.log((end - start + 2.0) / (expected + 2.0)),
    }


def _with(X: pd.DataFrame, extra: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return X.assign(**{name: extra[name].to_numpy() for name in columns})


def decomposition(
    config: Path, leads: int, seed: int, out: Path, overrides: Mapping[str, float]
) -> dict[str, object]:
    """Oracle and model ROC-AUC, with each hidden trait handed over, on one CRM's window."""
    tag = "".join(f"-{k}{v:g}" for k, v in sorted(overrides.items()))
    out = out / f"world{tag}" if tag else out
    with world_overrides(overrides):
        settings, X, y, split = training_frames(config, leads, out, seed)
        folder = out / f"train-{leads}-s{seed}"
        truth = pd.read_parquet(folder / "truth.parquet")
        activities = pd.read_parquet(folder / "activities.parquet")
        lead_rows = pd.read_parquet(folder / "leads.parquet")
        extra = pd.DataFrame(observable_columns(X, lead_rows, activities), index=X.index)
        entities = X.iloc[split.valid][["lead_id", "as_of"]]
        horizon = settings.snapshots.horizon_days
        oracle = synthetic.oracle_probability(truth, activities, entities, horizon)
        knowable = knowable_probability(lead_rows, activities, truth, entities, horizon)
    traits = truth.set_index("lead_id").loc[X["lead_id"], list(HIDDEN)]
    extra = extra.assign(**{name: traits[name].to_numpy() for name in HIDDEN})
    y_valid = y[split.valid]
    bound = evaluate(y_valid, oracle, oracle)["roc_auc"]
    reachable = evaluate(y_valid, knowable, knowable)["roc_auc"]
    registry = build_registry(settings.features)
    result: dict[str, object] = {
        "leads": leads,
        "seed": seed,
        "world": dict(overrides),
        "validation_rows": len(y_valid),
        "oracle_roc_auc": round(bound, 4),
        "knowable_roc_auc": round(reachable, 4),
        "oracle_minus_knowable": round(bound - reachable, 4),
        "activity_rate_corr_hidden_interest": round(
            float(np.corrcoef(extra["activity_rate"], extra["log_interest"])[0, 1]), 3
        ),
    }
    aucs: dict[str, float] = {}
    for name, columns in VARIANTS.items():
        features = FeatureRegistry(
            [
                *registry,
                *(
                    FeatureSpec(c, FIT, "numeric", LABELS[c], f"{LABELS[c]} {{value:.2f}}")
                    for c in columns
                ),
            ]
        )
        frame = _with(X, extra, columns)
        model = training.fit_model(
            frame.iloc[split.train], y[split.train], features, settings.model
        )
        scored = frame.iloc[split.valid]
        auc = evaluate(y_valid, model.raw_score(scored), model.predict_proba(scored)[:, 1])
        aucs[name] = float(auc["roc_auc"])
        result[f"{name}_roc_auc"] = round(aucs[name], 4)
        result[f"oracle_minus_{name}"] = round(float(bound - auc["roc_auc"]), 4)
    result["knowable_minus_model"] = round(reachable - aucs["model"], 4)
    gap, left = result["oracle_minus_model"], result["oracle_minus_model_with_hidden_traits"]
    assert isinstance(gap, float) and isinstance(left, float)
    share = float(np.clip(1 - left / gap, 0, 1)) if gap > 0 else 0.0
    result["hidden_traits_share_of_gap"] = round(share, 2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("leadscore.yaml"))
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument(
        "--seed",
        type=int,
        action="append",
        help="a CRM's seed (repeatable: one JSON line per CRM; default: the demo's, 42)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--world", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = parse_world(args.world)
    for seed in args.seed or [42]:
        result = decomposition(args.config, args.leads, seed, args.out, overrides)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
