"""Model-shape study: validation AUC and exact-SHAP speed per LightGBM shape.

Why: the cost of exact TreeSHAP grows with trees x leaves x depth, so a smaller model
explains faster; a shape is acceptable only if its out-of-time validation AUC stays within
0.002 of the configured model's. Every shape is fitted on the same training CRM and
scored on the same validation window (``bench.data.training_frames``).

Run: ``python -m bench.shapes [--train-leads N]``; prints one JSON line per shape.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.data import trained_model, training_frames
from leadscore.models.treeshap import FastTreeShap

SHAPES: tuple[dict[str, object], ...] = (
    {},
    {"num_leaves": 7},
    {"num_leaves": 11},
    {"max_depth": 4},
    {"num_leaves": 7, "n_estimators": 400},
    {"n_estimators": 150, "learning_rate": 0.1},
    {"num_leaves": 7, "n_estimators": 200, "learning_rate": 0.075},
)


def main(argv: list[str] | None = None) -> None:
    """Fit each shape, print its AUC, AUC change and explain speed (rows/s)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("leadscore.yaml"))
    parser.add_argument("--train-leads", type=int, default=40_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--seed", type=int, default=7, help="seed of the training CRM")
    parser.add_argument("--only", type=int, nargs="*", help="indices into SHAPES")
    args = parser.parse_args(argv)
    _, X, _, split = training_frames(args.config, args.train_leads, args.out, args.seed)
    sample = X.iloc[split.valid]
    base_auc = None
    shapes = [SHAPES[i] for i in args.only] if args.only else list(SHAPES)
    for shape in shapes:
        model, auc = trained_model(args.config, args.train_leads, args.out, args.seed, **shape)
        base_auc = auc if base_auc is None else base_auc
        explainer = FastTreeShap(model.booster_.booster_.dump_model())
        matrix = model.lightgbm_matrix(sample)
        explainer.shap_values(matrix[:10])
        start = time.perf_counter()
        explainer.shap_values(matrix)
        rows_s = len(matrix) / (time.perf_counter() - start)
        print(
            json.dumps(
                {
                    "shape": shape,
                    "valid_auc": round(auc, 5),
                    "auc_change": round(auc - base_auc, 5),
                    "kernel": explainer.kernel,
                    "explain_rows_s": round(rows_s),
                    "n_valid": len(sample),
                    "max_splits": int(np.diff(explainer.tables.tree_node_start).max()),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
