"""`make bench-monitor`: monitoring a 1M-lead batch against its training rows (#17 item 6).

Target: under 30 s and under 2 GB on this machine (2 cores), for everything the monitor
does with one batch: count the batch in the reference bins (``batch_counts``, done per
partition by the score flow; here on the whole batch at once, the harder case), drift
(PSI per feature and of the prediction), labels with censoring from the outcomes,
live metrics model vs rules with grades, and the expected ROC-AUC; the last four are
timed as ``monitor()`` runs them too.

Inputs (not timed): the demo config's real feature columns, built by the training recipe
(``bench.data.training_examples``: snapshots of a fresh synthetic CRM, point-in-time
features) as the reference rows; the batch is N of those rows drawn with replacement
(per-row work does not depend on rows being distinct: the categorical columns are
low-cardinality text in a real batch too), with a shift injected (a lead source the
reference never had on 5% of rows, a changed mix of another attribute). Probabilities are
a stand-in (a logistic of the recency-weighted activity, so the pipeline needs no model)
and the outcomes are drawn from them: converted with probability p within 0-120 days,
otherwise lost or still open; 2% of the leads are gone from the source.

Prints a stage table, the verdict, and on its LAST line one JSON object:
``{"leads", "features", "stages", "total_s", "peak_rss_mb", "rss_before_mb", "verdict"}``.

``--archive N`` (with ``--leads`` per batch, ``--young Y``) times instead what a nightly
run costs over an archive: N batches written to a real archive folder, all but the Y
newest mature, judged by the flow's own read step (``monitor_flow.read_batches``), then
``monitor()`` and ``save_monitor`` into a SQLite store, twice: the first run reads and
judges every batch, the second only the Y young ones (the mature ones' stored results
decide alongside them). Its JSON line: ``{"batches", "young", "leads", "first", "second",
"same_decision"}``, each run's read / judge / save / total seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLCONFIGDIR", str(ROOT / ".mplconfig"))

from bench.data import training_examples  # noqa: E402
from leadscore.features.builder import AS_OF, KEYS  # noqa: E402
from leadscore.models.monitor.config import MonitorConfig  # noqa: E402
from leadscore.models.monitor.drift import drift_table  # noqa: E402
from leadscore.models.monitor.estimate import expected_roc_auc  # noqa: E402
from leadscore.models.monitor.outcomes import label_batch  # noqa: E402
from leadscore.models.monitor.performance import grade_table, ranking_metrics  # noqa: E402
from leadscore.models.monitor.profile import batch_counts, reference_from_examples  # noqa: E402
from leadscore.models.monitor.result import ArchivedBatch  # noqa: E402
from leadscore.models.monitor.run import monitor  # noqa: E402
from leadscore.models.rules import grade_of  # noqa: E402

TARGET_S = 30.0
TARGET_MB = 2048.0
GRADES = {"A": 40.0, "B": 20.0, "C": 8.0, "D": float("-inf")}
T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(stages: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = fn()
    stages[name] = time.perf_counter() - start
    return out


def stand_in_probability(X: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """A calibrated-looking probability from the recency-weighted activity (no model)."""
    numeric = X.select_dtypes("number")
    signal = numeric.iloc[:, numeric.notna().mean().argmax()].fillna(0).to_numpy()
    z = (signal - signal.mean()) / (signal.std() or 1.0)
    return 1 / (1 + np.exp(-(-2.5 + 0.9 * z + rng.normal(0, 0.5, len(z)))))


def batch_frames(
    X: pd.DataFrame, proba: np.ndarray, leads: int, as_of: pd.Timestamp, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(batch features, archived scores, outcomes) of ``leads`` leads drawn from ``X``."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(X), leads)
    batch = X.iloc[rows].reset_index(drop=True)
    categorical = [c for c in batch.columns if not pd.api.types.is_numeric_dtype(batch[c])]
    if categorical:  # a lead source the reference never had, on 5% of the rows
        column = "lead_source" if "lead_source" in categorical else categorical[-1]
        batch.loc[rng.uniform(size=leads) < 0.05, column] = "new-partner-portal"
    p = np.clip(proba[rows] * rng.uniform(0.8, 1.2, leads), 0, 1)
    ids = pd.Series([f"N{i:08d}" for i in range(leads)], dtype=object)
    score = np.rint(100 * p)
    rule_score = np.round(40 * p + rng.normal(20, 15, leads), 2)
    scores = pd.DataFrame(
        {
            "lead_id": ids,
            "probability": p.astype(np.float32),
            "grade": grade_of(score, GRADES),
            "rule_score": rule_score,
            "rule_grade": grade_of(rule_score, {"A": 60.0, "B": 40.0, "C": 20.0, "D": -1e9}),
            "cell": "engaged fit",
        }
    )
    converted = rng.uniform(size=leads) < p
    closed = as_of + pd.to_timedelta(rng.uniform(0.01, 120, leads), unit="D")
    still_open = ~converted & (rng.uniform(size=leads) < 0.3)
    outcomes = pd.DataFrame(
        {
            "lead_id": ids,
            "status": np.where(converted, "converted", np.where(still_open, "open", "lost")),
            "closed_at": pd.Series(closed).where(~still_open),
        }
    )
    gone = rng.uniform(size=leads) < 0.02
    return batch, scores, outcomes.loc[~gone].reset_index(drop=True)


def run(leads: int, train_leads: int, out: Path, seed: int) -> dict[str, Any]:
    """Build the inputs, then time every monitoring stage on one batch."""
    settings, data = training_examples(ROOT / "leadscore.yaml", train_leads, out, seed)
    features = [c for c in data.X.columns if c not in KEYS]
    X = data.X[features]
    rng = np.random.default_rng(seed)
    proba = stand_in_probability(X, rng)
    as_of = data.X[AS_OF].max() + pd.Timedelta(days=14)
    batch, scores, outcomes = batch_frames(X, proba, leads, as_of, seed)
    config = MonitorConfig()
    horizon = settings.snapshots.horizon_days
    now = as_of + pd.Timedelta(days=horizon + 5)
    rss_before = peak_rss_mb()
    print(
        f"[bench-monitor] {leads:,} leads x {len(features)} features; reference "
        f"{len(X):,} training rows; peak RSS before timing {rss_before:.0f} MB",
        file=sys.stderr,
    )

    stages: dict[str, float] = {}
    reference = timed(
        stages,
        "reference",
        lambda: reference_from_examples(
            X, proba, as_of=data.X[AS_OF], days=config.reference_days, bins=config.bins
        ),
    )
    p = scores["probability"].to_numpy(dtype=np.float64)
    counts = timed(stages, "batch_counts", lambda: batch_counts(batch, p, reference))
    timed(stages, "drift", lambda: drift_table(counts.to_dict(), batch_id="b", as_of=as_of))
    labels = timed(
        stages,
        "labels",
        lambda: label_batch(
            scores["lead_id"], outcomes, as_of=as_of, now=now, horizon_days=horizon
        ),
    )
    known = labels.known

    def performance() -> None:
        ranking_metrics(
            labels.y[known],
            p[known],
            scores["rule_score"].to_numpy()[known],
            top_percent=config.top_percent,
            min_conversions=config.min_conversions,
        )
        grade_table(scores, labels, batch_id="b", as_of=as_of, grade_order=list(GRADES))

    timed(stages, "performance", performance)
    timed(stages, "estimate", lambda: expected_roc_auc(p))
    archived = ArchivedBatch("b", as_of, "1", scores, counts.to_dict(), {}, leads)
    result = timed(
        stages,
        "monitor()",
        lambda: monitor(
            [archived],
            outcomes,
            now=now,
            horizon_days=horizon,
            config=config,
            grade_order=list(GRADES),
            champion_version="1",
            validation_roc_auc=None,
            trained_at=as_of - pd.Timedelta(days=14),
            last_retrain_at=None,
        ),
    )
    total = stages["batch_counts"] + stages["monitor()"]
    peak = peak_rss_mb()
    verdict = "pass" if total < TARGET_S and peak < TARGET_MB else "FAIL"
    judged = result.batches[0]
    return {
        "leads": leads,
        "features": len(features),
        "reference_rows": reference.rows,
        "stages": {k: round(v, 3) for k, v in stages.items()},
        "total_s": round(total, 2),
        "peak_rss_mb": round(peak),
        "rss_before_mb": round(rss_before),
        "verdict": verdict,
        "decision": result.decision.text,
        "roc_auc": judged.metrics["roc_auc"],
        "estimated_roc_auc": judged.metrics["estimated_roc_auc"],
    }


def archive_runs(
    batches: int, young: int, leads: int, train_leads: int, out: Path, seed: int
) -> dict[str, Any]:
    """Two monitor runs over an archive of ``batches`` batches of ``leads`` leads, all but
    the ``young`` newest mature: the first judges all, the second only the young."""
    import shutil

    from leadscore.pipelines.archive import archived, write_batch
    from leadscore.pipelines.monitor_flow import read_batches
    from leadscore.pipelines.spilled import write_arrow
    from leadscore.serving.store import ScoreStore, StoreConfig

    settings, data = training_examples(ROOT / "leadscore.yaml", train_leads, out, seed)
    features = [c for c in data.X.columns if c not in KEYS]
    X = data.X[features]
    proba = stand_in_probability(X, np.random.default_rng(seed))
    config = MonitorConfig()
    horizon = settings.snapshots.horizon_days
    now = (data.X[AS_OF].max() + pd.Timedelta(days=horizon + 60)).floor("D")
    day = pd.Timedelta(days=1)
    as_ofs = [now - (horizon + batches - young - i) * day for i in range(batches - young)]
    as_ofs += [now - (young - i) * day for i in range(young)]
    # the same open leads scored every night (their outcomes one row each): per-batch
    # work is the same as for distinct draws; closes spread from the first as-of to now
    batch, scores, outcomes = batch_frames(X, proba, leads, as_ofs[0], seed)
    span = (now - as_ofs[0]) / day
    closed = as_ofs[0] + pd.to_timedelta(
        np.random.default_rng(seed).uniform(0, span, len(outcomes)), unit="D"
    )
    outcomes["closed_at"] = pd.Series(closed).where(outcomes["status"] != "open")
    reference = reference_from_examples(
        X, proba, as_of=data.X[AS_OF], days=config.reference_days, bins=config.bins
    )
    counts = batch_counts(batch, scores["probability"].to_numpy(np.float64), reference).to_dict()
    folder = out / "monitor-archive"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spilled = write_arrow(scores, folder / "scores.arrow")
    for i, as_of in enumerate(as_ofs):
        write_batch(
            folder / "archive",
            [spilled],
            batch_id=f"b{i:04d}",
            as_of=as_of,
            model_version="1",
            profile=counts,
            quarantine={"bad date": 10},
            rows_in=leads + 10,
        )
    settings = settings.model_copy(
        update={"monitor": settings.monitor.model_copy(update={"archive_dir": folder / "archive"})}
    )
    store = ScoreStore(StoreConfig(url=f"sqlite:///{folder / 'scores.db'}"))
    store.create()
    print(
        f"[bench-monitor] archive of {batches} batches x {leads:,} leads ({young} young), "
        f"{len(features)} features",
        file=sys.stderr,
    )

    def night() -> tuple[dict[str, Any], Any]:
        stages: dict[str, float] = {}
        listed = archived(folder / "archive")
        read = timed(stages, "read", lambda: read_batches.fn(settings, store, list(listed), now))
        result = timed(
            stages,
            "judge",
            lambda: monitor(
                read.fresh,
                outcomes,
                now=now,
                horizon_days=horizon,
                config=config,
                grade_order=list(GRADES),
                champion_version="1",
                validation_roc_auc=0.8,
                trained_at=as_ofs[0] - 14 * day,
                last_retrain_at=None,
                previous=read.stored,
            ),
        )
        timed(stages, "save", lambda: store.save_monitor(result, mlflow_run_id=None))
        line = {k: round(v, 2) for k, v in stages.items()}
        line.update(
            total=round(sum(stages.values()), 2), judged=len(read.fresh), reused=len(result.reused)
        )
        return line, result

    first, first_result = night()
    second, second_result = night()
    store.close()
    return {
        "batches": batches,
        "young": young,
        "leads": leads,
        "features": len(features),
        "first": first,
        "second": second,
        "same_decision": first_result.decision == second_result.decision,
        "decision": second_result.decision.text,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--train-leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--archive", type=int, default=0, help="N batches: time two runs")
    parser.add_argument("--young", type=int, default=3, help="of them, not yet mature")
    args = parser.parse_args(argv)
    if args.archive:
        runs = archive_runs(
            args.archive, args.young, args.leads, args.train_leads, args.out, args.seed
        )
        for name in ("first", "second"):
            line = runs[name]
            print(
                f"{name} run: {line['total']:.1f} s ({line['judged']} judged, "
                f"{line['reused']} as stored; read {line['read']:.1f} s, judge "
                f"{line['judge']:.1f} s, save {line['save']:.1f} s)"
            )
        print(f"same decision: {runs['same_decision']} ({runs['decision']})")
        print(json.dumps(runs))
        return
    result = run(args.leads, args.train_leads, args.out, args.seed)
    for name, seconds in result["stages"].items():
        print(f"{name:<14}{seconds:>9.2f} s")
    print(
        f"{'total':<14}{result['total_s']:>9.2f} s   (batch_counts + monitor(); target "
        f"< {TARGET_S:.0f} s)\npeak RSS {result['peak_rss_mb']:,} MB (inputs alone "
        f"{result['rss_before_mb']:,} MB; target < {TARGET_MB:.0f} MB): {result['verdict']}"
    )
    print(f"decision: {result['decision']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
