"""The leakage sniffer: planted leaks in the synthetic CRM are flagged with the right kind,
its honest attributes are not; on the bank data the call duration is, and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import LeakageConfig
from leadscore.features.leakage import KINDS, Suspect, sniff
from leadscore.features.separation import out_of_fold_rate, roc_auc
from leadscore.synthetic import generate_crm
from tests.conftest import shared_file

CONTRACT = ["lead_id", "status", "created_at", "closed_at"]


@pytest.fixture(scope="module")
def closed_crm() -> pd.DataFrame:
    leads = generate_crm(3000, 5).leads
    return leads[leads["status"] != "open"].reset_index(drop=True)


def _planted(closed: pd.DataFrame) -> pd.DataFrame:
    """The CRM's honest columns plus four leaks a sales team fills in after the outcome."""
    rng = np.random.default_rng(0)
    n = len(closed)
    won = (closed["status"] == "converted").to_numpy()
    notes = np.where(won, "Closed Won - contract signed", "closed lost: no budget")
    chatter = rng.choice(["call back next week", "sent brochure", "left voicemail"], n)
    frame = closed.drop(columns=CONTRACT)
    frame["deal_stage_notes"] = np.where(rng.random(n) < 0.4, chatter, notes)
    frame["close_value"] = np.where(won, rng.gamma(2.0, 5000.0, n), np.nan)
    frame["last_touch_at"] = closed["closed_at"] + pd.to_timedelta(
        rng.integers(3600, 30 * 86400, n), unit="s"
    )
    frame["qualified"] = np.where(rng.random(n) < 0.05, ~won, won).astype(int)
    return frame


def _kinds(suspects: list[Suspect]) -> set[tuple[str, str]]:
    return {(s.column, s.kind) for s in suspects}


def test_planted_leaks_are_flagged_with_their_kind_and_honest_columns_are_not(closed_crm):
    converted = (closed_crm["status"] == "converted").astype(int)
    suspects = sniff(_planted(closed_crm), converted, closed_at=closed_crm["closed_at"])
    assert _kinds(suspects) == {
        ("deal_stage_notes", "outcome_words"),
        ("deal_stage_notes", "alone_predicts"),
        ("close_value", "missing_tracks_outcome"),
        ("close_value", "alone_predicts"),
        ("last_touch_at", "after_close"),
        ("qualified", "alone_predicts"),
    }
    by = {(s.column, s.kind): s for s in suspects}
    assert by[("close_value", "missing_tracks_outcome")].strength == pytest.approx(1.0)
    assert by[("last_touch_at", "after_close")].strength == pytest.approx(1.0)
    assert 0.92 < by[("qualified", "alone_predicts")].strength < 0.97  # 5% of labels flipped
    assert "'won'" in by[("deal_stage_notes", "outcome_words")].reason
    assert all(s.kind in KINDS for s in suspects)
    assert [s.strength for s in suspects] == sorted((s.strength for s in suspects), reverse=True)


def test_ignored_columns_and_a_disabled_sniffer_report_nothing(closed_crm):
    converted = (closed_crm["status"] == "converted").astype(int)
    frame = _planted(closed_crm)
    quiet = LeakageConfig(ignore=["deal_stage_notes", "close_value", "last_touch_at", "qualified"])
    assert sniff(frame, converted, closed_at=closed_crm["closed_at"], config=quiet) == []
    assert sniff(frame, converted, config=LeakageConfig(enabled=False)) == []


def test_bank_call_duration_is_flagged_and_nothing_else():
    bank = pd.read_csv(shared_file("bank-marketing", "bank-additional-full.csv"), sep=";")
    converted = (bank.pop("y") == "yes").astype(int)
    suspects = sniff(bank, converted, outcome_words=["yes", "no"])
    assert _kinds(suspects) == {("duration", "alone_predicts")}
    assert 0.80 < suspects[0].strength < 0.84


def test_an_id_like_column_does_not_flag_itself_by_memorising_its_rows():
    rng = np.random.default_rng(1)
    y = (rng.random(5000) < 0.2).astype(float)
    ids = np.arange(5000)
    assert roc_auc(out_of_fold_rate(ids, y, seed=3), y) == pytest.approx(0.5)
    frame = pd.DataFrame({"ref": [f"R{i}" for i in ids], "n": ids})
    assert sniff(frame, y) == []


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5


def test_the_contract_names_are_the_contracts():
    from leadscore.features import contract, leakage

    assert set(leakage.CONTRACT_COLUMNS) == set(contract.LEAD_REQUIRED)
    assert (leakage.CONVERTED, leakage.LOST) == (contract.CONVERTED, contract.LOST)


def test_dates_written_as_text_are_read_day_first_when_only_that_reads():
    rng = np.random.default_rng(2)
    n = 600
    won = rng.random(n) < 0.3
    closed = pd.Timestamp("2018-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 300 * 86400, n), unit="s"
    )
    created = closed - pd.to_timedelta(rng.integers(1, 60, n), unit="D")
    frame = pd.DataFrame(
        {
            # Olist's spelling: dd-mm-YYYY HH:MM, the deal's own won date: at the close
            "won_date": closed.strftime("%d-%m-%Y %H:%M"),
            "first_contact_date": created.strftime("%d-%m-%Y"),  # honest: before the close
        }
    )
    suspects = sniff(frame, won.astype(int), closed_at=pd.Series(closed))
    assert _kinds(suspects) == {("won_date", "after_close")}
    assert suspects[0].strength == 1.0


def test_a_sample_of_a_larger_frame_finds_the_same_leaks(closed_crm):
    """Above ``max_rows`` a seeded sample is read: rows, labels and close dates together."""
    converted = (closed_crm["status"] == "converted").astype(int)
    frame = _planted(closed_crm)
    sampled = LeakageConfig(max_rows=1000)
    assert len(frame) > 2 * sampled.max_rows
    full = sniff(frame, converted, closed_at=closed_crm["closed_at"])
    part = sniff(frame, converted, closed_at=closed_crm["closed_at"], config=sampled)
    assert _kinds(part) == _kinds(full)
    by = {(s.column, s.kind): s.strength for s in part}
    assert by[("last_touch_at", "after_close")] == 1.0  # close dates stayed with their rows
