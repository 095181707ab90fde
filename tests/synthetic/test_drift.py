"""Changes injected into the synthetic world: each does what it says, and none changes nothing."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from leadscore.synthetic import SyntheticCRM, generate_crm
from leadscore.synthetic.drift import (
    BrokenPixel,
    Campaign,
    MixShift,
    NewSource,
    parse_change,
)
from leadscore.synthetic.export import export_as_of

N_LEADS = 3_000
SEED = 7
AT = pd.Timestamp("2026-05-01", tz="UTC")


def _digest(crm: SyntheticCRM) -> str:
    digest = hashlib.sha256()
    for frame in (crm.leads, crm.activities, crm.truth):
        digest.update(str(list(frame.dtypes.astype(str).items())).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _converted(leads: pd.DataFrame) -> float:
    return float((leads["status"] == "converted").mean())


@pytest.fixture(scope="module")
def base() -> SyntheticCRM:
    return generate_crm(N_LEADS, SEED)


def test_no_change_keeps_the_crm_byte_identical() -> None:
    # the digest of generate_crm(1500, 42) computed on the generator before changes existed
    before = "623d294257693a88cdc504d154a73bdbbcd0f90cbecec3d78f8a2f46d1cef083"
    assert _digest(generate_crm(1_500, 42)) == before
    assert _digest(generate_crm(1_500, 42, changes=())) == before


def test_new_source_takes_its_share_and_converts_more(base: SyntheticCRM) -> None:
    crm = generate_crm(N_LEADS, SEED, changes=[NewSource(AT, share=0.3, hazard_factor=3.0)])
    leads, after = crm.leads, crm.leads["created_at"] >= AT
    new = leads["lead_source"] == "ai_assistant"
    assert not new[~after].any()
    assert new[after].mean() == pytest.approx(0.3, abs=0.04)
    # hazard x3 (with competing loss): well above the other new leads'
    assert _converted(leads[new]) > 1.7 * _converted(leads[after & ~new])
    # before the date the world is untouched (blanks and owners are drawn afresh)
    for column in ("status", "closed_at", "lead_source"):
        assert leads.loc[~after, column].equals(base.leads.loc[~after, column])
    for column in ("fit_logit", "true_industry"):
        assert crm.truth.loc[~after.to_numpy(), column].equals(
            base.truth.loc[~after.to_numpy(), column]
        )


def test_mix_shift_draws_the_new_shares_and_fit_follows(base: SyntheticCRM) -> None:
    shares = {"1-10": 0.6, "11-50": 0.4}
    crm = generate_crm(N_LEADS, SEED, changes=[MixShift(AT, "company_size", shares)])
    after = crm.leads["created_at"] >= AT
    mix = crm.leads.loc[after, "company_size"].value_counts(normalize=True)
    assert set(mix.index) == {"1-10", "11-50"}
    assert mix["1-10"] == pytest.approx(0.6, abs=0.05)
    before_mix = base.leads.loc[~after, "company_size"].value_counts(normalize=True)
    assert crm.leads.loc[~after, "company_size"].value_counts(normalize=True).equals(before_mix)
    # small companies fit worse (FIT_EFFECT): hidden fit and conversion fall after the date
    fit_after = crm.truth.loc[after.to_numpy(), "fit_logit"].mean()
    assert fit_after < base.truth.loc[after.to_numpy(), "fit_logit"].mean() - 0.5
    assert _converted(crm.leads[after]) < 0.7 * _converted(base.leads[after])
    # firmographics follow the new size
    small = crm.leads[after & (crm.leads["company_size"] == "1-10")]["employees"].dropna()
    assert small.between(1, 10).all()


def test_campaign_surges_one_type_for_its_days(base: SyntheticCRM) -> None:
    change = Campaign(AT, "webinar_signup", days=14, rate=0.5)
    crm = generate_crm(N_LEADS, SEED, changes=[change])

    def signups(frame: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> int:
        at = frame["occurred_at"]
        return int(((frame["activity_type"] == "webinar_signup") & (at >= lo) & (at < hi)).sum())

    end = AT + pd.Timedelta(days=14)
    assert signups(crm.activities, AT, end) > 10 * signups(base.activities, AT, end)
    before = AT - pd.Timedelta(days=14)
    assert signups(crm.activities, before, AT) == signups(base.activities, before, AT)
    # other types in the window: no surge (they move only through engagement)
    others = crm.activities[crm.activities["activity_type"] != "webinar_signup"]
    base_others = base.activities[base.activities["activity_type"] != "webinar_signup"]
    window = lambda f: ((f["occurred_at"] >= AT) & (f["occurred_at"] < end)).sum()  # noqa: E731
    assert window(others) < 1.3 * window(base_others)


def test_broken_pixel_drops_the_type_from_the_log_only(base: SyntheticCRM) -> None:
    crm = generate_crm(N_LEADS, SEED, changes=[BrokenPixel(AT, "pricing_page_view")])
    pricing = crm.activities["activity_type"] == "pricing_page_view"
    assert not (pricing & (crm.activities["occurred_at"] >= AT)).any()
    base_pricing = base.activities["activity_type"] == "pricing_page_view"
    before = base.activities["occurred_at"] < AT
    assert pricing.sum() == (base_pricing & before).sum() > 0
    # the behaviour still happened: every lead's life is the one of the unchanged world
    assert crm.leads["status"].equals(base.leads["status"])
    assert crm.leads["closed_at"].equals(base.leads["closed_at"])
    assert len(crm.activities) == len(base.activities) - (base_pricing & ~before).sum()


def test_parse_change_reads_kind_and_options() -> None:
    change = parse_change("new_source:share=0.5,hazard_factor=2,name=chatbot", "2026-06-01")
    assert change == NewSource(pd.Timestamp("2026-06-01", tz="UTC"), "chatbot", 0.5, 2.0)
    assert parse_change("campaign:days=7", AT).days == 7
    with pytest.raises(ValueError, match="unknown change"):
        parse_change("meteor", AT)
    with pytest.raises(ValueError, match="unknown activity type"):
        parse_change("broken_pixel:activity_type=fax", AT)
    with pytest.raises(ValueError, match="new name"):
        parse_change("new_source:name=webinar", AT)


def test_export_as_of_reads_what_the_crm_knew_then(base: SyntheticCRM) -> None:
    cutoff = pd.Timestamp("2026-03-01", tz="UTC")
    seen = export_as_of(base, cutoff)
    assert (seen.leads["created_at"] < cutoff).all()
    assert len(seen.leads) == (base.leads["created_at"] < cutoff).sum()
    full = base.leads.set_index("lead_id").loc[seen.leads["lead_id"]]
    closed_later = (full["closed_at"] >= cutoff).to_numpy()
    assert closed_later.sum() > 50
    assert (seen.leads.loc[closed_later, "status"] == "open").all()
    assert seen.leads.loc[closed_later, "closed_at"].isna().all()
    closed_before = (full["closed_at"] < cutoff).to_numpy()
    assert (seen.leads.loc[closed_before, "status"] == full["status"][closed_before].values).all()
    assert (seen.activities["occurred_at"] < cutoff).all()
    assert seen.activities["lead_id"].isin(seen.leads["lead_id"]).all()
    expected = (base.activities["occurred_at"] < cutoff).sum()
    assert len(seen.activities) == expected
    assert seen.truth["lead_id"].tolist() == seen.leads["lead_id"].tolist()
    # the column types the reader expects stay as generated
    assert seen.leads.dtypes.equals(base.leads.dtypes)
    assert np.array_equal(seen.leads["lead_id"], base.leads["lead_id"][: len(seen.leads)])
