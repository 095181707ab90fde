"""The API bench's store rows (bench/api_store.py) pass the store's own checks and are
sized like a real batch's (~2.2 KB a row at 1M, common figures in bench/README.md)."""

from __future__ import annotations

from bench.api_store import synthetic_batch
from leadscore.serving.store import validate_scores


def test_bench_rows_are_valid_full_sized_and_two_batches_share_their_leads():
    first = synthetic_batch(2000, 1, 0, 500)
    validated = validate_scores(first)
    assert len(validated) == 500 and validated["rank"].tolist() == list(range(1, 501))
    size = sum(first[c].astype(str).str.len().mean() for c in first.columns)
    assert 1800 < size < 3000
    second = synthetic_batch(2000, 2)
    assert set(synthetic_batch(2000, 1)["lead_id"]) == set(second["lead_id"])
