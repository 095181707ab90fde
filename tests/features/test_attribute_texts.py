"""``concepts.attribute_texts`` (the reasons' attribute sentences, a field at a time)
equals ``_attribute_text`` row by row: missing values (None, NaN), whole and fractional
numbers either side of 100, negatives, booleans, text with underscores and unicode, a
field used twice or not at all, literal braces, format specs, conversions (the plain
formatter's path) and no rows."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from leadscore.features.concepts import Concept, _attribute_text, attribute_texts

VALUES = [
    None, math.nan, 0, 0.0, -0.0, 5, 99.94, 99.96, 100, 1234.5, -2500.0, 1e16, 0.000123,
    True, "software_dev", "日本_é", "", "a b", 12,
]  # fmt: skip
TEMPLATES = [
    "{size:num} employees",
    "{kind} / {size:num}",
    "{kind} ({kind}), {{braces}} {other}",
    "{size:>8} at {kind!r}",  # a conversion: the plain formatter
    "no field at all",
    "{other:num} and {size:.2f}",
]


def _concept(template: str) -> Concept:
    facts = (("kind", ("kind",)), ("size", ("size",)), ("other", ("other",)))
    return Concept(
        "k", "k", 0, "fit", ("kind", "size", "other"), "attributes", facts, template,
        labels=("industry", "company size", "other"),
    )  # fmt: skip


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("seed", range(4))
def test_attribute_texts_equal_the_per_row_sentence(template, seed):
    rng = np.random.default_rng(seed)
    numbers = [v for v in VALUES if not isinstance(v, str)]
    n = int(rng.integers(0, 40))
    columns = {
        "kind": [VALUES[i] for i in rng.integers(0, len(VALUES), size=n)],
        "size": [numbers[i] for i in rng.integers(0, len(numbers), size=n)],
        "other": [numbers[i] for i in rng.integers(0, len(numbers), size=n)],
    }
    concept = _concept(template)
    expected = []
    for i in range(n):
        try:
            expected.append(_attribute_text(concept, {k: v[i] for k, v in columns.items()}))
        except (TypeError, ValueError) as error:  # a spec the value does not take
            expected.append(type(error))
    if any(isinstance(e, type) for e in expected):
        with pytest.raises((TypeError, ValueError)):
            attribute_texts(concept, columns)
        return
    unaddressed = [re.sub(r" at 0x[0-9a-f]+", "", t) for t in attribute_texts(concept, columns)]
    assert unaddressed == [re.sub(r" at 0x[0-9a-f]+", "", t) for t in expected]  # !r
