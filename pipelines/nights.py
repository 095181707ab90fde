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

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from leadscore.models.monitor.drift import max_feature_psi
from leadscore.pipelines.settings import Settings, SettingsError, config_path
from leadscore.synthetic import DEFAULT_END, SyntheticCRM, generate_crm, write_crm
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
def night_config(
    config: Path | None, archive: Path | None = None
) -> Iterator[Callable[[pd.Timestamp], str]]:
    """A function that writes the config with ``data.as_of`` = a night (and
    ``monitor.archive_dir`` = ``archive`` if given) and returns its path; the file is
    removed on exit."""
    source = config_path(config)
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    target = source.parent / NIGHT_CONFIG

    def at(night: pd.Timestamp) -> str:
        data = dict(raw.get("data") or {})
        data["as_of"] = night.isoformat()
        night_raw = {**raw, "data": data}
        if archive is not None:
            night_raw["monitor"] = {**(raw.get("monitor") or {}), "archive_dir": str(archive)}
        target.write_text(yaml.safe_dump(night_raw, sort_keys=False), "utf-8")
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


def night_line(
    night: pd.Timestamp,
    batches: pd.DataFrame,
    drift: pd.DataFrame,
    decision: str,
    retrained: str | None = None,
) -> NightLine:
    """The night's line from the monitor's tables (the store's ``monitor_batches`` of this
    run's batches, oldest first, and ``monitor_drift`` of the newest): tonight's batch, the
    newest mature batch's live ROC-AUC, tonight's largest feature PSI."""
    newest = batches.iloc[-1] if len(batches) else None
    mature = batches[batches["mature"].astype(bool) & batches["roc_auc"].notna()]
    live = mature.iloc[-1] if len(mature) else None
    top = max_feature_psi(drift) if len(drift) else None
    return NightLine(
        night=night,
        batch_id=str(newest["batch_id"]) if newest is not None else "-",
        live_roc_auc=_number(live["roc_auc"]) if live is not None else None,
        live_as_of=pd.Timestamp(live["as_of"]) if live is not None else None,
        estimated_roc_auc=_number(newest["estimated_roc_auc"]) if newest is not None else None,
        max_psi=top[1] if top else None,
        max_psi_feature=top[0] if top else None,
        decision=decision,
        retrained=retrained,
    )


def retrain_note(retrain: dict[str, Any] | None) -> str | None:
    """The retrain the monitor started, in words (None: none started)."""
    if not retrain:
        return None
    if retrain.get("error"):
        return f"retrain failed: {retrain['error']}"
    verdict = "promoted" if retrain.get("promoted") else "not promoted (the gate kept the champion)"
    return f"retrained: version {retrain.get('version')} {verdict}"


def drifting_world(
    settings: Settings, leads: int | None, nights: Sequence[pd.Timestamp], changes: list[Change]
) -> SyntheticCRM:
    """The synthetic CRM up to the last night, with the changes injected."""
    return generate_crm(
        leads or settings.synthetic.leads,
        settings.synthetic.seed,
        end=nights[-1] if nights else DEFAULT_END,
        changes=changes,
    )


def write_night(crm: SyntheticCRM, night: pd.Timestamp, settings: Settings) -> None:
    """The export as it read on ``night``, where the config's data section reads it."""
    write_crm(export_as_of(crm, night), settings.synthetic.out_dir)


def first_champion(path: str, night: pd.Timestamp, settings: Settings) -> str:
    """Train on the first night's export and make that model the champion, past the gate
    (a champion left by an earlier demo was trained on the whole world: the future)."""
    from leadscore.pipelines import tracking
    from leadscore.pipelines.train_flow import train_flow

    version = str(train_flow(path)["version"])
    client = tracking.configure(settings.tracking)
    if tracking.champion_version(client, settings.tracking) != version:
        reason = f"nights: the first night's model (export as of {night:%Y-%m-%d})"
        tracking.promote_version(client, settings.tracking, version, reason)
    return version


def monitor_night(path: str, archive: Path) -> NightLine:
    """The monitor flow on the night (it starts the retrain it decides), read back from
    the store: this run's batches (those in ``archive``) and the newest one's drift."""
    from leadscore.pipelines.monitor_flow import monitor_flow
    from leadscore.pipelines.settings import load_settings
    from leadscore.serving.store import ScoreStore

    out = monitor_flow(path)
    settings = load_settings(path)
    store = ScoreStore(settings.store)
    ours = {p.name for p in archive.iterdir()} if archive.is_dir() else set()
    batches = store.monitor_batches()
    batches = batches[batches["batch_id"].isin(ours)]
    newest = batches["batch_id"].iloc[-1] if len(batches) else None
    drift = store.monitor_drift(newest) if newest else pd.DataFrame()
    night = pd.Timestamp(settings.data.as_of)
    return night_line(night, batches, drift, out["decision_text"], retrain_note(out["retrain"]))


def run_nights(
    settings: Settings,
    config: Path | None,
    nights: int,
    every: int,
    change: str | None,
    change_at: str | None,
    leads: int | None,
    echo: Callable[[str], None],
) -> list[NightLine]:
    """Generate the drifting world once, then run the nights (flows on a Prefect server the
    caller provides); one line per night through ``echo``.

    The nights archive their batches in a folder of their own (``monitor.archive_dir``
    + ``-nights``, emptied first), so that batches of an earlier demo, scored as of the
    world's end, are not judged beside them.
    """
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
    archive = Path(f"{settings.monitor.archive_dir}-nights")
    shutil.rmtree(archive, ignore_errors=True)
    lines = []
    with night_config(config, archive) as at:
        for i, night in enumerate(dates):
            path = at(night)
            write_night(crm, night, settings)
            if i == 0:
                first_champion(path, night, settings)
            score_flow(path)
            line = monitor_night(path, archive)
            echo(line.text())
            lines.append(line)
    return lines
