"""The next step of a nurture lead: the reachable activity that would raise its probability most.

A lead in one of ``nurture.cells`` (the quadrant's nurture and educate cells,
``models/subscores.py``) is wanted or interested but not ready. What would move it? For
every activity type marketing can invite a lead to (``nurture.activities``; null: every
type declared under ``features.activity_types``), the lead's features are rebuilt as if it
did ONE more activity of that type now (a synthetic activity at the scoring time minus one
second) and scored again by the model. The type with the largest gain over the lead's
current probability is its ``next_step`` (the type's label), the gain (probability points,
0-1, read to :data:`GAIN_DECIMALS` places) its ``next_step_gain``, when that gain is more
than ``nurture.min_gain``; else both stay null.

Honest by construction: the features are those the one feature path
(``models.scoring.partition_features``, i.e. ``features.builder.build_features``) gives from
the lead's activities strictly before the scoring time plus the synthetic one, so recency,
windowed counts, decayed sums, engagement points and high-intent recency move exactly as
they would if the lead did it; nothing after the scoring time is read. One exception is
made, because the builder's answer would be wrong there: an account's engagement
(``data.joins``) leaves the lead's own activity out, so the lead's step leaves the other
contacts' engagement where it was (the baseline value is kept).

:func:`what_if` is that rebuild, literally. The nightly stage gets the same numbers
without it (:func:`next_step_probabilities`): the moved features by delta from the scored
feature rows (``models.nurture.delta``), every (lead, type) row scored in one pass over
the model's tabulated trees, summed in LightGBM's order (``models.nurture.forest``); only
a lead with an activity in the last second before the scoring time is rebuilt. A
partition without an activity log (a flat export) has no activity to add: its next steps
stay null.

Pure: no Prefect, MLflow or store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import pandas as pd

from leadscore.features.accounts import AccountHistory, engagement_name
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import ACTIVITY_TYPE, LEAD_ID, OCCURRED_AT
from leadscore.features.market import OutcomeHistory
from leadscore.models.base import LeadScorer
from leadscore.models.nurture.config import NurtureConfig
from leadscore.models.nurture.delta import Move, one_more
from leadscore.models.nurture.forest import forest_of, lightgbm_columns, what_if_raw
from leadscore.models.schema import NURTURE_COLUMNS
from leadscore.models.scoring import RAW_SCORE, Partition, StageTimes, partition_features

NEXT_STEP, NEXT_STEP_GAIN = NURTURE_COLUMNS
GAIN_DECIMALS = 4
"""Places the gain is read to (and compared with ``nurture.min_gain`` at): a gain that
reads 0.0000 is no step."""
SYNTHETIC_LAG = pd.Timedelta(seconds=1)
"""The synthetic activity happens this long before the scoring time (the feature builder
counts activities strictly before it)."""
STAGE = "nurture"
"""The name the what-if's time is recorded under in ``StageTimes``."""


class NurtureSettings(Protocol):
    """What the next steps read of the settings (``pipelines.settings.Settings`` has it)."""

    @property
    def features(self) -> FeatureConfig: ...

    @property
    def nurture(self) -> NurtureConfig: ...


def reachable_types(features: FeatureConfig, nurture: NurtureConfig) -> list[str]:
    """The activity types a next step may be, in declared order (which breaks ties)."""
    wanted = nurture.activities
    return [t for t in features.activity_types if wanted is None or t in wanted]


def synthetic_time(as_of: pd.Timestamp) -> pd.Timestamp:
    """When the what-if's one more activity happens: :data:`SYNTHETIC_LAG` before ``as_of``."""
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp - SYNTHETIC_LAG


def what_if(
    part: Partition,
    as_of: pd.Timestamp,
    model: LeadScorer,
    config: FeatureConfig,
    types: Sequence[str],
    history: OutcomeHistory | None = None,
    accounts: AccountHistory | None = None,
    baseline: pd.DataFrame | None = None,
) -> np.ndarray:
    """The model's probability for each lead of ``part`` (rows, in order) had it done one
    more activity of each of ``types`` (columns) just before ``as_of``.

    ``part`` holds the leads and their activity log (rows at or after ``as_of`` are left
    out); ``baseline``, the leads' features as scored (same rows), keeps the accounts'
    engagement of the other contacts (see the module docstring); without it they are
    rebuilt once.
    """
    if part.activities is None:
        raise ValueError("a what-if needs an activity log (a flat export has none)")
    out = np.empty((len(part.leads), len(types)))
    if not len(types) or not len(part.leads):
        return out
    part = Partition(_plain_text(part.leads), part.activities)
    before = _past_activities(part, as_of, types)
    if baseline is None and accounts is not None and accounts.has_log:
        baseline = partition_features(
            Partition(part.leads, before), as_of, config, history, accounts
        )
    kept = _account_engagement(baseline, accounts)
    stamp = synthetic_time(as_of)
    for j, kind in enumerate(types):
        extra = _one_more(before, kind, stamp)
        log = pd.concat([before, extra], ignore_index=True)
        X = partition_features(Partition(part.leads, log), as_of, config, history, accounts)
        if kept:
            X = X.assign(**kept)
        out[:, j] = model.calibrated(model.raw_score(X))
    return out


def _past_activities(part: Partition, as_of: pd.Timestamp, types: Sequence[str]) -> pd.DataFrame:
    """The leads' activities strictly before ``as_of``, in the columns the builder reads,
    typed so that appending a row per lead and factorising cost little per type: the lead
    id a categorical of exactly ``part.leads``' ids (in their order), the type a
    categorical that knows ``types``."""
    acts = part.activities
    assert acts is not None
    leads = pd.Index(part.leads[LEAD_ID].to_numpy(dtype=object))
    column = acts[LEAD_ID]
    if isinstance(column.dtype, pd.CategoricalDtype):  # a spilled partition: map categories
        where = leads.get_indexer(column.cat.categories)
        codes = column.cat.codes.to_numpy()
        position = np.where(codes >= 0, where[np.maximum(codes, 0)], -1)
    else:
        position = leads.get_indexer(column)
    past = (acts[OCCURRED_AT] < synthetic_time(as_of) + SYNTHETIC_LAG).to_numpy()
    keep = np.flatnonzero((position >= 0) & past)
    kinds, seen = pd.factorize(acts[ACTIVITY_TYPE].take(keep))  # a missing type: code -1
    seen = [str(t) for t in seen]
    categories = pd.Index([*seen, *(t for t in types if t not in set(seen))], dtype=object)
    return pd.DataFrame(
        {
            LEAD_ID: pd.Categorical.from_codes(position[keep], categories=leads),
            ACTIVITY_TYPE: pd.Categorical.from_codes(kinds, categories=categories),
            OCCURRED_AT: acts[OCCURRED_AT].take(keep).reset_index(drop=True),
        }
    )


def _one_more(before: pd.DataFrame, kind: str, stamp: pd.Timestamp) -> pd.DataFrame:
    """One activity of type ``kind`` at ``stamp`` for every lead (``before``'s lead
    categories, in order), typed as ``before`` so that appending it keeps its categoricals."""
    leads = before[LEAD_ID].cat.categories
    kinds = before[ACTIVITY_TYPE].cat.categories
    n = len(leads)
    return pd.DataFrame(
        {
            LEAD_ID: pd.Categorical.from_codes(np.arange(n), categories=leads),
            ACTIVITY_TYPE: pd.Categorical.from_codes(
                np.full(n, kinds.get_loc(kind)), categories=kinds
            ),
            OCCURRED_AT: pd.DatetimeIndex(np.full(n, stamp.value), tz="UTC").as_unit("ns"),
        }
    )


def _plain_text(leads: pd.DataFrame) -> pd.DataFrame:
    """``leads`` with its Arrow-backed text columns as plain objects, converted once as the
    builder converts them (``to_numpy(dtype=object)``), not once per activity type."""
    arrow = [c for c in leads.columns if isinstance(leads[c].dtype, pd.StringDtype | pd.ArrowDtype)]
    return leads.assign(
        **{c: pd.Series(leads[c].to_numpy(dtype=object), leads.index, object) for c in arrow}
    )


def _account_engagement(
    baseline: pd.DataFrame | None, accounts: AccountHistory | None
) -> dict[str, np.ndarray]:
    """The other contacts' engagement per account join, as the leads were scored."""
    if baseline is None or accounts is None:
        return {}
    names = (engagement_name(g) for g in accounts.names)
    return {n: baseline[n].to_numpy() for n in names if n in baseline}


def best_steps(
    current: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    min_gain: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's next step (a label of ``labels``, one per column of ``probabilities``)
    and its gain over ``current``: the largest gain (the first type on a tie), read to
    :data:`GAIN_DECIMALS` places; None and NaN where no gain is above ``min_gain``."""
    n = len(current)
    steps = np.full(n, None, dtype=object)
    gains = np.full(n, np.nan)
    if not len(labels) or not n:
        return steps, gains
    lift = np.asarray(probabilities, dtype=np.float64) - np.asarray(current, np.float64)[:, None]
    best = np.argmax(lift, axis=1)
    gain = np.round(lift[np.arange(n), best], GAIN_DECIMALS)
    moved = gain > min_gain
    steps[moved] = np.asarray(labels, dtype=object)[best[moved]]
    gains[moved] = gain[moved]
    return steps, gains


def with_next_steps(
    frame: pd.DataFrame,
    X: pd.DataFrame,
    part: Partition,
    as_of: pd.Timestamp,
    model: LeadScorer,
    settings: NurtureSettings,
    history: OutcomeHistory | None = None,
    accounts: AccountHistory | None = None,
    times: StageTimes | None = None,
) -> pd.DataFrame:
    """``frame`` (a partition's scores, ``models.scoring.score_partition``, rows as ``X``'s)
    with ``next_step`` and ``next_step_gain`` filled for its leads in ``nurture.cells``;
    null elsewhere. ``X`` holds the features the partition was scored on, built from
    ``part`` (leads and activities) as of ``as_of``, with ``history`` and ``accounts``.
    Timed as stage "nurture"."""
    with _stage(times):
        steps = np.full(len(frame), None, dtype=object)
        gains = np.full(len(frame), np.nan)
        chosen = np.flatnonzero(frame["cell"].isin(settings.nurture.cells).to_numpy())
        types = reachable_types(settings.features, settings.nurture)
        if part.activities is not None and len(chosen) and types:
            own = frame[RAW_SCORE].to_numpy(np.float64)[chosen] if RAW_SCORE in frame else None
            probabilities = next_step_probabilities(
                X, chosen, part, as_of, model, settings.features, types, history, accounts, own
            )
            labels = [settings.features.type_label(t) for t in types]
            current = frame["probability"].to_numpy(dtype=np.float64)[chosen]
            steps[chosen], gains[chosen] = best_steps(
                current, probabilities, labels, settings.nurture.min_gain
            )
        return frame.assign(**{NEXT_STEP: steps, NEXT_STEP_GAIN: gains})


def next_step_probabilities(
    X: pd.DataFrame,
    rows: np.ndarray,
    part: Partition,
    as_of: pd.Timestamp,
    model: LeadScorer,
    config: FeatureConfig,
    types: Sequence[str],
    history: OutcomeHistory | None = None,
    accounts: AccountHistory | None = None,
    own: np.ndarray | None = None,
) -> np.ndarray:
    """What :func:`what_if` answers for the leads at positions ``rows`` of ``X`` (features
    as scored, built from ``part`` as of ``as_of``; ``own``: their scored log-odds, if
    known), computed from ``X`` instead of rebuilt: the moved features by delta
    (``models.nurture.delta``, the builder's values), all (lead, type) rows scored in one
    pass (``models.nurture.forest`` for LightGBM, else ``raw_score``). The few leads the
    delta cannot answer exactly (an activity in the last second before ``as_of``) are
    rebuilt through :func:`what_if`."""
    assert part.activities is not None
    rows = np.asarray(rows, dtype=np.int64)
    delta = one_more(X, rows, config, types, SYNTHETIC_LAG.value)
    rebuild = np.ones(len(rows), dtype=bool) if delta is None else delta[1]
    out = np.empty((len(rows), len(types)))
    fast = np.flatnonzero(~rebuild)
    if delta is not None and len(fast):
        moved = delta[0] if len(fast) == len(rows) else [
            {n: v.take(fast) for n, v in m.items()} for m in delta[0]
        ]  # fmt: skip
        out[fast] = _scored(X, rows[fast], moved, model, None if own is None else own[fast])
    slow = rows[rebuild]
    if len(slow):
        ids = X[LEAD_ID].to_numpy(dtype=object)[slow]
        leads = part.leads.iloc[pd.Index(part.leads[LEAD_ID]).get_indexer(ids)]
        baseline = None if accounts is None else X.iloc[slow].reset_index(drop=True)
        out[rebuild] = what_if(
            Partition(leads, part.activities), as_of, model, config, types, history,
            accounts, baseline,
        )  # fmt: skip
    return out


CHUNK_ROWS = 262_144
"""What-if rows a model without tabulated trees scores in one ``raw_score`` call."""


def _scored(
    X: pd.DataFrame,
    rows: np.ndarray,
    moved: list[dict[str, Move]],
    model: LeadScorer,
    own: np.ndarray | None,
) -> np.ndarray:
    """The calibrated probabilities (leads x types) of ``X``'s rows ``rows`` with each
    type's moved columns: through the tabulated trees when the model has them and they
    give the leads' own log-odds ``own`` back to the last bit, else ``raw_score``."""
    n, n_types = len(rows), len(moved)
    forest = forest_of(model)
    if forest is not None:
        position = {name: j for j, name in enumerate(forest.features)}
        by_position = [{position[n]: v for n, v in m.items() if n in position} for m in moved]
        columns = lightgbm_columns(model, X, rows, forest)
        mine, raw = what_if_raw(forest, columns, by_position)
        if own is None:
            own = model.raw_score(X.iloc[rows])
        if np.array_equal(mine, own):
            return model.calibrated(raw.ravel()).reshape(n, n_types)
    out = np.empty((n, n_types))
    step = max(1, CHUNK_ROWS // n_types)
    for a in range(0, n, step):
        part = rows[a : a + step]
        patch = {}
        for name in dict.fromkeys(name for m in moved for name in m):
            base = X[name].to_numpy(np.float64)[part]
            column = np.repeat(base, n_types).reshape(-1, n_types)
            for k, m in enumerate(moved):
                if name in m:
                    column[:, k] = m[name].take(np.arange(a, a + len(part))).apply(base)
            patch[name] = column.ravel()
        raw = model.raw_score(X.iloc[np.repeat(part, n_types)].assign(**patch))
        out[a : a + step] = model.calibrated(raw).reshape(-1, n_types)
    return out


@contextmanager
def _stage(times: StageTimes | None) -> Iterator[None]:
    if times is None:
        yield
    else:
        with times.stage(STAGE):
            yield
