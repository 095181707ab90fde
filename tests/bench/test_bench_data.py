"""The bench's open-leads sets: a set built on a cached smaller one is the set drawn whole."""

from __future__ import annotations

import pyarrow.parquet as pq

import bench.data as data


def test_a_set_started_from_a_smaller_cached_set_equals_one_drawn_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_LEADS", 150)
    whole = data.open_crm(400, tmp_path / "whole")
    data.open_crm(300, tmp_path / "grown")  # two whole chunks, cached
    grown = data.open_crm(400, tmp_path / "grown")  # copies them, draws the third
    assert (whole.n_leads, whole.n_activities) == (grown.n_leads, grown.n_activities)
    for a, b in ((whole.leads, grown.leads), (whole.activities, grown.activities)):
        assert pq.read_table(a).equals(pq.read_table(b))
    ids = pq.read_table(grown.leads, columns=["lead_id"])["lead_id"].to_pylist()
    assert len(set(ids)) == 400 and ids[0].startswith("B000-") and ids[-1].startswith("B002-")
    assert data.open_crm(400, tmp_path / "grown") == grown  # cached
