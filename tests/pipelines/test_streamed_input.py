"""The score flow's input read in chunks equals the whole-file load, row for row.

``pipelines.partitioned.stream_crm`` reads the activity log ``data.chunk_rows`` rows at a
time, checks each chunk with the contract and appends the clean rows of open leads to
partition files. These tests pin that chunking changes nothing a user can see: the same
clean activities per open lead, the same quarantined rows with the same reasons and the
same row numbers (counted in the source, not in the chunk), the same export day, the
same counts; and that the bad-row limit, a rule about the whole log, still stops a run
whose bad rows are spread over chunks that each look acceptable on their own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from leadscore.features.contract import ContractError
from leadscore.pipelines.partitioned import stream_crm
from leadscore.pipelines.settings import Settings
from leadscore.pipelines.sources import load_crm
from leadscore.synthetic import generate_crm
from tests.conftest import two_file_settings


def _write(tmp_path: Path, activities: pd.DataFrame, leads: pd.DataFrame) -> dict[str, Path]:
    """The CRM as CSV text files, timestamps as ISO strings (what an export looks like)."""
    paths = {"leads": tmp_path / "leads.csv", "activities": tmp_path / "activities.csv"}
    for frame, name in ((leads, "leads"), (activities, "activities")):
        out = frame.copy()
        for column in out.select_dtypes("datetimetz"):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(paths[name], index=False)
    return paths


def _settings(paths: dict[str, Path], **data: object) -> Settings:
    return two_file_settings(paths, **data)


@pytest.fixture(scope="module")
def crm():
    """A small CRM whose activity log has bad rows scattered through it."""
    crm = generate_crm(400, seed=31)
    acts = crm.activities.copy()
    acts["occurred_at"] = acts["occurred_at"].astype(object)
    rng = np.random.default_rng(5)
    bad = rng.choice(len(acts), size=40, replace=False)
    acts.loc[bad[:15], "lead_id"] = "NO-SUCH-LEAD"
    acts.loc[bad[15:30], "occurred_at"] = "not a date"
    acts.loc[bad[30:], "activity_type"] = None
    leads = crm.leads.copy()
    leads["created_at"] = leads["created_at"].astype(object)
    leads.loc[350, "lead_id"] = leads.loc[3, "lead_id"]  # a duplicate chunks apart
    leads.loc[120, "status"] = "maybe"
    leads.loc[250, "created_at"] = "yesterday-ish"
    return leads, acts


@pytest.mark.slow
@pytest.mark.parametrize(("chunk_rows", "partition_rows"), [(100, 13), (3000, 97), (10**7, 10**6)])
def test_chunks_and_partitions_change_nothing(crm, tmp_path, chunk_rows, partition_rows):
    leads, acts = crm
    paths = _write(tmp_path, acts, leads)
    settings = _settings(paths, chunk_rows=chunk_rows)
    settings = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"partition_rows": partition_rows})}
    )
    whole = load_crm(settings)
    streamed = stream_crm(settings, tmp_path)

    assert streamed.n_activities_in == whole.n_activities_in == len(acts)
    label = str(paths["leads"])
    assert streamed.n_leads_in == whole.n_leads_in == len(leads)
    assert streamed.end == whole.end
    assert streamed.unknown_activity_types == whole.unknown_activity_types
    key = ["source", "row"]
    pdt.assert_frame_equal(
        streamed.quarantine.sort_values(key).reset_index(drop=True).astype(str),
        whole.quarantine.sort_values(key).reset_index(drop=True).astype(str),
    )
    assert whole.quarantined(label) == streamed.quarantined(label) == 4
    assert set(whole.quarantine["reason"]) >= {
        "lead_id is duplicated",
        "created_at is not a timestamp: 'yesterday-ish'",
    }
    # every planted activity fault, plus the activities of the 4 quarantined leads
    assert whole.quarantined(str(paths["activities"])) > 40
    assert streamed.n_clean_leads == len(whole.leads) == len(leads) - 4

    open_ids = whole.leads.loc[whole.leads["status"] == "open", "lead_id"]
    loaded = [p.load() for p in streamed.parts]
    assert sorted(pd.concat([p.leads for p in loaded])["lead_id"]) == sorted(open_ids)
    assert [len(p) for p in streamed.parts] == [len(p.leads) for p in loaded]
    assert len(streamed.parts) == max(1, -(-len(open_ids) // partition_rows))
    for part in loaded:  # each partition holds exactly its own leads' activities
        assert set(part.activities["lead_id"].astype(str)) <= set(part.leads["lead_id"])
    got = pd.concat([p.activities for p in loaded]).astype({"lead_id": str})
    expected = whole.activities[whole.activities["lead_id"].isin(open_ids)]
    columns = ["lead_id", "occurred_at", "activity_type", "value"]
    pdt.assert_frame_equal(
        got.sort_values(columns).reset_index(drop=True)[columns],
        expected.sort_values(columns).reset_index(drop=True)[columns],
        check_dtype=False,
    )


@pytest.mark.slow
def test_the_bad_row_limit_counts_the_whole_log(crm, tmp_path):
    """30% bad rows in total, spread evenly: every chunk is checked alone, the limit is not."""
    leads, acts = crm
    acts = acts.copy()
    acts.loc[acts.index % 10 < 3, "lead_id"] = "NO-SUCH-LEAD"
    paths = _write(tmp_path, acts, leads)
    settings = _settings(paths, chunk_rows=1000)
    with pytest.raises(ContractError, match=r"activities.csv.*rows \(3\d%\) break the data"):
        stream_crm(settings, tmp_path)
    with pytest.raises(ContractError, match=r"rows \(3\d%\) break the data contract"):
        load_crm(settings)  # the same rule, the same verdict, as the whole-file load
