"""CSV exports opened by a real spreadsheet: hostile text opens as text, never as a formula.

Each file is converted to .xlsx by headless LibreOffice Calc (``soffice``, installed by
``.ci/libreoffice.sh`` from ``make test``) with formula evaluation on, and read back with
openpyxl. A control file written without the neutralisation shows that the same cells
*do* open as formulas, so the check can fail. The API's JSON and the JSONL export carry
the same values exactly. Without ``soffice`` the spreadsheet tests fail under
``CI=true`` and are skipped (with the reason) on a developer machine.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore.features.contract import QUARANTINE_COLUMNS
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
from leadscore.serving.export import (
    EXPORT_COLUMNS,
    neutralise_cell,
    write_csv_atomic,
    write_csv_chunks_atomic,
    write_scores_csv,
    write_scores_jsonl,
)
from leadscore.serving.store import SCORE_COLUMNS, ScoreStore, StoreConfig

AS_OF = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)
TOKEN = "s3cret-token"

CALC = "=cmd|' /C calc'!A0"
HOSTILE = {
    # lead_id, owner, segment of each row, best first
    "L-1": ("L-1", CALC, "Mid-Market"),
    CALC: (CALC, "ann", "+2+3"),
    "-2+3+cmd|' /C calc'!A0": ("-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "SMB"),
    "L-4": ("L-4", "\t=1+1", "\r=1+1"),
    "L-5": ("L-5", 'x",=1+1', "a;=1+1"),  # a quote and a separator cannot open a new cell
    "L-6": ("L-6", "b\t=1+1", 'c\n=HYPERLINK("http://x")'),
    "L-7": ("L-7", "\uff1d1+1", "  =1+1"),  # full-width '=', leading spaces
    "-42": ("-42", None, "Entreprise-\u00dcmlaut"),  # a plain number: not a formula
}
FIT = [-0.25, 0.5, -1.75, 0.0, -0.125, 2.5, -3.0, 1.0]
ENGAGEMENT = [-0.5, -0.05, 0.3, -2.0, 0.0, 0.75, -1.25, 0.2]
RULE_SCORE = [40.5, -3.25, 12.0, -0.5, 0.0, 7.75, -18.0, 3.0]  # unclipped points
# name, company, email of each row (the CRM's own, passed through data.display)
CONTACTS = [
    ('=HYPERLINK("http://evil.example","click")', "+1 555 0100", "-x@example.com"),
    ("Ada", "@SUM(1+1)", "ada@example.com"),
    ("  =1+1", "Acme, Inc.", "=1+1@example.com"),
    (None, None, None),
    ('Zoë "Z" Ng', "Ünïcode GmbH", "zoe@example.com"),
    ("Bo", "a;=1+1", "bo@example.com"),
    ("\t=1", "Corp", "x@example.com"),
    ("Max", "-42", "+max@example.com"),
]


def hostile_scores() -> pd.DataFrame:
    """A scores frame (the store's row shape) whose text cells are formula attacks."""
    n = len(HOSTILE)
    rows = [
        {
            "lead_id": lead,
            "owner": owner,
            "segment": segment,
            "probability": 0.912345678 - 0.1 * i,
            "score": round(90 - 10 * i),
            "grade": "ABCD"[min(3, i // 2)],
            "rank": i + 1,
            "percentile": round(100.0 * (n - i) / n, 4),
            "fit": FIT[i],
            "engagement": ENGAGEMENT[i],
            "rule_score": RULE_SCORE[i],
            "rule_grade": "B",
            "rule_rank": n - i,
            "name": CONTACTS[i][0],
            "company": CONTACTS[i][1],
            "email": CONTACTS[i][2],
            "record_id": f"00Q{i:012d}",
            "fit_score": 10 * i,
            "engagement_score": 90 - 10 * i,
            "cell": ("call_now", "nurture", "educate", "deprioritise")[i % 4],
            "last_activity": "pricing-page view",
            "last_activity_at": "2026-11-21T16:02:00Z",
            "rule_reasons": "[]",
            "attributes": "{}",
            "timeline": "[]",
            "reasons": json.dumps(
                [
                    {
                        "feature": "owner",
                        "text": f"Owner {owner}",
                        "direction": "+",
                        "contribution": 0.1,
                    },
                    {
                        "feature": "segment",
                        "text": f"{segment}",
                        "direction": "-",
                        "contribution": -0.05,
                    },
                ]
            ),
        }
        for i, (lead, owner, segment) in enumerate(HOSTILE.values())
    ]
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


@pytest.fixture
def store(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/s.db"))
    store.create()
    store.publish(hostile_scores(), model_version="7", as_of=AS_OF)
    yield store
    store.close()


# ------------------------------------------------------------------ a real spreadsheet


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the spreadsheet tests must run)")
    pytest.skip(reason)


def _soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        _missing("LibreOffice (soffice) is not installed: run `bash .ci/libreoffice.sh` as root")
    assert found is not None
    return found


def open_in_calc(paths: list[Path], tmp_path: Path, separator: str = ",") -> list:
    """Each CSV as LibreOffice Calc reads it (UTF-8, ``"`` quotes, formulas evaluated):
    openpyxl worksheets whose cells hold formulas as ``data_type == "f"``."""
    try:
        import openpyxl
    except ImportError:
        _missing("openpyxl is not installed: pip install -e '.[dev]'")
    soffice = _soffice()
    out = tmp_path / f"xlsx-{ord(separator)}"
    # CSV filter tokens: separator, quote char, UTF-8 (76), first line 1, column formats
    # (none), language (en-US 1033), quoted fields as text (false), detect special numbers
    # (true), save cell contents as shown, export formulas, remove spaces (false), ...,
    # evaluate formulas (true): the import a user gets by double-clicking the file.
    filter_options = f"CSV:{ord(separator)},34,76,1,,1033,false,true,true,false,false,-1,true"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
            "--headless",
            "--norestore",
            f"--infilter={filter_options}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out),
            *map(str, paths),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return [openpyxl.load_workbook(out / f"{p.stem}.xlsx").active for p in paths]


def _cells(sheet) -> list:
    return [cell for row in sheet.iter_rows() for cell in row]


def test_hostile_cells_open_as_text_and_numbers_stay_numbers(store, tmp_path):
    batch = store.read_batch()
    safe = write_scores_csv(batch, tmp_path / "scores.csv")
    quarantine = write_csv_atomic(
        pd.DataFrame(
            {
                "source": ["leads", "leads"],
                "row": [3, 9],
                "lead_id": [CALC, "@SUM(1)"],
                "reason": ["-employees '=1+1' is not a number", "+owner too long"],
            },
            columns=list(QUARANTINE_COLUMNS),
        ),
        tmp_path / "quarantine.csv",
    )
    # the control: the same cells written as they are, by Python's csv module
    raw = tmp_path / "raw.csv"
    with open(raw, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["lead_id", "owner"], [CALC, "@SUM(1+1)"]])

    scores_sheet, quarantine_sheet, raw_sheet = open_in_calc([safe, quarantine, raw], tmp_path)

    assert raw_sheet["A2"].data_type == "f"  # Calc does run an unneutralised cell
    for sheet in (scores_sheet, quarantine_sheet):
        formulas = [(c.coordinate, c.value) for c in _cells(sheet) if c.data_type == "f"]
        assert formulas == []
    header = [c.value for c in scores_sheet[1]]
    assert header == EXPORT_COLUMNS and scores_sheet.max_column == len(EXPORT_COLUMNS)
    assert scores_sheet.max_row == len(HOSTILE) + 1  # no value opened a new row or cell
    col = {name: i for i, name in enumerate(header)}
    rows = [[c.value for c in row] for row in scores_sheet.iter_rows(min_row=2)]
    for row, given_row in zip(rows, HOSTILE.values(), strict=True):
        for name, given in zip(("lead_id", "owner", "segment"), given_row, strict=True):
            if given is None or given == "-42":
                continue
            # text, as written, with its markers (Calc turns a CR in a cell into LF)
            expected = neutralise_cell(given).replace("\r", "\n")
            assert row[col[name]] == expected, (name, given, row[col[name]])
    assert rows[1][col["lead_id"]] == "'" + CALC
    assert rows[2][col["owner"]] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows[3][col["segment"]] == "'\n'=1+1"  # each line guarded
    assert rows[4][col["owner"]] == "x\",'=1+1" and rows[4][col["segment"]] == "a;'=1+1"
    assert rows[5][col["segment"]] == 'c\n\'=HYPERLINK("http://x")'
    assert rows[6][col["owner"]] == "'\uff1d1+1" and rows[6][col["segment"]] == "'  =1+1"
    assert [r[col["lead_id"]] for r in rows][-1] == -42  # a plain number, not a formula
    # negative numbers are numbers, unmangled
    assert [r[col["rule_score"]] for r in rows] == RULE_SCORE
    assert [r[col["score"]] for r in rows] == [90, 80, 70, 60, 50, 40, 30, 20]
    assert [r[col["fit_score"]] for r in rows] == [10 * i for i in range(len(HOSTILE))]
    # the probability rounded to 4 places, exactly as a spreadsheet reads it
    expected = [round(p, 4) for p in batch["probability"]]
    assert [r[col["probability"]] for r in rows] == expected and expected[0] == 0.9123
    # the CRM's own names, companies and emails: hostile ones open as text too
    for row, given_row in zip(rows, CONTACTS, strict=True):
        for name, given in zip(("name", "company", "email"), given_row, strict=True):
            if given is None or given == "-42":
                assert row[col[name]] == (None if given is None else -42), (name, given)
                continue
            assert row[col[name]] == neutralise_cell(given), (name, given, row[col[name]])
    assert rows[0][col["name"]] == "'" + CONTACTS[0][0]
    assert rows[0][col["company"]] == "'+1 555 0100"
    # the reasons as short text columns, strongest first, the marker at the end
    assert rows[0][col["reason_1"]] == f"Owner {CALC} (+)"
    assert rows[0][col["reason_2"]] == "Mid-Market (-)" and rows[0][col["reason_3"]] is None
    assert rows[4][col["reason_2"]] == "a;'=1+1 (-)"  # guarded inside the cell too
    quarantine_rows = [[c.value for c in row] for row in quarantine_sheet.iter_rows(min_row=2)]
    assert quarantine_rows == [
        ["leads", 3, "'" + CALC, "'-employees '=1+1' is not a number"],
        ["leads", 9, "'@SUM(1)", "'+owner too long"],
    ]


def test_the_excel_byte_order_mark_is_read_as_one(store, tmp_path):
    """``output.csv_bom``: the file starts with the UTF-8 mark only when asked; a
    spreadsheet reads the mark as the encoding, not as part of the first header."""
    batch = store.read_batch()
    plain = write_scores_csv(batch, tmp_path / "plain.csv")
    marked = write_scores_csv(batch, tmp_path / "excel.csv", bom=True)
    assert plain.read_bytes()[:1] == b'"' and marked.read_bytes()[:4] == b'\xef\xbb\xbf"'
    plain_sheet, marked_sheet = open_in_calc([plain, marked], tmp_path)
    assert [c.value for c in marked_sheet[1]] == EXPORT_COLUMNS
    values = [[c.value for c in row] for row in marked_sheet.iter_rows()]
    assert values == [[c.value for c in row] for row in plain_sheet.iter_rows()]
    assert values[5][EXPORT_COLUMNS.index("name")] == 'Zoë "Z" Ng'  # accents and quotes kept


@pytest.mark.parametrize("separator", [";", "\t"])
def test_opened_with_another_separator_no_piece_runs(store, tmp_path, separator):
    """Excel splits on ``;`` in many locales: then a ``;`` (or a tab, or a line break a
    misplaced quote exposes) inside a value starts a cell. The rows are mangled, as any
    comma file opened that way is, but no piece of a value opens as a formula; written
    without the inner markers, one does."""
    safe = write_scores_csv(store.read_batch(), tmp_path / "scores.csv")
    raw = tmp_path / "raw.csv"
    with open(raw, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["owner"], ["'a;=1+1"], ["'b\t=1+1"]])
    sheet, control = open_in_calc([safe, raw], tmp_path, separator)
    formulas = [(c.coordinate, c.value) for c in _cells(sheet) if c.data_type == "f"]
    assert formulas == []
    assert [c.coordinate for c in _cells(control) if c.data_type == "f"] == [
        "B2" if separator == ";" else "B3"
    ]


# ------------------------------------------------------------------ the rule, by itself


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t'=1"),  # a line of its own too
        ("\r=1", "'\r'=1"),  # a line of its own too
        ("\n=1", "'\n'=1"),  # a line of its own too
        ("  =1", "'  =1"),
        ("\uff1d1", "'\uff1d1"),
        ("-", "'-"),
        ("-42", "-42"),  # plain numbers are read as numbers, never run
        ("+1.5e3", "+1.5e3"),
        ("-0.42", "-0.42"),
        ("a=1", "a=1"),  # inside a cell only where a separator could start a new one:
        ("a;=1", "a;'=1"),
        ("a, -b,+c", "a, '-b,'+c"),
        ('x",=1', "x\",'=1"),
        ('x; "=1', "x; \"'=1"),
        ("x\n=1", "x\n'=1"),
        ("x\t@y", "x\t'@y"),
        ("a - b; c (-)", "a - b; c (-)"),  # the reasons' own form is left as it is
        (
            '[{"direction": "-", "contribution": -0.2}]',
            '[{"direction": "-", "contribution": -0.2}]',
        ),
        ("'=1", "'=1"),  # already text: not prefixed twice
        ("", ""),
        ("Ümlaut", "Ümlaut"),
    ],
)
def test_neutralise_cell(value, written):
    assert neutralise_cell(value) == written


def test_every_chunk_is_neutralised_and_numbers_are_not_quoted(tmp_path):
    chunks = [
        pd.DataFrame({"lead_id": ["a", "b"], "fit": [-0.5, 1.0], "owner": [None, None]}),
        pd.DataFrame({"lead_id": ["=1+1", "-7"], "fit": [-2.0, 0.25], "owner": ["@x", "y"]}),
        pd.DataFrame({"lead_id": pd.Categorical(["+c"]), "fit": [-1.0], "owner": ["-z"]}),
    ]
    path = write_csv_chunks_atomic(chunks, tmp_path / "c.csv")
    assert path.read_text(encoding="utf-8").splitlines() == [
        '"lead_id","fit","owner"',
        '"a",-0.5,',
        '"b",1,',
        '"\'=1+1",-2,"\'@x"',
        '"-7",0.25,"y"',
        '"\'+c",-1,"\'-z"',
    ]


# ------------------------------------------------------------------ JSON stays exact


def test_the_api_and_the_jsonl_export_carry_the_values_exactly(store, tmp_path, monkeypatch):
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    app = create_app(store.config, ApiConfig(tokens=[TOKEN], page_size=50, max_page_size=50))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        items = client.get("/v1/scores", headers=auth).json()["items"]
        detail = client.get("/v1/leads/L-1", headers=auth).json()["current"]
    assert [(i["lead_id"], i["owner"], i["segment"]) for i in items] == list(HOSTILE.values())
    assert [i["fit"] for i in items] == FIT
    assert detail["owner"] == CALC and detail["fit"] == -0.25
    assert detail["reasons"][0]["text"] == f"Owner {CALC}"

    lines = write_scores_jsonl(store.read_batch(), tmp_path / "s.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in lines.splitlines()]
    assert [(r["lead_id"], r["owner"], r["segment"]) for r in rows] == list(HOSTILE.values())
    assert rows[0]["reasons"][0]["text"] == f"Owner {CALC}"
