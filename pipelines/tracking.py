"""MLflow tracking, the model registry and the `champion` alias.

The experiment is created with an explicit artifact location (otherwise MLflow writes to
``./mlruns`` of whatever folder the command ran in). The promotion gate is declared in
config and decided by ``models.gate`` (pure); this module records the decision and moves
the alias.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from leadscore.features.validation import Validation, data_docs_html
from leadscore.models.base import LeadScorer
from leadscore.models.gate import Champion, Promotion
from leadscore.pipelines.errors import RegistryError
from leadscore.pipelines.run_card import RunData, log_datasets, run_description, run_name
from leadscore.pipelines.settings import Settings, TrackingConfig

# The fitted estimator holds a LightGBM booster and project classes (a segmented model
# holds several LeadModels); skops refuses to load any type it is not told to trust. The
# list is written into the MLmodel at log time.
TRUSTED_TYPES = [
    "leadscore.models.factory.LeadModel",
    "leadscore.models.segments.SegmentedModel",
    "leadscore.models.linear.LogisticLeadModel",  # model.kind: logistic
    "leadscore.models.calibration.Isotonic",
    "leadscore.features.registry.FeatureRegistry",  # the registry the model was trained with
    "leadscore.features.registry.FeatureSpec",
    "leadscore.features.concepts.Concept",  # its concepts (reasons)
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
]
REQUIREMENTS = ("lightgbm", "scikit-learn", "pandas", "numpy", "skops")


def configure(tracking: TrackingConfig) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(tracking.tracking_uri)
    client = MlflowClient(tracking_uri=tracking.tracking_uri)
    if client.get_experiment_by_name(tracking.experiment) is None:
        Path(tracking.artifact_location).mkdir(parents=True, exist_ok=True)
        client.create_experiment(
            tracking.experiment, artifact_location=Path(tracking.artifact_location).as_uri()
        )
    mlflow.set_experiment(tracking.experiment)
    return client


def _requirements() -> list[str]:
    """Exact pins of what loading the model needs (saves MLflow ~4 s of inference)."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]


def log_model(model: LeadScorer, example: pd.DataFrame, model_name: str) -> str:
    """Log the fitted model (sklearn flavor, signature, input example); register; return version."""
    sample = example.head(5)
    signature = infer_signature(sample, model.predict_proba(sample)[:, 1])
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=sample,
        pip_requirements=_requirements(),
        pyfunc_predict_fn="predict_proba",
        registered_model_name=model_name,
        skops_trusted_types=TRUSTED_TYPES,
    )
    return str(info.registered_model_version)


def log_json(payload: Any, artifact_file: str) -> None:
    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def load_version(client: MlflowClient, model_name: str, version: str) -> LeadScorer:
    del client
    return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")


def champion_version(client: MlflowClient, tracking: TrackingConfig) -> str | None:
    """The version holding the champion alias, or None before the first promotion."""
    try:
        mv = client.get_model_version_by_alias(tracking.model_name, tracking.champion_alias)
    except MlflowException:
        return None
    return str(mv.version)


def load_champion(tracking: TrackingConfig) -> tuple[LeadScorer, str]:
    """Load ``models:/<name>@champion``; a clear error when there is none yet."""
    client = configure(tracking)
    version = champion_version(client, tracking)
    if version is None:
        raise RegistryError(
            f"no '{tracking.champion_alias}' version of model '{tracking.model_name}' in "
            f"{tracking.tracking_uri}: run `leadscore train` first"
        )
    model = mlflow.sklearn.load_model(f"models:/{tracking.model_name}@{tracking.champion_alias}")
    return model, version


def promote(
    client: MlflowClient, tracking: TrackingConfig, version: str, decision: Promotion
) -> None:
    """Record the decision on the version; move the alias only if it passed."""
    client.set_model_version_tag(tracking.model_name, version, "promotion", decision.reason)
    client.set_model_version_tag(
        tracking.model_name, version, "promoted", str(decision.promoted).lower()
    )
    if decision.promoted:
        move_champion(client, tracking, version, decision.reason, action="gate")


# --- Champion history: manual promotion and rollback -----------------------------------
# The registry keeps one alias per name, so the order in which versions held `champion`
# is kept beside it, as a JSON list on a registered-model tag (oldest first). Every move
# of the alias goes through ``move_champion``, which appends to it; ``rollback`` pops the
# current champion and gives the alias back to the one before. Versions are never
# deleted, so every one of them stays loadable by number.

HISTORY_TAG = "champion_history"
"""Registered-model tag holding the versions that held the champion alias, oldest first."""


def champion_history(client: MlflowClient, tracking: TrackingConfig) -> list[str]:
    """Versions that held the champion alias, oldest first (the last is the champion).

    A registry written before the history existed starts from its current champion.
    """
    model = client.get_registered_model(tracking.model_name)
    raw = model.tags.get(HISTORY_TAG)
    history = [str(v) for v in json.loads(raw)] if raw else []
    current = champion_version(client, tracking)
    if current is not None and (not history or history[-1] != current):
        history.append(current)
    return history


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")


def move_champion(
    client: MlflowClient,
    tracking: TrackingConfig,
    version: str,
    reason: str,
    action: str,
    history: list[str] | None = None,
) -> list[str]:
    """Give the champion alias to ``version``; record why on it and in the history.

    ``history`` is the history to store *before* appending ``version`` (rollback passes
    the popped one); by default the current history. Returns the stored history.
    """
    name = tracking.model_name
    client.get_model_version(name, version)  # raises if there is no such version
    previous = champion_version(client, tracking)
    stored = [*(champion_history(client, tracking) if history is None else history)]
    if not stored or stored[-1] != version:
        stored.append(version)
    client.set_registered_model_alias(name, tracking.champion_alias, version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(stored))
    client.set_model_version_tag(name, version, "champion_since", _now())
    client.set_model_version_tag(name, version, "champion_reason", f"{action}: {reason}")
    if previous is not None and previous != version:
        client.set_model_version_tag(
            name, previous, "champion_until", f"{_now()} ({action} to version {version})"
        )
    return stored


def promote_version(
    client: MlflowClient, tracking: TrackingConfig, version: str, reason: str
) -> list[str]:
    """An operator's promotion of one version, past the gate; the reason is recorded."""
    client.set_model_version_tag(tracking.model_name, version, "promoted", "true")
    client.set_model_version_tag(tracking.model_name, version, "promotion", f"manual: {reason}")
    return move_champion(client, tracking, version, reason, action="promote")


def rollback(client: MlflowClient, tracking: TrackingConfig, reason: str) -> tuple[str, str]:
    """Give the alias back to the previous champion; return (from version, to version).

    Repeated rollbacks walk further back through the history. The version rolled away
    from is tagged with the reason and stays registered and loadable.
    """
    history = champion_history(client, tracking)
    if len(history) < 2:
        raise RegistryError(
            f"no previous '{tracking.champion_alias}' of model '{tracking.model_name}' "
            f"to roll back to (history: {history or 'empty'})"
        )
    current, earlier = history[-1], history[:-1]
    target = earlier[-1]
    client.set_model_version_tag(tracking.model_name, current, "rolled_back", reason)
    move_champion(client, tracking, target, reason, action="rollback", history=earlier)
    return current, target


def champion_on(client: MlflowClient, tracking: TrackingConfig) -> Champion | None:
    """The current champion's version and model, or None if there is none.

    Whether it can still score today's data is the gate's question
    (``models.gate.incompatibility``): it is then named with the columns it misses.
    """
    version = champion_version(client, tracking)
    if version is None:
        return None
    return Champion(version, load_version(client, tracking.model_name, version))


def write_report(report: str, report_dir: Path, run_id: str) -> Path:
    """Write ``<run_id>.html`` and replace ``latest.html`` atomically; return the run's path."""
    from leadscore.serving.files import write_atomic

    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"{run_id}.html"
    for target in (path, report_dir / "latest.html"):
        write_atomic(target, report)
    return path


def log_selection(evidence: dict[str, Any]) -> None:
    """``model.kind: auto``'s choice on the run: the winner (param), each candidate's inner
    score (metrics ``selection_<candidate>_<metric>``) and why, on which slice (tag)."""
    mlflow.log_param("model_chosen", evidence["chosen"] or "lightgbm")
    for name, score in evidence["scores"].items():
        if score is not None:
            mlflow.log_metric(f"selection_{name}_{evidence['metric']}", score)
    judged = f"; judged on {evidence['slice']}" if evidence["scores"] else ""
    mlflow.set_tag("model_selection", f"{evidence['reason']}{judged}")


def log_training_run(
    settings: Settings,
    model: LeadScorer,
    decision: Promotion,
    X_valid: pd.DataFrame,
    metrics: dict[str, Any],
    params: dict[str, Any],
    validations: Sequence[Validation],
    quarantine: pd.DataFrame,
    report: str = "",
    suspects: Sequence[Mapping[str, Any]] = (),
    data: RunData | None = None,
) -> dict[str, Any]:
    """One MLflow run of a training: params, metrics, targets, settings, the data's
    validation docs and quarantine, the evaluation report, the leakage suspects
    (``leakage.json``, tag ``leakage_suspects``) and the model (registered); then
    the gate's decision is tagged and the `champion` alias moved if it passed. The report
    is also written to ``output.report_dir``. With ``data``, the run is named by what it
    did and on what data, described with its headline figures (``pipelines.run_card``),
    and its training and validation examples are logged as its dataset inputs."""
    client = configure(settings.tracking)
    selection = getattr(model, "selection_", None)
    family = (selection["chosen"] or "lightgbm") if selection else settings.model.kind
    name = None if data is None else run_name(family, data, pd.Timestamp.now(tz="UTC"))
    with mlflow.start_run(run_name=name) as run:
        if data is not None:
            log_datasets(data)
            # the training's as-of: the monitor counts days since training from it
            mlflow.log_param("data_end", str(data.data_end))
        mlflow.log_params(params)
        for side in ("model", "rules", "oracle"):
            for key, value in (metrics.get(side) or {}).items():
                mlflow.log_metric(f"{side}_{key}", value)
        for target in metrics.get("targets", []):
            mlflow.log_metric(f"target_{target['target']}_met", float(target["met"]))
        log_json(settings.model_dump(mode="json"), "settings.json")
        log_json(metrics, "metrics.json")
        if getattr(model, "summary_", None):  # a model per segment: which, and why
            log_json(model.summary_, "segments.json")
        if selection:  # model.kind auto: the family chosen, and the evidence it was chosen on
            log_selection(selection)
        for suite, html in data_docs_html([r for v in validations for r in v.results]).items():
            mlflow.log_text(html, f"validation/{suite}.html")
        if len(quarantine):
            mlflow.log_text(quarantine.to_csv(index=False), "validation/quarantine.csv")
        if report:
            mlflow.log_text(report, "report.html")
        if suspects:  # columns likely filled in after the outcome (features.leakage)
            log_json(list(suspects), "leakage.json")
            columns = ", ".join(sorted({str(s["column"]) for s in suspects}))
            mlflow.set_tag("leakage_suspects", columns[:1000])
        version = log_model(model, X_valid[model.features], settings.tracking.model_name)
        mlflow.set_tags({"promoted": decision.promoted, "promotion": decision.reason})
        if data is not None:  # MLflow shows this tag as the run's description
            note = run_description(
                family, data, metrics, version, decision.promoted, decision.reason
            )
            mlflow.set_tag("mlflow.note.content", note)
    promote(client, settings.tracking, version, decision)
    report_path = (
        write_report(report, settings.output.report_dir, run.info.run_id) if report else None
    )
    return {
        "report": None if report_path is None else str(report_path),
        "run_id": run.info.run_id,
        "model_family": family,
        "version": version,
        "promoted": decision.promoted,
        "promotion": decision.reason,
    }
