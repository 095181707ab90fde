"""The reasons codec (models/reasons.py): what explain writes, export/API/CLI read back."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from leadscore.models import reasons

REASONS = [
    {"concept": "pricing", "text": 'Visited "pricing" 3 times, café', "direction": "+",
     "contribution": 0.123456, "share": 0.41234,
     "features": {"n_pricing_90d": 0.1, "days_since_pricing": 0.023456}},
    {"concept": "activity", "text": "No high-intent activity in 45 days", "direction": "-",
     "contribution": -0.2, "share": 0.2, "features": {"days_since_hi": -0.2}},
]  # fmt: skip


def test_encode_decode_round_trip():
    raw = reasons.encode(REASONS)
    assert raw.isascii()  # ASCII JSON, like the batch writes
    back = reasons.decode(raw)
    assert [r["text"] for r in back] == [r["text"] for r in REASONS]
    assert [r["contribution"] for r in back] == [0.1235, -0.2]
    assert [r["share"] for r in back] == [0.412, 0.2]
    assert back[0]["features"] == {"n_pricing_90d": 0.1, "days_since_pricing": 0.0235}
    assert list(back[0]) == list(reasons.KEYS)
    assert reasons.encode(back) == raw


def test_numbers_are_rounded_once_and_never_negative_zero():
    values = np.array([0.123456, -0.00001, 2.5e-5, 1.0, -3.14159])
    assert reasons.numbers(values).tolist() == ["0.1235", "0.0", "0.0", "1.0", "-3.1416"]
    assert [reasons.number(v) for v in values] == reasons.numbers(values).tolist()
    assert reasons.numbers(np.array([[0.5, 0.12345]]), 3).tolist() == [["0.5", "0.123"]]


@pytest.mark.parametrize(
    "values",
    [
        [3.0, -0.0, 0.0, np.nan, -2.0, 3.0, np.nan],  # the usual: a short range, NaN padding
        [np.nan, np.nan],
        [],
        [1e12, -1e12, 5.0, 1e12],  # a range too long to index: hashed
        [np.inf, 1.0, -np.inf],
    ],
)
def test_numbers_coded_by_range_equal_factorize(values):
    """``number_pieces`` codes whole numbers by their place in their range (no hashing):
    the same groups and the same texts as ``pd.factorize``, NaN without a piece."""
    scaled = np.array(values, dtype=np.float64)
    codes, uniques = reasons._whole_codes(scaled)
    want_codes, want_uniques = pd.factorize(scaled, use_na_sentinel=True)
    got = [None if c < 0 else float(uniques[c]) for c in codes]
    assert got == [None if c < 0 else float(want_uniques[c]) for c in want_codes]
    assert len(uniques) == len(want_uniques)


def test_the_batch_path_equals_the_encoder():
    """``encode_batch`` (the nightly hot path: pieces written once, rows assembled in one
    compiled pass) writes every row exactly as ``encode`` writes its reasons."""
    tiny = {"concept": "tiny", "text": "naïve ✓", "direction": "-", "contribution": -0.00001,
            "share": 0.0004, "features": {"a": -0.00001, "b": 2.5e-5, "c": -3.14159}}  # fmt: skip
    known = [*REASONS, tiny]
    rows = [REASONS, [], [tiny], [REASONS[1], tiny, REASONS[0]], [REASONS[0]]]
    flat = [known.index(r) for row in rows for r in row]
    members = [list(r["features"]) for r in known]
    per_feature = np.full((len(flat), 3), np.nan)
    for i, k in enumerate(flat):
        per_feature[i, : len(members[k])] = list(known[k]["features"].values())
    got = reasons.encode_batch(
        np.array([len(row) for row in rows]),
        [(r["concept"], r["text"]) for r in known],
        np.array(flat),
        np.array([known[k]["direction"] == "+" for k in flat]),
        np.array([known[k]["contribution"] for k in flat]),
        np.array([known[k]["share"] for k in flat]),
        members,
        np.array(flat),
        per_feature,
    )
    assert got.to_pylist() == [reasons.encode(row) for row in rows]
    assert got.to_pylist()[2] == (
        '[{"concept": "tiny", "text": "na\\u00efve \\u2713", "direction": "-", '
        '"contribution": 0.0, "share": 0.0, "features": {"a": 0.0, "b": 0.0, "c": -3.1416}}]'
    )


def test_one_line_rendering():
    raw = reasons.encode(REASONS)
    assert reasons.as_text(raw) == (
        'Visited "pricing" 3 times, café (+); No high-intent activity in 45 days (-)'
    )
    assert reasons.join_lines(["a (+)", "", "b (-)"]) == "a (+); b (-)"
    no_direction = json.dumps([{"text": "x"}])
    assert reasons.as_text(no_direction) == "x (+)"


@pytest.mark.parametrize("blank", [None, "", float("nan")])
def test_blank_values_have_no_reasons(blank):
    assert reasons.decode(blank) == []
    assert reasons.as_text(blank) == ""


@pytest.mark.parametrize("bad", ['{"text": "x"}', "[1, 2]", '[{"feature": "f"}]'])
def test_strict_decode_refuses_other_shapes(bad):
    with pytest.raises(ValueError, match="JSON array of objects"):
        reasons.decode(bad)


def test_strict_decode_refuses_broken_json():
    with pytest.raises(ValueError):
        reasons.decode("[{")


def test_lenient_decode_for_serving(caplog):
    assert reasons.decode_lenient(reasons.encode(REASONS))[1]["direction"] == "-"
    assert reasons.decode_lenient('{"a": 1}') == []
    assert reasons.decode_lenient(None) == []
    with caplog.at_level(logging.WARNING, logger="leadscore.models.reasons"):
        assert reasons.decode_lenient("not json") == []
    assert "unreadable reasons value 'not json'" in caplog.text


def test_v1_reasons_read_as_v2_wherever_served():
    """A batch published before concepts keeps its one-feature reasons: serving reads them
    as v2 (the feature is the concept and its one feature, share unknown)."""
    raw = json.dumps(
        [{"feature": "n_demo_90d", "text": "demo", "direction": "+", "contribution": 0.5}]
    )
    assert reasons.decode_lenient(raw) == [
        {
            "concept": "n_demo_90d",
            "text": "demo",
            "direction": "+",
            "contribution": 0.5,
            "share": None,
            "features": {"n_demo_90d": 0.5},
        }
    ]
    v2 = reasons.encode(
        [
            {
                "concept": "c",
                "text": "t",
                "direction": "-",
                "contribution": -1,
                "share": 1,
                "features": {"f": -1},
            }
        ]
    )
    assert reasons.decode_lenient(v2) == json.loads(v2)
