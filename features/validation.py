"""Validation at the boundary with Great Expectations 1.x suites, declared in code.

Each row rule is one expectation paired with the reason a failing row is quarantined
for; each bad row keeps the first reason it failed (reasons found while typing first,
then the rules in suite order). Table rules (empty input, too many bad rows, an attribute
that is nearly all null) stop the run with an error naming the file, the column and
example rows. The validation results render as GX Data Docs HTML, which the train flow
logs with every run.

Where each check runs (``validate``'s ``engine``): the whole-table load (``load_crm``:
training, the monitor, the Data Docs) and the API's posted lead run the suites through GX
with the COMPLETE result format, so GX names the failing rows. The nightly pass
(``pipelines.partitioned.stream_crm``, chunk by chunk) runs the very same suite objects
as column masks (``engine="numpy"``, ``features.expectations``): for every expectation the
suites use (not null, null under a row condition, in set, between, unique, the pair
A >= B), the mask is what GX reports as unexpected, pinned by
``tests/features/test_expectations.py``; an expectation type not modelled there still
runs through GX on that chunk. Its GX results were never read (the nightly run logs no
Data Docs); on the 1M-lead bench, GX's per-chunk context, metrics and result objects (and
the full garbage collection they needed per chunk) were most of the validate stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.execution_engine import pandas_execution_engine as _gx_pandas_engine
from great_expectations.expectations import Expectation
from great_expectations.expectations.row_conditions import Column

from leadscore.features.config import AttributeConfig, ValidationConfig
from leadscore.features.expectations import unexpected

OPEN, CLOSED = "open", ("converted", "lost")
STATUSES = (OPEN, *CLOSED)
EXAMPLES = 5


def _editor_line(row: int) -> int:
    """Data row ``row`` (0-based) as an editor shows it: the header is line 1."""
    return int(row) + 2


# GX logs every expectation it builds at INFO; the results are what we report.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
# ... and its data context announces each temporary docs folder at INFO, on its own level.
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
# GX fingerprints every in-memory batch under 1 GB by hashing each cell, for batch
# markers nothing here reads: a third of the suites' time on an activity log. GX has no
# option for it; its module threshold is the switch (0 = never fingerprint).
_gx_pandas_engine.HASH_THRESHOLD = 0


class ContractError(ValueError):
    """A table-level violation: the whole input is unusable as it stands."""


@dataclass(frozen=True)
class RowRule:
    """An expectation, the column it is about, and the quarantine reason of failing rows."""

    expectation: Expectation
    column: str
    reason: str


@dataclass
class Validation:
    """First failing reason per row (None = clean), and the GX results for the docs."""

    reasons: pd.Series
    columns: pd.Series
    results: list[ExpectationSuiteValidationResult] = field(default_factory=list)
    bad: np.ndarray | None = None
    """Which rows have a reason, when known without a scan of ``reasons``."""

    def bad_rows(self) -> np.ndarray:
        """Which rows failed (boolean, by position)."""
        return self.bad if self.bad is not None else self.reasons.notna().to_numpy()


def _run_suite(
    frame: pd.DataFrame, name: str, rules: Sequence[RowRule], source: str
) -> tuple[dict[int, RowRule], ExpectationSuiteValidationResult]:
    """Run ``rules`` as suite ``name`` on ``frame``; map each failing row to its first rule."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(name).add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame.reset_index(drop=True)}
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for rule in rules:
        suite.add_expectation(rule.expectation)
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    by_id = {r.expectation.id: i for i, r in enumerate(rules)}
    failures: dict[int, list[int]] = {}
    for outcome in result.results:
        message = _exception_message(outcome.exception_info)
        if message is not None:
            raise ContractError(
                f"{source}: validation of {outcome.expectation_config.type} failed to run: "
                f"{message}"
            )
        position = by_id[outcome.expectation_config.id]
        failures[position] = outcome.result.get("unexpected_index_list") or []
    first: dict[int, RowRule] = {}
    for position in sorted(failures):
        for row in failures[position]:
            first.setdefault(int(row), rules[position])
    return first, result


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """The error an expectation raised while running, if any, else None.

    GX reports it flat (``{"raised_exception": True, ...}``) or, for a metric that failed,
    keyed by the metric's id; an unnoticed failure would pass every row as clean.
    """
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _merge(
    frame: pd.DataFrame,
    prior: pd.Series | None,
    prior_columns: pd.Series | None,
    found: dict[int, RowRule],
) -> tuple[pd.Series, pd.Series]:
    """Reasons found before the suite (parsing) win; then the suite's first failures."""
    if prior is None or prior_columns is None:
        prior = prior_columns = pd.Series(None, index=frame.index, dtype=object)
    reasons, columns = prior.copy(), prior_columns.copy()
    positions = frame.index
    for row, rule in found.items():
        label = positions[row]
        if pd.isna(reasons.loc[label]):
            reasons.loc[label] = rule.reason
            columns.loc[label] = rule.column
    return reasons, columns


def _vectorised(
    frame: pd.DataFrame,
    suite: str,
    source: str,
    rules: Sequence[RowRule],
    prior: pd.Series | None,
    prior_columns: pd.Series | None,
) -> Validation:
    """The suite as whole-column masks (``features.expectations``), GX only for a rule
    those do not model; the same first reason per row as :func:`_run_suite` gives."""
    masks = [unexpected(frame, rule.expectation) for rule in rules]
    rest = [rule for rule, mask in zip(rules, masks, strict=True) if mask is None]
    found: dict[int, RowRule] = _run_suite(frame, suite, rest, source)[0] if rest else {}
    if prior is None or prior_columns is None:  # nothing found while typing
        reasons = np.empty(len(frame), dtype=object)  # None in every row
        columns = np.empty(len(frame), dtype=object)
        free = np.ones(len(frame), dtype=bool)
    else:
        reasons = prior.to_numpy(dtype=object, copy=True)
        columns = prior_columns.to_numpy(dtype=object, copy=True)
        free = pd.isna(reasons)
    for rule, mask in zip(rules, masks, strict=True):
        if mask is None:
            mask = np.zeros(len(frame), dtype=bool)
            mask[[row for row, r in found.items() if r is rule]] = True
        new = mask & free
        if new.any():
            reasons[new] = rule.reason
            columns[new] = rule.column
            free &= ~new
    return Validation(
        reasons=pd.Series(reasons, index=frame.index, dtype=object, copy=False),
        columns=pd.Series(columns, index=frame.index, dtype=object, copy=False),
        bad=~free,
    )


def _required_timestamp(column: str) -> RowRule:
    return RowRule(
        gx.expectations.ExpectColumnValuesToNotBeNull(column=column),
        column,
        f"{column} is missing or not a timestamp",
    )


def _not_future(column: str, latest: pd.Timestamp) -> RowRule:
    return RowRule(
        gx.expectations.ExpectColumnValuesToBeBetween(column=column, max_value=latest),
        column,
        f"{column} is in the future",
    )


def _closed_after_created() -> RowRule:
    return RowRule(
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="closed_at",
            column_B="created_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        "closed_at",
        "closed_at is before created_at",
    )


def lead_rules(
    attributes: AttributeConfig,
    config: ValidationConfig,
    now: pd.Timestamp,
    flat: bool,
    flat_dates: Sequence[str] = (),
) -> list[RowRule]:
    """The leads suite. A flat export needs no life-cycle dates, so the rules that require
    them drop out; the dates it does carry (``flat_dates``: created_at, closed_at) are
    checked as an event log's are: not in the future, closed_at not before created_at.
    """
    E = gx.expectations
    latest = now + pd.Timedelta(hours=config.future_tolerance_hours)
    rules = [
        RowRule(E.ExpectColumnValuesToNotBeNull(column="lead_id"), "lead_id", "lead_id is empty"),
        RowRule(
            E.ExpectColumnValuesToBeUnique(column="lead_id"), "lead_id", "lead_id is duplicated"
        ),
        RowRule(E.ExpectColumnValuesToNotBeNull(column="status"), "status", "status is empty"),
        RowRule(
            E.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
            "status",
            f"status is not one of {list(STATUSES)}",
        ),
    ]
    if not flat:
        rules += [
            _required_timestamp("created_at"),
            _not_future("created_at", latest),
            RowRule(
                E.ExpectColumnValuesToBeNull(
                    column="closed_at", row_condition=Column("status") == OPEN
                ),
                "closed_at",
                "open lead has a closed_at",
            ),
            RowRule(
                E.ExpectColumnValuesToNotBeNull(
                    column="closed_at", row_condition=Column("status").is_in(CLOSED)
                ),
                "closed_at",
                "closed lead has no valid closed_at",
            ),
            _not_future("closed_at", latest),
            _closed_after_created(),
        ]
    else:
        rules += [_not_future(column, latest) for column in flat_dates]
        if {"created_at", "closed_at"} <= set(flat_dates):
            rules.append(_closed_after_created())
    for column, (low, high) in config.ranges.items():
        if column in attributes.numeric:
            rules.append(
                RowRule(
                    E.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
                    column,
                    f"{column} is outside [{low:g}, {high:g}]",
                )
            )
    return rules


def activity_rules(config: ValidationConfig, now: pd.Timestamp) -> list[RowRule]:
    """The activities suite, run on the log with each clean lead's created_at joined on.

    An activity whose lead is unknown (or was quarantined) joins to no created_at: one
    not-null rule catches it, far cheaper than an in-set rule over every lead id.
    """
    E = gx.expectations
    latest = now + pd.Timedelta(hours=config.future_tolerance_hours)
    return [
        RowRule(E.ExpectColumnValuesToNotBeNull(column="lead_id"), "lead_id", "lead_id is empty"),
        RowRule(
            E.ExpectColumnValuesToNotBeNull(column="lead_created_at"),
            "lead_id",
            "activity for an unknown or quarantined lead",
        ),
        RowRule(
            E.ExpectColumnValuesToNotBeNull(column="activity_type"),
            "activity_type",
            "activity_type is empty",
        ),
        _required_timestamp("occurred_at"),
        _not_future("occurred_at", latest),
        RowRule(
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="occurred_at",
                column_B="lead_created_at",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            "occurred_at",
            "activity before the lead was created",
        ),
    ]


def validate(
    frame: pd.DataFrame,
    suite: str,
    source: str,
    rules: Sequence[RowRule],
    prior: pd.Series | None,
    prior_columns: pd.Series | None,
    engine: str = "gx",
) -> Validation:
    """Run suite ``suite`` (leads | activities) on a typed frame read from ``source``;
    combine with the reasons found while parsing (``prior``; None: none were).
    ``engine="gx"``: through GX, with its results for the Data Docs; ``"numpy"``: the same
    rules as column masks, no results."""
    if engine == "numpy":
        return _vectorised(frame, suite, source, rules, prior, prior_columns)
    found, result = _run_suite(frame, suite, rules, source)
    reasons, columns = _merge(frame, prior, prior_columns, found)
    return Validation(reasons=reasons, columns=columns, results=[result])


def check_table(
    frame: pd.DataFrame,
    validation: Validation,
    source: str,
    config: ValidationConfig,
    attributes: Sequence[str] = (),
    lines: Callable[[int], int] = _editor_line,
) -> None:
    """Table rules: raise ``ContractError`` naming the file, the column and example rows
    (by the line an editor shows them on: ``lines`` maps a row position to it)."""
    n = len(frame)
    if n == 0:
        raise ContractError(f"{source}: no rows (the file is empty or has only a header)")
    bad = pd.Series(validation.bad_rows(), index=validation.reasons.index)
    share = bad.mean()
    if share > config.max_bad_row_share:
        worst = validation.columns[bad].value_counts().index[0]
        rows = validation.reasons[bad & (validation.columns == worst)]
        examples = ", ".join(f"line {lines(i)}: {r}" for i, r in rows.head(EXAMPLES).items())
        raise ContractError(
            f"{source}: {bad.sum()} of {n} rows ({share:.0%}) break the data contract, over "
            f"the limit of {config.max_bad_row_share:.0%}; most in column '{worst}' ({examples})"
        )
    counts = {c: int(frame[c].isna().sum()) for c in attributes if c in frame}
    check_null_share(n, counts, source, config)


def check_null_share(
    n_rows: int, null_counts: Mapping[str, int], source: str, config: ValidationConfig
) -> None:
    """An attribute that is nearly all null is a broken export, not data: stop the run."""
    for column, nulls in null_counts.items():
        share = nulls / n_rows if n_rows else 0.0
        if share > config.max_null_share:
            raise ContractError(
                f"{source}: column '{column}' is null in {share:.0%} of rows, over the limit "
                f"of {config.max_null_share:.0%} ({nulls} of {n_rows} rows)"
            )


def data_docs_html(results: Sequence[ExpectationSuiteValidationResult]) -> dict[str, str]:
    """GX Data Docs pages (HTML) of validation results, keyed by suite name."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    pages = {}
    for result in results:
        document = ValidationResultsPageRenderer().render(result)
        pages[result.suite_name] = DefaultJinjaPageView().render(document)
    return pages
