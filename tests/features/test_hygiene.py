"""features/hygiene.py: the helpers behind the hostile-export corpus, one by one."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.features import hygiene
from leadscore.features.validation import ContractError


def test_an_excerpt_is_quoted_escaped_and_cut_at_40_characters():
    assert hygiene.excerpt("software") == "'software'"
    assert hygiene.excerpt("a\x00b") == "'a\\x00b'"
    assert hygiene.excerpt("y" * 41) == "'" + "y" * 40 + "…'"
    assert hygiene.excerpt("y" * 40) == "'" + "y" * 40 + "'"


def test_a_header_list_in_a_message_is_bounded():
    names = [f"c{i}" for i in range(20)]
    assert hygiene.header_names(names) == (
        "[" + ", ".join(f"'c{i}'" for i in range(12)) + ", … 8 more]"
    )


def test_consistent_day_first_dates_pass_and_a_mixed_column_names_its_lines():
    hygiene.check_date_order(
        pd.Series(["13/01/2026", "25/12/2025", "2026-01-05T10:00:00Z"]), "d", "f", lambda r: r
    )
    hygiene.check_date_order(pd.Series(["05/05/2026", None]), "d", "f", lambda r: r)
    mixed = pd.Series(["01/13/2026", "13/01/2026"], index=[7, 9])
    with pytest.raises(ContractError, match=r"line 19 '13/01/2026' is day-first, line 17"):
        hygiene.check_date_order(mixed, "d", "f", lambda r: r + 10)


def test_numbers_follow_the_csv_options_and_nothing_else():
    raw = pd.Series(["1.250,5", "12,0", "1,2,3", "7", None], dtype=object)
    got = hygiene.parse_numbers(raw, thousands=".", decimal=",")
    assert got.iloc[:2].tolist() == [1250.5, 12.0] and got.iloc[3] == 7.0
    assert got.iloc[2:5:2].isna().all()  # '1,2,3' is not a number; None stays missing
    assert hygiene.parse_numbers(pd.Series(["1,200"], dtype=object)).isna().all()
    assert "csv.thousands" in hygiene.number_reason("n", "1,200", None)


def test_respelled_activity_types_read_as_the_declared_one():
    types = pd.Series(["Email_Open", "email open", "EMAIL-OPEN", "page_view", "fax", None])
    out, changed, undeclared = hygiene.normalise_types(types, ["email_open", "page_view"])
    assert out.tolist()[:5] == ["email_open", "email_open", "email_open", "page_view", "fax"]
    assert changed == 3 and pd.isna(out.iloc[5])
    assert undeclared  # 'fax'; without it, every type is declared once respelled
    assert not hygiene.normalise_types(types.drop(4), ["email_open", "page_view"])[2]


def test_ids_equal_but_for_leading_zeros_share_a_key():
    ids = pd.Series(["0042", "42", "000", "L007", "0"], dtype="str")
    assert hygiene.id_keys(ids).tolist() == ["42", "42", "0", "L007", "0"]


def test_cells_over_the_cap_or_with_control_characters_get_a_reason():
    values = pd.Series(["ok", "z" * 11, "tab\tok", "bell\x07", None])
    reasons = hygiene.cell_faults(values, "col", 10)
    assert reasons.iloc[1] == (
        "col is 11 characters, over the limit of 10 (data.validation.max_cell_chars): 'zzzzzzzzzzz'"
    )
    assert reasons.iloc[3] == "col holds a control character (NUL or similar): 'bell\\x07'"
    assert reasons.iloc[[0, 2, 4]].isna().all()
