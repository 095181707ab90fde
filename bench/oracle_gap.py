"""Where the model's distance to the oracle goes (issue #4's synthetic target: <= 0.01).

On one synthetic CRM's out-of-time split this fits the configured model twice: on the
pipeline's features, and on the same features plus two columns no CRM export has, each
lead's hidden fit and interest (from the generator's ``truth``). Both are scored on the
same validation window as the oracle (``pipelines.synthetic.oracle_probability``). The
first distance is the model's; the second is what remains once the traits the world
hides are handed over (the state at the snapshot, such as the exact engagement or a
running burst, and finite data).

Run: ``python -m bench.oracle_gap [--leads 20000] [--seed 42]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data import training_frames
from features.registry import FIT, FeatureRegistry, FeatureSpec, build_registry
from models import training
from models.evaluate import evaluate
from pipelines.synthetic import oracle_probability

HIDDEN = {"fit_logit": "hidden fit", "log_interest": "hidden interest"}


def _with_hidden(X: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    traits = truth.set_index("lead_id").loc[X["lead_id"], list(HIDDEN)]
    return X.assign(**{name: traits[name].to_numpy() for name in HIDDEN})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("leadscore.yaml"))
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42, help="the demo CRM's seed")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args(argv)

    settings, X, y, split = training_frames(args.config, args.leads, args.out, args.seed)
    folder = args.out / f"train-{args.leads}-s{args.seed}"
    truth = pd.read_parquet(folder / "truth.parquet")
    activities = pd.read_parquet(folder / "activities.parquet")
    valid = X.iloc[split.valid]
    oracle = oracle_probability(
        truth, activities, valid[["lead_id", "as_of"]], settings.snapshots.horizon_days
    )
    y_valid = y[split.valid]
    bound = evaluate(y_valid, oracle, oracle)["roc_auc"]

    registry = build_registry(settings.features)
    hidden = FeatureRegistry(
        [
            *registry,
            *(
                FeatureSpec(n, FIT, "numeric", label, f"{label} {{value:.2f}}")
                for n, label in HIDDEN.items()
            ),
        ]
    )
    result: dict[str, float | int] = {
        "leads": args.leads,
        "validation_rows": len(y_valid),
        "oracle_roc_auc": round(bound, 4),
    }
    for name, frame, features in (
        ("model", X, registry),
        ("model_with_hidden_traits", _with_hidden(X, truth), hidden),
    ):
        model = training.fit_model(
            frame.iloc[split.train], y[split.train], features, settings.model
        )
        scored = frame.iloc[split.valid]
        auc = evaluate(y_valid, model.raw_score(scored), model.predict_proba(scored)[:, 1])[
            "roc_auc"
        ]
        result[f"{name}_roc_auc"] = round(float(auc), 4)
        result[f"oracle_minus_{name}"] = round(float(bound - auc), 4)
    result["hidden_traits_share_of_gap"] = round(
        float(
            np.clip(
                1 - result["oracle_minus_model_with_hidden_traits"] / result["oracle_minus_model"],
                0,
                1,
            )
        ),
        2,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
