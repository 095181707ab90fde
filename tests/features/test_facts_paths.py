"""The facts of a spilled partition (its log's ``lead_id`` categorical, its categories
the partition's leads in order: no lookup) equal those of the same log read any other
way (text ids; categories in another order, or more leads than the partition's) and the
per-lead rendering (bench/plain.py), with unicode ids and labels, missing values, leads
without activities and an empty log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.plain import plain_facts
from leadscore.features.facts import lead_facts
from leadscore.features.pieces import TEXT
from leadscore.pipelines.settings import load_settings
from leadscore.synthetic import generate_crm
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def crm():
    crm = generate_crm(300, seed=23)
    leads = crm.leads.copy()
    ids = leads["lead_id"].astype(str).to_numpy(dtype=object)
    ids[::7] = [f"lé-{i}-日本😀" for i in range(len(ids[::7]))]  # unicode ids
    renamed = dict(zip(crm.leads["lead_id"].astype(str), ids, strict=True))
    leads["lead_id"] = pd.array(ids, dtype=TEXT)
    acts = crm.activities.copy()
    acts["lead_id"] = pd.array(acts["lead_id"].astype(str).map(renamed), dtype=TEXT)
    acts.loc[acts.index[::11], "value"] = np.nan
    return leads, acts, load_settings(ROOT / "leadscore.yaml")


def _as_lists(frame: pd.DataFrame) -> dict[str, list]:
    return {c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame}


def _categorical(acts: pd.DataFrame, categories: pd.Series) -> pd.DataFrame:
    dtype = pd.CategoricalDtype(pd.Index(categories, dtype=TEXT))
    return acts.assign(lead_id=acts["lead_id"].astype(dtype))


@pytest.mark.parametrize("categories", ["partition", "reversed", "more", "shuffled"])
def test_categorical_ids_give_the_same_facts(crm, categories):
    leads, acts, settings = crm
    opened = leads.iloc[::2].reset_index(drop=True)  # the partition: some of the leads
    ids = opened["lead_id"]
    chosen = {
        "partition": ids,
        "reversed": ids[::-1],
        "more": pd.concat([ids, leads["lead_id"].iloc[1::2]]),
        "shuffled": ids.sample(frac=1, random_state=3),
    }[categories]
    as_of = acts["occurred_at"].max() + pd.Timedelta(days=1)
    display = settings.data.display.columns()
    mine = acts[acts["lead_id"].isin(set(ids))] if categories != "more" else acts
    got = lead_facts(opened, _categorical(mine, chosen), as_of, settings.features, display)
    text = lead_facts(opened, mine, as_of, settings.features, display)
    assert _as_lists(got) == _as_lists(text)
    want = plain_facts(opened, mine, as_of, settings.features, display)
    assert _as_lists(got) == _as_lists(want)
    assert got["timeline"].str.contains("日本|😀|é").sum() == 0  # ids are not in the text
    assert (got["timeline"] != "[]").sum() > 0


def test_an_empty_log_and_an_empty_partition(crm):
    leads, acts, settings = crm
    as_of = acts["occurred_at"].max()
    display = settings.data.display.columns()
    ids = leads["lead_id"].iloc[:5]
    empty = _categorical(acts.iloc[:0], ids)
    got = lead_facts(leads.iloc[:5], empty, as_of, settings.features, display)
    assert got["timeline"].tolist() == ["[]"] * 5
    assert got["last_activity"].isna().all()
    none = lead_facts(
        leads.iloc[:0], _categorical(acts, leads["lead_id"]), as_of, settings.features
    )
    assert len(none) == 0
