"""The quality bar on real exports (issue #15 item 7), with defaults and a column mapping only.

For each real lead export it can find, this trains leadscore's own recipe
(``models.recipe``: examples, model, rules, the report's validation window and metrics)
from a config that only maps columns (``examples/bank-minimal.yaml``,
``examples/xeducation.yaml``, ``examples/olist.yaml``: data paths, column mapping,
outcome mapping, excluded leaks, every other column as an attribute, no tuning), and
fits two plain references on the SAME training rows, scored on the SAME validation rows:

* a plain LightGBM: ``LGBMClassifier()`` with its defaults, categorical attributes as
  pandas ``category`` columns;
* a plain one-hot logistic regression: ``OneHotEncoder(handle_unknown="ignore")`` on the
  categorical attributes, median-imputed ``StandardScaler`` on the numeric ones,
  ``LogisticRegression(max_iter=2000)``.

The bar: the model's ROC-AUC at least the better reference's (aiming for +0.005), bank
out of time >= 0.77, ECE <= 0.02 (10 equal-count bands, ``models.evaluate``). Intervals
are the report's bootstrap over leads (``models.quality``).

Data: the bank file from the repo's sibling ``../shared/data``; the others under
``--data DIR`` (default ``$LEADSCORE_REAL_DATA``, else ``data/real`` in the repo), laid out
as ``xeducation/Leads.csv`` and ``olist/olist_*.csv``; a missing one prints an
``absent:`` line saying where to get it. Nothing is downloaded.

Run: ``python -m bench.real_exports [--data DIR] [--only NAME ...] [--config FILE ...]
[--json FILE]`` (``--config``: also measure another config as it is, e.g. the hand-tuned
``examples/bank-marketing.yaml``)
(``make bench-real``).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leadscore.models import recipe
from leadscore.models.evaluate import expected_calibration_error
from leadscore.models.quality import _SortedScore, bootstrap, lead_resamples, roc_auc_difference
from leadscore.models.report.window import report_metrics
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.pipelines.sources import load_crm

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DATA_ENV = "LEADSCORE_REAL_DATA"
DEFAULT_DATA = REPO / "data" / "real"

AIM = 0.005  # aimed margin over the better reference
MAX_ECE = 0.02
RESAMPLES = 200
SEED = 7


@dataclass(frozen=True)
class Dataset:
    """One real export: its config, the files it needs, where to get them."""

    name: str
    config: str  # file name in examples/, or an absolute path (--config)
    files: tuple[str, ...] = ()  # relative to --data DIR; () = the config's own path
    source: str = ""
    licence: str = ""
    min_roc_auc: float | None = None  # an absolute bar of its own (bank out of time)
    prepare: Callable[[Settings, Path], Settings] | None = None  # (settings, --data DIR)


def with_data_paths(settings: Settings, data: Path, **files: str) -> Settings:
    """The settings with ``data.<table>.path`` read from ``data / file`` for each
    ``table=file`` given (``leads``, ``outcomes``): the config's other keys stay."""
    update = {
        table: getattr(settings.data, table).model_copy(update={"path": (data / f).resolve()})
        for table, f in files.items()
    }
    return settings.model_copy(update={"data": settings.data.model_copy(update=update)})


XEDUCATION = "xeducation/Leads.csv"
OLIST_MQL = "olist/olist_marketing_qualified_leads_dataset.csv"
OLIST_DEALS = "olist/olist_closed_deals_dataset.csv"


def _xeducation(settings: Settings, data: Path) -> Settings:
    return with_data_paths(settings, data, leads=XEDUCATION)


def _olist(settings: Settings, data: Path) -> Settings:
    """The MQLs as leads, the won deals as ``data.outcomes`` (examples/olist.yaml)."""
    return with_data_paths(settings, data, leads=OLIST_MQL, outcomes=OLIST_DEALS)


DATASETS = (
    Dataset(
        "bank",
        "bank-minimal.yaml",
        source="UCI Machine Learning Repository, Bank Marketing (bank-additional-full.csv), "
        "in ../shared/data/bank-marketing",
        licence="CC BY 4.0",
        min_roc_auc=0.77,
    ),
    Dataset(
        "xeducation",
        "xeducation.yaml",
        files=(XEDUCATION,),
        source="https://www.kaggle.com/datasets/amritachatterjee09/lead-scoring-dataset "
        "(X Education 'Lead Scoring', Leads.csv)",
        licence="none stated on the page",
        prepare=_xeducation,
    ),
    Dataset(
        "olist",
        "olist.yaml",
        files=(OLIST_MQL, OLIST_DEALS),
        source="https://www.kaggle.com/datasets/olistbr/marketing-funnel-olist "
        "(olist_marketing_qualified_leads_dataset.csv, olist_closed_deals_dataset.csv)",
        licence="CC BY-NC-SA 4.0",
        prepare=_olist,
    ),
)


# --- The plain references --------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """The attributes the config declares, as the references read them."""

    categorical: list[str]
    numeric: list[str]


def _frames(X: pd.DataFrame, cols: Columns) -> pd.DataFrame:
    out = pd.DataFrame(index=X.index)
    for c in cols.categorical:
        out[c] = X[c].astype("string").astype("object").where(X[c].notna(), None)
    for c in cols.numeric:
        out[c] = pd.to_numeric(X[c], errors="coerce").astype("float64")
    return out


def plain_lightgbm(
    X_train: pd.DataFrame, y_train: np.ndarray, X_valid: pd.DataFrame, cols: Columns
) -> np.ndarray:
    """``LGBMClassifier()`` defaults, categoricals as pandas category (training's levels)."""
    train, valid = _frames(X_train, cols), _frames(X_valid, cols)
    for c in cols.categorical:
        levels = pd.Index(train[c].dropna().unique())
        train[c] = pd.Categorical(train[c], categories=levels)
        seen = valid[c].where(valid[c].isin(levels))  # unseen levels: missing
        valid[c] = pd.Categorical(seen, categories=levels)
    model = LGBMClassifier(random_state=SEED, verbose=-1)
    model.fit(train, y_train)
    return model.predict_proba(valid)[:, 1]


def plain_logistic(
    X_train: pd.DataFrame, y_train: np.ndarray, X_valid: pd.DataFrame, cols: Columns
) -> np.ndarray:
    """One-hot categoricals + standardised numerics (median-imputed) + LogisticRegression."""
    parts = []
    if cols.categorical:
        onehot = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="ignore"),
        )
        parts.append(("categorical", onehot, cols.categorical))
    if cols.numeric:
        scaled = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        parts.append(("numeric", scaled, cols.numeric))
    model = Pipeline(
        [("columns", ColumnTransformer(parts)), ("model", LogisticRegression(max_iter=2000))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(_frames(X_train, cols), y_train)
    return model.predict_proba(_frames(X_valid, cols))[:, 1]


REFERENCES = {"lightgbm": plain_lightgbm, "logistic": plain_logistic}


def references(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    cols: Columns,
) -> dict[str, tuple[float, np.ndarray]]:
    """Each plain reference's (validation ROC-AUC, validation scores)."""
    out = {}
    for name, fit in REFERENCES.items():
        scores = fit(X_train, y_train, X_valid, cols)
        out[name] = (float(roc_auc_score(y_valid, scores)), scores)
    return out


# --- One dataset -----------------------------------------------------------------------


def ece_floor(probability: np.ndarray, draws: int = RESAMPLES, seed: int = SEED) -> float:
    """The ECE a perfectly calibrated model would show on this window: the median ECE of
    outcomes drawn from the model's own probabilities (same rows, same 10 bands). Each
    band's observed rate is a sample mean, so on a small window it misses its mean
    probability by chance alone; a measured ECE near this floor is noise, not bias."""
    p = np.asarray(probability, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = [expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(draws)]
    return float(np.median(values))


def measure(settings: Settings, name: str, min_roc_auc: float | None = None) -> dict:
    """Train the recipe from ``settings``, the references on the same split; the row."""
    crm = load_crm(settings)
    trained = recipe.train(crm.leads, crm.activities, crm.end, settings)
    data = trained.data
    window = recipe.validation_window(trained.model, trained.rules, data, settings.scoring.grades)
    metrics = report_metrics(window)
    attrs = settings.features.attributes
    cols = Columns(list(attrs.categorical), list(attrs.numeric))
    refs = references(data.X_train, data.y_train, data.X_valid, data.y_valid, cols)
    best = max(refs, key=lambda k: refs[k][0])
    y = data.y_valid
    draws = lead_resamples(data.valid_entities["lead_id"].to_numpy(), RESAMPLES, SEED)
    model_auc = bootstrap(_SortedScore(window.model_ranking, y).auc, draws, 0.95)
    margin = bootstrap(roc_auc_difference(y, window.model_ranking, refs[best][1]), draws, 0.95)
    model, rules = metrics["model"], metrics["rules"]
    row = {
        "dataset": name,
        "split": data.split.kind,
        "train_rows": len(data.y_train),
        "valid_rows": len(y),
        "valid_rate": round(float(y.mean()), 4),
        "censored": data.snapshots.n_censored,  # flat, dated: too young for the horizon
        "embargoed": int(getattr(data.split, "embargoed", 0)),  # in neither side of the split
        "mean_probability": round(float(np.mean(window.model_probability)), 4),
        "model_kind": _kind(trained.model, settings),
        "model_roc_auc": round(model["roc_auc"], 4),
        "model_roc_auc_interval": [round(model_auc[1], 4), round(model_auc[2], 4)],
        "plain_lightgbm_roc_auc": round(refs["lightgbm"][0], 4),
        "plain_logistic_roc_auc": round(refs["logistic"][0], 4),
        "best_reference": best,
        "margin": round(margin[0], 4),
        "margin_interval": [round(margin[1], 4), round(margin[2], 4)],
        "rules_roc_auc": round(rules["roc_auc"], 4),
        "ece": round(model["ece"], 4),
        "ece_floor": round(ece_floor(window.model_probability), 4),
        "brier": round(model["brier"], 4),
    }
    evidence = getattr(trained.model, "selection_", None) or {}
    if evidence.get("scores"):  # model.kind auto: the inner-slice scores it chose on
        row["selection_scores"] = {
            k: None if v is None else round(float(v), 4) for k, v in evidence["scores"].items()
        }  # None: not judged (the slice could not score it)
        row["selection_reason"] = evidence.get("reason")
    row["meets_references"] = row["margin"] >= 0
    row["meets_aim"] = row["margin"] >= AIM
    row["meets_ece"] = row["ece"] <= MAX_ECE
    if min_roc_auc is not None:
        row["min_roc_auc"] = min_roc_auc
        row["meets_min_roc_auc"] = row["model_roc_auc"] >= min_roc_auc
    return row


def _kind(model: object, settings: Settings) -> str:
    """The model family trained: the configured kind, or what ``auto`` chose."""
    evidence = getattr(model, "selection_", None) or {}
    chosen, kind = evidence.get("chosen"), settings.model.kind
    if evidence and chosen is None:  # the inner slice could not judge: the configured booster
        return f"{kind} -> lightgbm (not judged)"
    return f"{kind} -> {chosen}" if chosen and chosen != kind else str(kind)


def absent_line(dataset: Dataset, missing: Path) -> str:
    """The one line printed for a dataset whose files are not there."""
    where = missing.parent if dataset.files else missing
    return (
        f"absent: {dataset.name}: put {missing.name} from {dataset.source} in {where} "
        f"(licence: {dataset.licence})"
    )


def missing_file(dataset: Dataset, settings: Settings, data_dir: Path) -> Path | None:
    """The first file ``dataset`` needs that is not there, or None."""
    paths = [data_dir / f for f in dataset.files] or [Path(str(settings.data.leads.path))]
    return next((p for p in paths if not p.is_file()), None)


def run_dataset(dataset: Dataset, data_dir: Path, config_dir: Path = EXAMPLES) -> dict | str:
    """The dataset's row, or its ``absent:`` line when its files are missing."""
    settings = load_settings(config_dir / dataset.config)
    missing = missing_file(dataset, settings, data_dir)
    if missing is not None:
        return absent_line(dataset, missing)
    if dataset.prepare is not None:
        settings = dataset.prepare(settings, data_dir)
    return measure(settings, dataset.name, dataset.min_roc_auc)


# --- Output ----------------------------------------------------------------------------

HEADER = ("dataset", "split", "valid", "model", "ROC-AUC [95%]", "plain LGBM", "plain logit")
HEADER += ("margin [95%]", "rules", "ECE (floor)", "bar")


def _verdict(row: dict) -> str:
    misses = [
        label
        for key, label in (
            ("meets_references", "refs"),
            ("meets_min_roc_auc", f">={row.get('min_roc_auc')}"),
            ("meets_ece", "ECE"),
        )
        if row.get(key) is False
    ]
    if misses:
        return "misses " + ", ".join(misses)
    return "met" + ("" if row["meets_aim"] else f" (margin < {AIM})")


def table(rows: Sequence[dict]) -> str:
    """The rows as a fixed-width text table."""
    lines = [
        (
            r["dataset"],
            r["split"],
            f"{r['valid_rows']} ({r['valid_rate']:.1%})",
            r["model_kind"],
            f"{r['model_roc_auc']:.4f} [{r['model_roc_auc_interval'][0]:.3f}, "
            f"{r['model_roc_auc_interval'][1]:.3f}]",
            f"{r['plain_lightgbm_roc_auc']:.4f}",
            f"{r['plain_logistic_roc_auc']:.4f}",
            f"{r['margin']:+.4f} [{r['margin_interval'][0]:+.3f}, {r['margin_interval'][1]:+.3f}]",
            f"{r['rules_roc_auc']:.4f}",
            f"{r['ece']:.4f} ({r['ece_floor']:.3f})",
            _verdict(r),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(HEADER, *lines, strict=True)]
    return "\n".join(
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in (HEADER, *lines)
    )


def data_dir(arg: str | None) -> Path:
    """--data, else $LEADSCORE_REAL_DATA, else data/real in the repo."""
    return Path(arg or os.environ.get(DATA_ENV) or DEFAULT_DATA).resolve()


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help=f"folder of the Kaggle exports (${DATA_ENV}, data/real)")
    parser.add_argument("--only", action="append", choices=[d.name for d in DATASETS])
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=Path,
        help="also measure this config with its own paths, e.g. a tuned one "
        "(examples/bank-marketing.yaml)",
    )
    args = parser.parse_args(argv)
    folder = data_dir(args.data)
    rows = []
    chosen = [d for d in DATASETS if args.only is None or d.name in args.only]
    extra = [Dataset(c.stem, str(c.resolve())) for c in args.config]
    for dataset in [*chosen, *extra]:
        result = run_dataset(dataset, folder)
        if isinstance(result, str):
            print(result, flush=True)
        else:
            rows.append(result)
    if rows:
        print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
