"""The synthetic CRM's contact names, companies and e-mails: plausible, deterministic, and
drawn from a stream of their own, so the rest of the CRM is exactly what it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.synthetic import contacts, generate_crm
from leadscore.synthetic import generator as generator_module
from leadscore.synthetic.vocabulary import COUNTRIES, INDUSTRIES

CONTACT_COLUMNS = ["contact_name", "company_name", "email"]


@pytest.fixture(scope="module")
def crm():
    return generate_crm(1_500, 3, days=200)


def test_contacts_leave_every_other_column_as_it_was(crm, monkeypatch):
    def constant(seed: int, country: np.ndarray, industry: np.ndarray) -> dict[str, np.ndarray]:
        return {c: np.full(len(country), "x", dtype=object) for c in CONTACT_COLUMNS}

    monkeypatch.setattr(generator_module, "contact_columns", constant)
    without = generate_crm(1_500, 3, days=200)
    others = [c for c in crm.leads.columns if c not in CONTACT_COLUMNS]
    pd.testing.assert_frame_equal(crm.leads[others], without.leads[others])
    pd.testing.assert_frame_equal(crm.activities, without.activities)
    pd.testing.assert_frame_equal(crm.truth, without.truth)
    assert (without.leads["email"] == "x").all() and not (crm.leads["email"] == "x").any()


def test_contacts_are_deterministic_and_plausible(crm):
    again = generate_crm(1_500, 3, days=200)
    pd.testing.assert_frame_equal(crm.leads[CONTACT_COLUMNS], again.leads[CONTACT_COLUMNS])
    other = generate_crm(1_500, 4, days=200)
    assert (crm.leads["email"] != other.leads["email"]).mean() > 0.9
    leads = crm.leads
    assert leads[CONTACT_COLUMNS].notna().all().all()
    assert leads["contact_name"].str.fullmatch(r"\S+ \S.*").all()
    assert leads["email"].str.fullmatch(r"[a-z]+(\.[a-z]+)+@[a-z]+(\.[a-z]+)+").all()
    personal = leads["email"].str.endswith(contacts.FREE_MAIL)
    assert 0.08 < personal.mean() < 0.16
    # a company's e-mail domain is its name; the name ends in its country's legal form
    first = leads.iloc[np.flatnonzero(~personal.to_numpy())[0]]
    domain = first["email"].split("@")[1].split(".")[0]
    assert contacts.ascii_slug(first["company_name"]).startswith(domain)
    assert leads["contact_name"].nunique() > 500 and leads["company_name"].nunique() > 500


def test_names_follow_the_country_and_companies_the_industry():
    country = np.array([COUNTRIES.index("DE")] * 50 + [COUNTRIES.index("BR")] * 50)
    industry = np.array(
        [INDUSTRIES.index("fintech")] * 50 + [INDUSTRIES.index("public_sector")] * 50
    )
    out = contacts.contact_columns(7, country, industry)
    firsts = [name.split(" ")[0] for name in out["contact_name"]]
    assert set(firsts[:50]) <= set(contacts.FIRST_NAMES["DE"])
    assert set(firsts[50:]) <= set(contacts.FIRST_NAMES["BR"])
    assert all(c.endswith(" GmbH") for c in out["company_name"][:50])
    assert all(
        c.split(" ")[-1] in contacts.COMPANY_WORDS["public_sector"]
        for c in out["company_name"][50:]
    )
    company_mail = [e for e in out["email"][:50] if not e.endswith(contacts.FREE_MAIL)]
    assert company_mail and all(e.endswith(".de") for e in company_mail)
    assert contacts.ascii_slug("Jürgen Müller", ".") == "jurgen.muller"
    assert contacts.ascii_slug("van den Berg", ".") == "van.den.berg"
