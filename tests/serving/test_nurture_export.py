"""The nurture list's CSV (serving/nurture_export.py) from a real SQLite store.

Only the current batch's leads in the nurture cells, email first, every lead listed
(one without an email too, and counted), numbers as numbers, formula cells neutralised,
the file replaced atomically (a failure half-way leaves the old file and no temporary
file), read a page at a time; and `leadscore export --list nurture`.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.pipelines.cli import app
from leadscore.serving import nurture_export
from leadscore.serving.nurture_export import (
    NURTURE_COLUMNS,
    export_nurture,
    write_nurture_csv,
)
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.conftest import ROOT
from tests.serving.test_store import make_scores

AS_OF = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)
CELLS = ["nurture", "educate"]
CELL_OF = ["call_now", "nurture", "educate", "nurture", "deprioritise", "educate", "nurture"]


def _scores(seed: int = 0) -> pd.DataFrame:
    """Seven leads, ranks 1..7: cells as CELL_OF, a step for some, hostile text in one."""
    frame = make_scores(7, seed=seed).sort_values("rank").reset_index(drop=True)
    frame["cell"] = CELL_OF
    frame["next_step"] = [None, "webinar attended", None, "email click", None, "page view", None]
    frame["next_step_gain"] = [None, 0.0412, None, 0.0057, None, 0.1203, None]
    frame.loc[1, "email"] = None  # listed all the same, counted
    frame.loc[3, "name"] = '=HYPERLINK("http://evil.example","click")'
    frame.loc[3, "email"] = "-x@example.com"
    frame.loc[5, "company"] = "a;=1+1"
    return frame


@pytest.fixture
def store(tmp_path: Path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    yield store
    store.close()


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_current_batch_nurture_leads_email_first(store, tmp_path: Path):
    store.publish(_scores(seed=1), model_version="6", as_of=AS_OF)  # superseded below
    info = store.publish(_scores(seed=2), model_version="7", as_of=AS_OF)
    written = export_nurture(store, tmp_path / "out" / "nurture.csv", CELLS)
    assert written.batch_id == info.batch_id
    assert (written.n_leads, written.n_without_email, written.n_with_step) == (5, 1, 3)
    assert "5 nurture leads" in written.describe() and "1 without an email" in written.describe()
    text = written.path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(f'"{c}"' for c in NURTURE_COLUMNS)
    assert NURTURE_COLUMNS[0] == "email"
    rows = _read(written.path)
    scores = _scores(seed=2)
    listed = scores[scores["cell"].isin(CELLS)]
    assert [r["lead_id"] for r in rows] == listed["lead_id"].tolist()  # best first
    assert {r["batch_id"] for r in rows} == {info.batch_id}
    assert {r["scored_at"] for r in rows} == {"2026-11-22T03:15:00Z"}
    first = rows[0]  # rank 2: no email, a step
    assert first["email"] == "" and first["cell"] == "nurture"
    assert first["next_step"] == "webinar attended" and first["next_step_gain"] == "0.0412"
    assert first["score"] == str(listed["score"].iloc[0])  # a whole number, not 82.0
    assert first["reason_1"].endswith("(+)") and first["reason_2"].endswith("(-)")
    assert first["reason_3"] == ""
    no_step = rows[1]  # rank 3: educate, no step: empty cells
    assert (no_step["cell"], no_step["next_step"], no_step["next_step_gain"]) == ("educate", "", "")
    # numbers are written unquoted, text quoted
    line = text.splitlines()[1]
    assert ",0.0412," in line and '"webinar attended"' in line


def test_formula_cells_open_as_text(store, tmp_path: Path):
    store.publish(_scores(), model_version="7", as_of=AS_OF)
    rows = {r["lead_id"]: r for r in _read(write_nurture_csv(store, tmp_path / "n.csv", CELLS))}
    scores = _scores().set_index("rank")
    hostile, shop = rows[scores.loc[4, "lead_id"]], rows[scores.loc[6, "lead_id"]]
    assert hostile["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert hostile["email"] == "'-x@example.com"
    assert shop["company"] == "a;'=1+1"


def test_pages_of_the_store_make_the_same_file(store, tmp_path: Path, monkeypatch):
    store.publish(_scores(), model_version="7", as_of=AS_OF)
    whole = write_nurture_csv(store, tmp_path / "whole.csv", CELLS, bom=True).read_bytes()
    monkeypatch.setattr(nurture_export, "PAGE_ROWS", 2)
    paged = write_nurture_csv(store, tmp_path / "paged.csv", CELLS, bom=True).read_bytes()
    assert paged == whole and whole.startswith(b"\xef\xbb\xbf")


def test_a_failure_half_way_leaves_the_old_file(store, tmp_path: Path, monkeypatch):
    store.publish(_scores(), model_version="7", as_of=AS_OF)
    path = tmp_path / "nurture.csv"
    path.write_text("the old list\n", encoding="utf-8")
    monkeypatch.setattr(nurture_export, "PAGE_ROWS", 2)
    real = store.page
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        if len(calls) > 1:
            raise OSError("the store went away")
        return real(**kwargs)

    monkeypatch.setattr(store, "page", failing)
    with pytest.raises(OSError, match="went away"):
        write_nurture_csv(store, path, CELLS)
    assert path.read_text(encoding="utf-8") == "the old list\n"
    assert not list(tmp_path.glob(".nurture.csv*"))  # no temporary file left behind


def test_an_empty_list_is_a_header_and_bad_input_is_refused(store, tmp_path: Path):
    with pytest.raises(LookupError, match="no scoring batch"):
        write_nurture_csv(store, tmp_path / "n.csv", CELLS)
    store.publish(_scores().assign(cell="call_now"), model_version="7", as_of=AS_OF)
    written = export_nurture(store, tmp_path / "n.csv", CELLS)
    assert written.n_leads == 0
    assert written.path.read_text(encoding="utf-8").splitlines() == [
        ",".join(f'"{c}"' for c in NURTURE_COLUMNS)
    ]
    with pytest.raises(ValueError, match="not quadrant cells"):
        write_nurture_csv(store, tmp_path / "n.csv", ["later"])


def test_the_cli_writes_the_nurture_list(store, tmp_path: Path):
    store.publish(_scores(), model_version="7", as_of=AS_OF)
    config = tmp_path / "leadscore.yaml"
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text(encoding="utf-8"))
    raw["store"]["url"] = str(store.engine.url)
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    out = tmp_path / "list.csv"
    ran = CliRunner().invoke(
        app, ["export", "--list", "nurture", "--out", str(out), "--config", str(config)]
    )
    assert ran.exit_code == 0, ran.output
    assert "5 nurture leads" in ran.output
    assert len(_read(out)) == 5
    default = CliRunner().invoke(app, ["export", "--list", "nurture", "--config", str(config)])
    assert default.exit_code == 0, default.output
    assert len(_read(tmp_path / "data" / "scores" / "nurture.csv")) == 5  # output.nurture_csv
    wrong = CliRunner().invoke(app, ["export", "--list", "calls", "--config", str(config)])
    assert wrong.exit_code != 0 and "--list must be scores or nurture" in wrong.output
