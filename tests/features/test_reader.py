"""The contract reader: a user's columns onto the contract, and a table checked in parts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
import pytest

from leadscore.features.config import AttributeConfig, ValidationConfig
from leadscore.features.contract import ContractError
from leadscore.features.reader import ContractReader, PartsTally, conserved

NOW = pd.Timestamp("2026-06-01", tz="UTC")


@dataclass(frozen=True)
class Outcome:
    column: str = "Stage"
    converted: list[str] = field(default_factory=lambda: ["Closed Won"])
    lost: list[str] = field(default_factory=lambda: ["closed lost "])
    open: list[str] = field(default_factory=lambda: ["Working"])


def _export() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Id": ["007", "8", "9", "10"],
            "Created": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"],
            "Stage": ["Working", "CLOSED WON", "Closed Lost", "Stalled"],
            "closed_at": [None, "2026-02-01", "2026-02-02", None],
            "Gender": ["f", "m", "f", "m"],
        }
    )


READER = ContractReader(
    column_mapping={"Id": "lead_id", "Created": "created_at"},
    drop_columns=lambda columns: [c for c in columns if c == "Gender"],
    outcome=Outcome(),
    leads_source="crm.csv",
    validation=ValidationConfig(max_bad_row_share=1.0),
)


def test_an_export_is_renamed_stripped_and_its_outcome_mapped():
    reader = READER
    assert reader.id_column == "Id"
    frame = reader.onto_contract(_export())
    assert "Gender" not in frame.columns
    assert frame["status"].tolist() == ["open", "converted", "lost", "Stalled"]
    checked = reader.leads(_export(), NOW)
    assert checked.rows["lead_id"].tolist() == ["007", "8", "9"]  # ids stay text
    assert checked.quarantine[["row", "reason"]].to_numpy().tolist() == [
        [
            3,
            "Stage is 'Stalled': not listed under data.outcome (converted ['Closed Won'], "
            "lost ['closed lost '], open ['Working'])",
        ]
    ]
    with pytest.raises(ContractError, match=r"^crm.csv: outcome column 'Stage' missing"):
        reader.onto_contract(_export().drop(columns="Stage"))


def test_rows_without_an_id_are_numbered_from_one():
    reader = replace(READER, lead_id_from_row=True, column_mapping={"Created": "created_at"})
    assert reader.onto_contract(_export())["lead_id"].tolist() == [
        "row-1",
        "row-2",
        "row-3",
        "row-4",
    ]


def test_parts_number_rows_in_the_source_and_check_the_table_on_the_totals():
    reader = replace(READER, attributes=AttributeConfig(numeric=["size"]))
    raw = _export().assign(size=[None, None, None, 12.0])
    tally = PartsTally("crm.csv")
    for piece in (raw.iloc[:2], raw.iloc[2:]):
        rows = tally.next_rows(len(piece))
        tally.add(reader.leads(piece, NOW, rows=rows, table_rules=False), len(piece))
    assert (tally.n_in, tally.n_clean, tally.n_quarantined) == (4, 3, 1)
    assert tally.nulls == {"size": 3}
    quarantine = tally.close(ValidationConfig(max_bad_row_share=1.0))
    assert quarantine["row"].tolist() == [3]  # its position in the whole source
    with pytest.raises(ContractError, match=r"1 of 4 rows \(25%\) break the data contract"):
        tally.close(ValidationConfig(max_bad_row_share=0.2))
    with pytest.raises(ContractError, match=r"column 'size' is null in 75% of rows"):
        tally.close(ValidationConfig(max_bad_row_share=1.0, max_null_share=0.5))


def test_an_empty_source_and_a_lost_row_are_loud():
    with pytest.raises(ContractError, match=r"^log.csv: no rows"):
        PartsTally("log.csv").close(ValidationConfig())
    assert PartsTally("log.csv").close(ValidationConfig(), empty_ok=True).empty
    with pytest.raises(RuntimeError, match="row conservation broken: 5 in != 3 clean \\+ 1"):
        conserved("log.csv", 5, 3, 1)
