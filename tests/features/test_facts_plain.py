"""The batch's facts (features/facts.py, assembled from pieces) are byte for byte the
per-lead rendering (bench/plain.py ``plain_facts``: a sort and ``json.dumps`` per lead),
on a synthetic CRM: its log as written, and shuffled, with repeats at the same second
(ties keep the log's order), times missing and activities after the scoring time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bench.plain import plain_facts
from leadscore.features.facts import FACT_FRAME_COLUMNS, lead_facts
from leadscore.pipelines.settings import load_settings
from leadscore.synthetic import generate_crm
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def crm():
    crm = generate_crm(500, seed=11)
    return crm.leads, crm.activities, load_settings(ROOT / "leadscore.yaml")


def _as_lists(frame: pd.DataFrame) -> dict[str, list]:
    return {c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame}


def _mixed(activities: pd.DataFrame) -> pd.DataFrame:
    repeats = activities.sample(300, random_state=1).assign(value=7.25)  # same second
    mixed = pd.concat([activities, repeats], ignore_index=True).sample(frac=1, random_state=2)
    mixed.loc[mixed.index[:40], "occurred_at"] = pd.NaT
    mixed = mixed.reset_index(drop=True)
    kinds = mixed["activity_type"].to_numpy(dtype=object)  # in chunks, as a spilled file reads
    chunks = pa.chunked_array([kinds[:5000], kinds[5000:]], pa.large_string())
    return mixed.assign(activity_type=pd.arrays.ArrowStringArray(chunks))


@pytest.mark.parametrize(("shuffled", "all_known"), [(False, False), (True, False), (False, True)])
def test_facts_equal_the_per_lead_rendering(crm, shuffled, all_known):
    """``all_known``: every activity is before the scoring time (the nightly case, the log
    read without a copy)."""
    leads, activities, settings = crm
    activities = _mixed(activities) if shuffled else activities
    as_of = leads["created_at"].max().floor("D") - pd.Timedelta(days=20)  # some in the future
    if all_known:
        as_of = activities["occurred_at"].max() + pd.Timedelta(days=1)
    display = settings.data.display.columns()
    got = lead_facts(leads, activities, as_of, settings.features, display)
    want = plain_facts(leads, activities, as_of, settings.features, display)
    assert list(got.columns) == ["lead_id", *FACT_FRAME_COLUMNS]
    assert _as_lists(got) == _as_lists(want)
    timelines = got["timeline"].str.count('"type"')
    assert timelines.max() == 20 and (timelines == 0).any()  # cut, and leads with none
    if shuffled:
        assert np.isin(activities["value"], [7.25]).sum() == 300
