"""The nightly pass's shortcuts equal the straightforward way, on dirty frames.

``features.expectations`` evaluates the GX suites as column masks: every rule of both
suites must flag exactly the rows GX flags, with the same first reason per row. The
compact lead lookup (``features.lead_index``) must tie ids to the leads a pandas map ties
them to, collisions included; the byte-level text checks must agree with the cell-by-cell
ones, and the duplicate prefilter with pandas' ``duplicated``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from leadscore.features import hygiene, lead_index, text_bytes
from leadscore.features.config import AttributeConfig, ValidationConfig
from leadscore.features.contract import as_text
from leadscore.features.expectations import unexpected
from leadscore.features.lead_index import LeadIndex
from leadscore.features.validation import activity_rules, lead_rules, validate

NOW = pd.Timestamp("2026-06-01", tz="UTC")
UTC = "datetime64[ns, UTC]"


def _stamps(values: list[str | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True, format="ISO8601")).astype(UTC)


def _dirty_leads() -> pd.DataFrame:
    """Typed leads breaking every rule of the leads suite, some rows several at once."""
    return pd.DataFrame(
        {
            "lead_id": pd.Series(["a", "b", "b", None, "e", "f", "g", "h", "i", "j"], dtype="str"),
            "status": pd.Series(
                [
                    "open",
                    "open",
                    "lost",
                    "open",
                    None,
                    "maybe",
                    "open",
                    "converted",
                    "lost",
                    "open",
                ],
                dtype="str",
            ),
            "created_at": _stamps(
                [
                    "2026-01-01",
                    None,
                    "2026-01-02",
                    "2026-01-03",
                    "2026-01-04",
                    "2026-01-05",
                    "2027-01-01",
                    "2026-02-01",
                    "2026-03-01",
                    "2026-01-06",
                ]
            ),
            "closed_at": _stamps(
                [
                    None,
                    None,
                    "2026-02-01",
                    "2026-02-02",
                    None,
                    None,
                    None,
                    None,
                    "2026-02-01",
                    "2026-05-31T23:00",
                ]
            ),
            "employees": [5.0, np.nan, -1.0, 20.0, 3.0, 1e9, 7.0, 8.0, 9.0, 10.0],
        }
    )


def _dirty_activities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": pd.Series(["a", None, "a", "a", "zz", "a", "a", "a"], dtype="str"),
            "activity_type": pd.Series(["x", "x", None, "x", "x", "x", "x", "x"], dtype="str"),
            "occurred_at": _stamps(
                [
                    "2026-02-01",
                    "2026-02-01",
                    "2026-02-01",
                    None,
                    "2026-02-01",
                    "2026-09-01",
                    "2025-12-01",
                    "2026-02-02",
                ]
            ),
            "value": np.nan,
            "lead_created_at": _stamps(
                [
                    "2026-01-01",
                    None,
                    "2026-01-01",
                    "2026-01-01",
                    None,
                    "2026-01-01",
                    "2026-01-01",
                    "2026-01-01",
                ]
            ),
        }
    )


def _both(frame: pd.DataFrame, suite: str, rules: Callable[[], list]) -> tuple:
    """Reasons and columns through GX and as masks (fresh rules each: a suite owns its
    expectations once added)."""
    prior = pd.Series(None, index=frame.index, dtype=object)
    prior.iloc[0] = "found while parsing"  # parsing's reason wins over the suite's
    runs = [validate(frame, suite, "src", rules(), prior, prior.copy(), e) for e in ("gx", "numpy")]
    return tuple((v.reasons.tolist(), v.columns.tolist()) for v in runs)


@pytest.mark.parametrize("flat", [False, True])
def test_the_leads_suite_as_masks_flags_what_gx_flags(flat: bool):
    frame = _dirty_leads()
    config = ValidationConfig(ranges={"employees": (0, 1e7)})
    attributes = AttributeConfig(numeric=["employees"])
    dates = ["created_at", "closed_at"] if flat else []
    rules = lambda: lead_rules(attributes, config, NOW, flat, dates)  # noqa: E731
    assert all(unexpected(frame, r.expectation) is not None for r in rules())  # no GX fallback
    gx_run, numpy_run = _both(frame, "leads", rules)
    assert gx_run == numpy_run
    assert len({r for r in numpy_run[0] if isinstance(r, str)}) >= (4 if flat else 8)


def test_the_activities_suite_as_masks_flags_what_gx_flags():
    frame = _dirty_activities()
    rules = lambda: activity_rules(ValidationConfig(), NOW)  # noqa: E731
    gx_run, numpy_run = _both(frame, "activities", rules)
    assert gx_run == numpy_run
    found = {r for r in numpy_run[0] if isinstance(r, str)}
    assert found == {"found while parsing"} | {r.reason for r in rules()}
    assert sum(not isinstance(r, str) for r in numpy_run[0]) == 1  # the clean row


def test_instants_compared_as_integers_flag_what_pandas_comparisons_flag():
    """Nanosecond columns take the integer path; microsecond ones, pandas' comparisons."""
    config = ValidationConfig(future_tolerance_hours=0)
    for frame, rules in (
        (_dirty_leads(), lead_rules(AttributeConfig(), config, NOW, False)),
        (_dirty_activities(), activity_rules(config, NOW)),
    ):
        coarse = frame.astype({c: "datetime64[us, UTC]" for c in frame.select_dtypes("datetimetz")})
        for rule in rules:
            fast, slow = unexpected(frame, rule.expectation), unexpected(coarse, rule.expectation)
            assert fast is not None and slow is not None
            assert fast.tolist() == slow.tolist(), rule.reason


def test_an_expectation_not_modelled_runs_through_gx():
    import great_expectations as gx

    from leadscore.features.validation import RowRule

    frame = _dirty_leads()

    def rules() -> list[RowRule]:
        odd = gx.expectations.ExpectColumnValueLengthsToBeBetween(column="lead_id", max_value=0)
        mine = RowRule(odd, "lead_id", "lead_id too long")
        return [mine, *lead_rules(AttributeConfig(), ValidationConfig(), NOW, False)]

    assert unexpected(frame, rules()[0].expectation) is None
    gx_run, numpy_run = _both(frame, "leads", rules)
    assert gx_run == numpy_run and "lead_id too long" in numpy_run[0]


def test_the_lead_index_ties_ids_as_a_pandas_map_does(monkeypatch):
    ids = pd.Series(["L1", "L2", "0042", "42", "x y"], dtype="str")
    created = _stamps(["2026-01-01", "2026-01-02", None, "2026-01-04", "2026-01-05"])
    asked = pd.Series(["L2", "L1", None, "nope", "42", "L2", "0042", "x y", "L3"], dtype="str")
    expected = asked.map(pd.Series(created.to_numpy(), index=ids)).astype(UTC)
    for hashes in (lead_index._hashes, lambda v: np.zeros(len(v), dtype=np.uint64)):
        monkeypatch.setattr(lead_index, "_hashes", hashes)  # then: every id collides
        index = LeadIndex.of(ids, created).with_open(pd.Series(["x y", "L1"], dtype="str"))
        where = index.positions(asked)
        assert where.tolist() == [1, 0, -1, -1, 3, 1, 2, 4, -1]
        pd.testing.assert_series_equal(index.created_at(where), expected, check_names=False)
        assert index.open_position.tolist() == [1, -1, -1, -1, 0]


@pytest.mark.parametrize("grouped", [True, False])
def test_lead_positions_by_runs_equal_positions_by_value(monkeypatch, grouped: bool):
    rng = np.random.default_rng(5)
    ids = pd.Series([f"L{i}" for i in range(40)] + ["0042", "é"], dtype="str")
    created = pd.Series(pd.date_range("2026-01-01", periods=len(ids), tz="UTC"))
    drawn = [f"L{i}" for i in rng.integers(0, 60, 300)] + ["42", "0042", "é", "x"] * 5
    asked = pd.Series(sorted(drawn) if grouped else drawn, dtype="str")
    for hashes in (lead_index._hashes, lambda v: np.zeros(len(v), dtype=np.uint64)):
        monkeypatch.setattr(lead_index, "_hashes", hashes)
        index = LeadIndex.of(ids, created)
        assert (lead_index._runs(asked) is not None) == grouped  # the fast path, when grouped
        expected = index._positions_by_value(asked)
        assert index.positions(asked).tolist() == expected.tolist()
        with_null = asked.copy()
        with_null.iloc[7] = None  # a null: looked up by value, as before
        assert index.positions(with_null).tolist() == index._positions_by_value(with_null).tolist()


def test_byte_level_text_checks_agree_with_the_cell_by_cell_ones():
    values = [" a", "b ", "", None, "ok", "x\x00y", "tab\tok", "é", "a" * 30, "\u00a0nb"]
    for value in values:
        column = pd.Series(["fine", value, "also"], dtype="str")
        slow = hygiene.cell_faults(column, "c", 20)
        if text_bytes.clean_cells(column, 20):
            assert slow.isna().all(), value
        stripped = column.str.strip()
        if text_bytes.trimmed(column):
            pd.testing.assert_series_equal(as_text(column), stripped.mask(stripped == ""))
    assert text_bytes.clean_cells(pd.Series(["fine", "tab\tok", None], dtype="str"), 20)
    assert text_bytes.trimmed(pd.Series(["fine", None, "ok"], dtype="str"))


@pytest.mark.parametrize("ordered", [True, False])
def test_the_repeat_prefilter_finds_every_repeat(ordered: bool):
    rng = np.random.default_rng(3)
    lead, stamp = rng.integers(0, 30, 3000), rng.integers(0, 50, 3000)
    if ordered:
        order = np.lexsort((stamp, lead))
        lead, stamp = lead[order], stamp[order]
    expected = pd.DataFrame({"l": lead, "s": stamp}).duplicated(keep=False).to_numpy()
    assert (hygiene.repeated_keys(lead, stamp) == expected).all()
