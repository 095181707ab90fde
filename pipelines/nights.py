"""Simulated nights (``leadscore demo --nights N``): a drifting world watched night by night.

The synthetic world is generated once, up to the last night, with the injected change
(:mod:`leadscore.synthetic.drift`). Then, night after night, the CRM's export as it read
that night (:func:`~leadscore.synthetic.export.export_as_of`) replaces the data files, and
the real flows run on it: train (the first night, for a champion), score, monitor, and the
retrain the monitor decides. Each night prints one line: the batch, the live ROC-AUC of
the newest mature batch, tonight's estimated ROC-AUC, the largest feature PSI and the
decision.

The night is the flows' clock: a copy of the config with ``data.as_of`` set to the night
(written beside it, so relative paths resolve the same, and removed at the end) makes the
score flow score as of the night and the monitor read outcomes up to it. The export holds
nothing after the night, so the contract's check against the wall clock (timestamps later
than now + tolerance are refused) never fires on a simulated night in the past.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from leadscore.models.monitor.result import MonitorResult
from leadscore.pipelines.settings import Settings, SettingsError, config_path
from leadscore.synthetic import DEFAULT_END, generate_crm, write_crm
from leadscore.synthetic.drift import Change, describe, parse_change
from leadscore.synthetic.export import export_as_of

NIGHT_CONFIG = ".leadscore-night.yaml"
"""The per-night copy of the config (beside it), removed when the nights end."""


def night_dates(end: pd.Timestamp, nights: int, every: int) -> list[pd.Timestamp]:
    """``nights`` nights ``every`` days apart, the last one at ``end``, oldest first."""
    if nights <= 0 or every <= 0:
        raise ValueError("nights and every must be positive")
    return [end - pd.Timedelta(days=every * k) for k in reversed(range(nights))]


def change_of(text: str | None, nights: Sequence[pd.Timestamp], at: str | None) -> list[Change]:
    """The change to inject (``None`` or ``"none"``: a stable world); it starts at ``at``,
    or by default at the middle night (so that half the nights see it)."""
    if text is None or text == "none":
        return []
    return [parse_change(text, at if at else nights[len(nights) // 2])]


@contextmanager
def night_config(config: Path | None) -> Iterator[Callable[[pd.Timestamp], str]]:
    """A function that writes the config with ``data.as_of`` = a night and returns its
    path; the file is removed on exit."""
    source = config_path(config)
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    target = source.parent / NIGHT_CONFIG

    def at(night: pd.Timestamp) -> str:
        data = dict(raw.get("data") or {})
        data["as_of"] = night.isoformat()
        target.write_text(yaml.safe_dump({**raw, "data": data}, sort_keys=False), "utf-8")
        return str(target)

    try:
        yield at
    finally:
        target.unlink(missing_ok=True)


@dataclass(frozen=True)
class NightLine:
    """What one night shows: its batch and the monitor's view of it."""

    night: pd.Timestamp
    batch_id: str
    live_roc_auc: float | None
    live_as_of: pd.Timestamp | None  # the newest mature batch the live figure comes from
    estimated_roc_auc: float | None
    max_psi: float | None
    max_psi_feature: str | None
    decision: str
    retrained: str | None = None  # the retrain's outcome ("promoted v3", "kept v2")

    def text(self) -> str:
        def num(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        live = num(self.live_roc_auc)
        if self.live_as_of is not None:
            live += f" (batch of {self.live_as_of:%Y-%m-%d})"
        psi = num(self.max_psi) + (f" {self.max_psi_feature}" if self.max_psi_feature else "")
        tail = f"; {self.retrained}" if self.retrained else ""
        return (
            f"{self.night:%Y-%m-%d}  batch {self.batch_id}  live ROC-AUC {live}  "
            f"estimated {num(self.estimated_roc_auc)}  max PSI {psi}  {self.decision}{tail}"
        )


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def night_line(night: pd.Timestamp, result: MonitorResult, retrained: str | None) -> NightLine:
    """The night's line from the monitor's result: tonight's batch (the newest), the
    newest mature batch's live ROC-AUC, tonight's largest feature PSI."""
    newest = result.batches[-1] if result.batches else None
    mature = [b for b in result.batches if b.mature and b.metrics.get("roc_auc") is not None]
    live = mature[-1] if mature else None
    feature, psi = None, None
    if newest is not None and len(newest.drift):
        features = newest.drift[newest.drift["feature"] != "prediction"].dropna(subset=["psi"])
        if len(features):
            top = features.loc[features["psi"].idxmax()]
            feature, psi = str(top["feature"]), float(top["psi"])
    return NightLine(
        night=night,
        batch_id=newest.batch_id if newest is not None else "-",
        live_roc_auc=_number(live.metrics.get("roc_auc")) if live else None,
        live_as_of=live.as_of if live else None,
        estimated_roc_auc=_number(newest.metrics.get("estimated_roc_auc")) if newest else None,
        max_psi=psi,
        max_psi_feature=feature,
        decision=result.decision.text,
        retrained=retrained,
    )


def drifting_world(
    settings: Settings, leads: int | None, nights: Sequence[pd.Timestamp], changes: list[Change]
) -> Any:
    """The synthetic CRM up to the last night, with the changes injected."""
    return generate_crm(
        leads or settings.synthetic.leads,
        settings.synthetic.seed,
        end=nights[-1] if nights else DEFAULT_END,
        changes=changes,
    )


def write_night(crm: Any, night: pd.Timestamp, settings: Settings) -> None:
    """The export as it read on ``night``, where the config's data section reads it."""
    write_crm(export_as_of(crm, night), settings.synthetic.out_dir)


@dataclass
class Clock:
    """What the nights remember between nights: when the champion was trained and retrained."""

    trained_at: pd.Timestamp | None = None
    last_retrain_at: pd.Timestamp | None = None


def _champion(settings: Settings) -> str | None:
    from leadscore.pipelines import tracking

    return tracking.champion_version(tracking.configure(settings.tracking), settings.tracking)


def first_champion(path: str, night: pd.Timestamp, settings: Settings) -> str:
    """Train on the first night's export and make that model the champion, past the gate
    (a champion left by an earlier demo was trained on the whole world: the future)."""
    from leadscore.pipelines import tracking
    from leadscore.pipelines.train_flow import train_flow

    version = str(train_flow(path, force=False)["version"])
    client = tracking.configure(settings.tracking)
    if tracking.champion_version(client, settings.tracking) != version:
        reason = f"nights: the first night's model (export as of {night:%Y-%m-%d})"
        tracking.promote_version(client, settings.tracking, version, reason)
    return version


def monitor_adapter(path: str, night: pd.Timestamp, clock: Clock) -> tuple[MonitorResult, bool]:
    """The pure monitor over the archive and the night's outcomes, without the monitor
    flow (no store, no MLflow run); retrains through the train flow when it decides so."""
    from leadscore.models.monitor.run import monitor
    from leadscore.pipelines.archive import read_archive
    from leadscore.pipelines.settings import load_settings
    from leadscore.pipelines.train_flow import train_flow

    settings = load_settings(path)
    outcomes = pd.read_parquet(settings.data.leads.path, columns=["lead_id", "status", "closed_at"])
    result = monitor(
        read_archive(settings.monitor.archive_dir),
        outcomes,
        now=night,
        horizon_days=settings.snapshots.horizon_days,
        config=settings.monitor,
        grade_order=list(settings.scoring.grades),
        champion_version=_champion(settings),
        validation_roc_auc=None,
        trained_at=clock.trained_at,
        last_retrain_at=clock.last_retrain_at,
    )
    retrain = result.decision.action == "retrain" and settings.monitor.retrain
    if retrain:
        train_flow(path, force=False)
    return result, retrain


def monitor_night(path: str, night: pd.Timestamp, clock: Clock) -> tuple[MonitorResult, bool]:
    """The monitor flow (which starts the retrain it decides), else the adapter."""
    try:
        from leadscore.pipelines.monitor_flow import monitor_flow
    except ImportError:
        return monitor_adapter(path, night, clock)
    out = monitor_flow(path)
    result = out if isinstance(out, MonitorResult) else out["result"]
    retrain = result.decision.action == "retrain"
    return result, retrain


def run_nights(
    settings: Settings,
    config: Path | None,
    *,
    nights: int,
    every: int,
    change: str | None,
    change_at: str | None,
    leads: int | None,
    echo: Callable[[str], None],
) -> list[NightLine]:
    """Generate the drifting world once, then run the nights (flows on a Prefect server the
    caller provides); one line per night through ``echo``."""
    from leadscore.pipelines.score_flow import score_flow

    try:
        dates = night_dates(DEFAULT_END, nights, every)
        changes = change_of(change, dates, change_at)
    except ValueError as exc:  # a bad option: one line, exit code 2
        raise SettingsError(f"demo --nights: {exc}") from exc
    crm = drifting_world(settings, leads, dates, changes)
    echo(
        f"{len(crm.leads):,} leads to {dates[-1]:%Y-%m-%d}; {nights} nights every {every} days "
        f"from {dates[0]:%Y-%m-%d}; "
        + (describe(changes[0]) if changes else "no change injected (a stable world)")
    )
    clock, lines = Clock(), []
    with night_config(config) as at:
        for night in dates:
            path = at(night)
            write_night(crm, night, settings)
            if clock.trained_at is None:
                first_champion(path, night, settings)
                clock.trained_at = night
            before = _champion(settings)
            score_flow(path)
            result, retrained = monitor_night(path, night, clock)
            after = _champion(settings)
            note = None
            if retrained:
                clock.last_retrain_at = night
                note = (
                    f"retrained: champion {before} -> {after}"
                    if after != before
                    else (f"retrained: the gate kept {before}")
                )
                if after != before:
                    clock.trained_at = night
            line = night_line(night, result, note)
            echo(line.text())
            lines.append(line)
    return lines
