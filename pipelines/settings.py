"""The one typed settings object, loaded from ``leadscore.yaml``.

Each room defines the section it consumes (``features.config``, ``models.config``,
``serving.config``); this module composes them, adds the orchestration-only sections
(sources, tracking, outputs) and resolves relative paths against the config file's folder,
so every command behaves the same whatever the current directory.

One source of defaults: every default here and in the sections' models is the value the
shipped ``leadscore.yaml`` states, so a key left out of a config means what that file
says. Only what describes one deployment has no such default (its data, its columns and
activity types, its ideal customer: see the file's header and
tests/pipelines/test_cli_and_settings.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadscore.features.config import FeatureConfig, LeakageConfig, SnapshotConfig, ValidationConfig
from leadscore.models.config import (
    ModelConfig,
    PromotionGate,
    QualityTargets,
    RulesConfig,
    ScoringConfig,
)
from leadscore.models.monitor.config import MonitorConfig
from leadscore.models.nurture.config import NurtureConfig
from leadscore.models.routing.config import RoutingConfig
from leadscore.pipelines.data_sections import (
    CsvOptions,
    DisplayConfig,
    JoinSource,
    OutcomeMapping,
    OutcomesSource,
    SourceConfig,
    SqlQuery,
)
from leadscore.pipelines.sections import (
    OutputConfig,
    PrefectConfig,
    RunnerConfig,
    SyntheticConfig,
    TrackingConfig,
)
from leadscore.serving.config import ApiConfig, StoreConfig
from leadscore.serving.webhooks.config import WebhooksConfig

__all__ = [  # the data sections live in pipelines/data_sections.py; importable here too
    "CsvOptions",
    "DataConfig",
    "DisplayConfig",
    "JoinSource",
    "OutcomeMapping",
    "OutcomesSource",
    "Settings",
    "SettingsError",
    "SourceConfig",
    "SqlQuery",
    "config_path",
    "load_settings",
]

DEFAULT_CONFIG = "leadscore.yaml"
CONFIG_ENV = "LEADSCORE_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where leads and activities come from, and how a user's columns map onto the contract."""

    leads: SourceConfig
    activities: SourceConfig | None = Field(
        default=None, description="None for a flat export (behaviour already in columns)."
    )
    truth: Path | None = Field(
        default=None, description="Hidden-propensity file of the synthetic CRM (oracle only)."
    )
    column_mapping: dict[str, str] = Field(
        default_factory=dict, description="User column -> contract column, applied on load."
    )
    outcome: OutcomeMapping | None = None
    outcomes: OutcomesSource | None = None  # a second table giving status and closed_at
    joins: list[JoinSource] = Field(default_factory=list)  # attribute tables (accounts)
    lead_id_from_row: bool = Field(
        default=False, description="No id column: use the 1-based row number as lead_id."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Columns dropped on load: leaks, unwanted fields."
    )
    sensitive: list[str] = Field(
        default_factory=list,
        description="Protected columns (age, gender, ...): dropped on load whatever their "
        "case, and a settings error if declared as an attribute, a segment or a mapping "
        "target; recorded with the run's settings.",
    )
    chunk_rows: int = Field(
        default=500_000,
        ge=1,
        description="Lead and activity rows the score flow reads and checks at a time (bounds "
        "memory: at 10M leads, chunks of 1M rows peaked at 1,916 MiB in the leads pass, "
        "500,000 at 1,855, for ~0.7 s more at 1M).",
    )
    order: Literal["time", "rows", "none"] = Field(
        default="time",
        description="Flat exports: split by created_at, by row order, or at random.",
    )
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    duplicate_activities: Literal["drop", "keep"] = Field(
        default="drop",
        description="Exact duplicate activity rows: dropped (and counted) or kept (counted).",
    )
    as_of: datetime | None = Field(
        default=None, description="Scoring time; None = the end of the data (the export day)."
    )
    display: DisplayConfig = Field(default_factory=DisplayConfig)

    @model_validator(mode="after")
    def _tables(self) -> DataConfig:
        names = [j.name for j in self.joins]
        problems = {
            "data.outcome and data.outcomes both give the leads' status: keep one (outcome "
            "maps a leads column, outcomes a second table)": (
                self.outcome is not None and self.outcomes is not None
            ),
            "data.outcomes joins on lead ids; data.lead_id_from_row numbers rows instead": (
                self.outcomes is not None and self.lead_id_from_row
            ),
            "data.outcomes needs closed_at with an activity log (snapshots need the day each "
            "lead closed)": (
                self.outcomes is not None
                and self.outcomes.closed_at is None
                and self.activities is not None
            ),
            f"data.joins need distinct names: {names}": len(set(names)) < len(names),
            "data.display names a column data.exclude or data.sensitive drops on load: "
            f"{self.dropped_columns(self.display.columns().values())}": bool(
                self.dropped_columns(self.display.columns().values())
            ),
        }
        if any(problems.values()):
            raise ValueError("; ".join(p for p, found in problems.items() if found))
        return self

    def is_sensitive(self, column: str) -> bool:
        """Whether ``column`` is listed as sensitive (case and surrounding blanks ignored)."""
        return column.strip().casefold() in {c.strip().casefold() for c in self.sensitive}

    def dropped_columns(self, columns: Iterable[str]) -> list[str]:
        """The columns, among ``columns``, to drop on load: excluded or sensitive ones."""
        excluded = set(self.exclude)
        return [c for c in columns if c in excluded or self.is_sensitive(str(c))]


class Settings(_Strict):
    """Everything leadscore can be told, in one validated object."""

    project_dir: Path = Field(default=Path("."), description="Set by the loader.")
    data: DataConfig
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    promotion: PromotionGate = Field(default_factory=PromotionGate)
    quality: QualityTargets = Field(default_factory=QualityTargets)
    store: StoreConfig = Field(default_factory=StoreConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    prefect: PrefectConfig = Field(default_factory=PrefectConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    nurture: NurtureConfig = Field(default_factory=NurtureConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.rules.activity_window_days not in self.features.windows_days:
            raise ValueError(
                f"rules.activity_window_days ({self.rules.activity_window_days}) must be one of "
                f"features.windows_days {self.features.windows_days}"
            )
        attrs = set(self.features.attributes.names)
        leaking = attrs & set(self.data.exclude)
        if leaking:
            raise ValueError(
                f"excluded columns are declared as model attributes: {sorted(leaking)}"
            )
        self._sensitive_never_modelled()
        segment = self.model.segments.column
        if segment is not None and segment not in self.features.attributes.categorical:
            raise ValueError(
                f"model.segments.column {segment!r} must be declared under "
                "features.attributes.categorical (scoring routes each lead by its value)"
            )
        unknown = [a for a in self.rules.icp if a not in attrs]
        unknown += [p.attribute for p in self.rules.penalties if p.attribute not in attrs]
        if unknown:
            raise ValueError(f"rules name attributes that are not declared: {sorted(set(unknown))}")
        numeric = set(self.features.attributes.numeric)
        if not_numeric := sorted(a for a in self.rules.numeric if a not in numeric):
            raise ValueError(
                f"rules.numeric names attributes that are not declared under "
                f"features.attributes.numeric: {not_numeric}"
            )
        self._distribution_names_declared()
        return self

    def _distribution_names_declared(self) -> None:
        """Routing and nurture name grades, columns and activity types: refuse unknown ones."""
        routing, grades = self.routing, list(self.scoring.grades)
        categorical = [*self.features.attributes.categorical, "segment", "owner"]
        columns = {"territory": routing.territory, "skill": routing.skill}
        columns["language"] = routing.language
        wanted = self.nurture.activities or []
        found = {
            f"routing.pool_grades / min_seniority name grades not in scoring.grades {grades}": [
                g for g in [*routing.pool_grades, *routing.min_seniority] if g not in grades
            ],
            "routing columns must be categorical attributes (or segment, owner)": [
                f"{key}: {name}"
                for key, name in columns.items()
                if name is not None and name not in categorical
            ],
            "routing.value must be a numeric attribute": [
                v for v in [routing.value] if v and v not in self.features.attributes.numeric
            ],
            "nurture.activities must be declared under features.activity_types": [
                a for a in wanted if a not in self.features.activity_types
            ],
        }
        problems = [f"{key}: {names}" for key, names in found.items() if names]
        if problems:
            raise ValueError("; ".join(problems))

    def _sensitive_never_modelled(self) -> None:
        """Refuse every way a sensitive column could reach a model, naming the key."""
        data = self.data
        found = {
            "features.attributes": [
                a for a in self.features.attributes.names if data.is_sensitive(a)
            ],
            "model.segments.column": [
                c for c in [self.model.segments.column] if c is not None and data.is_sensitive(c)
            ],
            "data.column_mapping (renamed to a non-sensitive name)": [
                f"{source} -> {target}"
                for source, target in data.column_mapping.items()
                if data.is_sensitive(source) and not data.is_sensitive(target)
            ],
        }
        problems = [f"{key}: {names}" for key, names in found.items() if names]
        if problems:
            raise ValueError(
                "sensitive columns (data.sensitive) never reach a model, but " + "; ".join(problems)
            )


def _resolve_path(base: Path, value: Path) -> Path:
    return value if value.is_absolute() else (base / value).resolve()


def _resolve_url(base: Path, url: str) -> str:
    """Make a relative ``sqlite:///file`` URL absolute; leave every other URL alone."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _resolved_source(base: Path, source: SourceConfig | None) -> SourceConfig | None:
    if source is None:
        return None
    update: dict[str, object] = {}
    if source.path is not None:
        update["path"] = _resolve_path(base, source.path)
    if source.sql is not None:
        update["sql"] = source.sql.model_copy(update={"url": _resolve_url(base, source.sql.url)})
    return source.model_copy(update=update)


def _resolved(settings: Settings, base: Path) -> Settings:
    data = settings.data
    output = settings.output
    return settings.model_copy(
        update={
            "project_dir": base,
            "data": data.model_copy(
                update={
                    "leads": _resolved_source(base, data.leads),
                    "activities": _resolved_source(base, data.activities),
                    "outcomes": _resolved_source(base, data.outcomes),
                    "joins": [_resolved_source(base, j) for j in data.joins],
                    "truth": data.truth and _resolve_path(base, data.truth),
                }
            ),
            "synthetic": settings.synthetic.model_copy(
                update={"out_dir": _resolve_path(base, settings.synthetic.out_dir)}
            ),
            "store": settings.store.model_copy(
                update={"url": _resolve_url(base, settings.store.url)}
            ),
            "tracking": settings.tracking.model_copy(
                update={
                    "tracking_uri": _resolve_url(base, settings.tracking.tracking_uri),
                    "artifact_location": _resolve_path(base, settings.tracking.artifact_location),
                }
            ),
            "output": output.model_copy(
                update={
                    "scores_csv": _resolve_path(base, output.scores_csv),
                    "quarantine_csv": _resolve_path(base, output.quarantine_csv),
                    "calls_csv": _resolve_path(base, output.calls_csv),
                    "nurture_csv": _resolve_path(base, output.nurture_csv),
                    "report_dir": _resolve_path(base, output.report_dir),
                    "demo_page_token": _resolve_path(base, output.demo_page_token),
                }
            ),
            "prefect": PrefectConfig(home=_resolve_path(base, settings.prefect.home)),
            "monitor": settings.monitor.model_copy(
                update={"archive_dir": _resolve_path(base, settings.monitor.archive_dir)}
            ),
            "runner": settings.runner.model_copy(
                update={
                    "spill_dir": settings.runner.spill_dir
                    and _resolve_path(base, settings.runner.spill_dir)
                }
            ),
        }
    )


class SettingsError(ValueError):
    """The config file is missing or invalid; the message names the file and the key."""


def config_path(path: str | Path | None = None) -> Path:
    """The config file to use: the argument, else $LEADSCORE_CONFIG, else ./leadscore.yaml."""
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_settings(path: str | Path | None = None, **overrides: object) -> Settings:
    """Read, validate and path-resolve the settings; ``overrides`` replace top-level sections."""
    file = config_path(path)
    if not file.is_file():
        raise SettingsError(f"config file not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{file}: not valid YAML: {exc}") from exc
    raw.update(overrides)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SettingsError(f"{file}: invalid settings: {problems}") from exc
    return _resolved(settings, file.parent)
