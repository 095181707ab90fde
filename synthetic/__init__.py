"""Embedded synthetic CRM: a hidden world whose leads convert for learnable reasons.

The generator (:func:`generate_crm`) draws leads with observable attributes from hidden
personas, simulates their activity log day by day and lets them convert or get lost through
hidden daily hazards. Conversion is driven by *fit* (a function of the attributes) and by
*recent, decayed engagement* (an exponentially decayed sum of typed activities), so a
point-in-time feature builder that gets recency right can recover most of the signal, and
one that leaks post-close activities (deliberately emitted after every close) will look
too good.

Everything here is pure numpy/pandas. The ``truth`` frame and :func:`oracle_probability`
expose the hidden parameters only to report the oracle bound; feature code never reads them.
The oracle rebuilds each lead's hidden state at a snapshot (:func:`oracle_rows`) and
simulates its futures with the generator's own daily step (:func:`simulate_day`), so it is
the true conditional probability given that state (up to Monte Carlo noise), not an
approximation of it.

Timestamps are ``datetime64[ns, UTC]`` at one-second precision; the simulation runs on
integer seconds since the epoch and on UTC calendar days, so that the oracle recomputes
the hidden state from exactly the timestamps that were written. Weekends, the CRM's
campaigns and each lead's bursts are fixed functions of the date and of hidden keys kept
in ``truth``: the oracle reads from the keys what is running at the snapshot, and draws
what starts later afresh on every path, as it draws activities. Replaying the world's
future bursts and campaigns would be foresight, not propensity (it lifted the oracle's
ROC-AUC on the 20k demo CRM from 0.9291 to 0.9301).

Modules, along the seams: :mod:`~leadscore.synthetic.vocabulary` (what an export can
contain), :mod:`~leadscore.synthetic.world` (the hidden parameters, read as ``world.NAME``
so that a bench override reaches them), :mod:`~leadscore.synthetic.randomness` (hashed
uniforms), :mod:`~leadscore.synthetic.dynamics` (hazards, rates, calendar, bursts),
:mod:`~leadscore.synthetic.population` (the leads), :mod:`~leadscore.synthetic.step` (the
daily step), :mod:`~leadscore.synthetic.generator` and :mod:`~leadscore.synthetic.frames`
(the CRM and its files), :mod:`~leadscore.synthetic.oracle_state` and
:mod:`~leadscore.synthetic.oracle` (the oracle bound).

The public API below is what the pipeline (``leadscore demo``/``generate``, the train
flow's oracle figure) and the bench's bounds use: the bench's knowable bound
(``bench/knowable_oracle.py``) follows the same rules with the laws of
:mod:`~leadscore.synthetic.dynamics` and the step's :class:`Units`.
"""

from __future__ import annotations

from leadscore.synthetic import world
from leadscore.synthetic.dynamics import (
    activity_calendar,
    activity_rate,
    advance_bursts,
    burst_length,
    campaign_starts,
    conversion_hazard,
    decay,
    exogenous_rate,
    loss_hazard,
)
from leadscore.synthetic.frames import SyntheticCRM, write_crm
from leadscore.synthetic.generator import generate_crm
from leadscore.synthetic.oracle import PathTraits, oracle_probability
from leadscore.synthetic.oracle_state import OracleRows, oracle_rows
from leadscore.synthetic.population import icp_by_industry
from leadscore.synthetic.randomness import mix64
from leadscore.synthetic.step import Units, simulate_day
from leadscore.synthetic.vocabulary import (
    ACTIVITY_TYPES,
    ALL_TYPES,
    DEFAULT_END,
    INDUSTRIES,
    SECONDS_PER_DAY,
    TYPE_CODE,
    UNDECLARED_TYPE,
    VOCABULARY,
)

__all__ = [
    "ACTIVITY_TYPES",
    "ALL_TYPES",
    "DEFAULT_END",
    "INDUSTRIES",
    "SECONDS_PER_DAY",
    "TYPE_CODE",
    "UNDECLARED_TYPE",
    "VOCABULARY",
    "OracleRows",
    "PathTraits",
    "SyntheticCRM",
    "Units",
    "activity_calendar",
    "activity_rate",
    "advance_bursts",
    "burst_length",
    "campaign_starts",
    "conversion_hazard",
    "decay",
    "exogenous_rate",
    "generate_crm",
    "icp_by_industry",
    "loss_hazard",
    "mix64",
    "oracle_probability",
    "oracle_rows",
    "simulate_day",
    "world",
    "write_crm",
]
