"""Concepts (features/concepts.py): which features make one fact, how it reads, and the
one rule that keeps a reason's sign from contradicting its concept's direction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from leadscore.features.concepts import lead_age_text, sign_allowed
from leadscore.features.config import ActivityType, AttributeConfig, ConceptGroup, FeatureConfig
from leadscore.features.registry import LIFECYCLE, build_registry
from leadscore.pipelines.settings import load_settings
from tests.conftest import ROOT


def _config(**extra) -> FeatureConfig:
    return FeatureConfig(
        attributes=AttributeConfig(
            categorical=["industry", "seniority", "department"],
            numeric=["employees"],
            labels={"employees": "employees"},
        ),
        activity_types={
            "pricing": ActivityType(
                label="pricing-page view", family="web", points=5, phrase="viewed the pricing page"
            ),
            "webinar": ActivityType(label="webinar sign-up", family="event", points=8),
            "unsubscribe": ActivityType(
                label="unsubscribe", family="email", points=-5, phrase="unsubscribed"
            ),
        },
        windows_days=[7, 30, 90],
        **extra,
    )


def test_every_feature_is_in_exactly_one_concept_of_the_shipped_config():
    registry = build_registry(load_settings(ROOT / "leadscore.yaml").features)
    concepts = registry.concepts()
    members = [f for c in concepts.values() for f in c.features]
    assert sorted(members) == sorted(registry.names)
    pricing = concepts["pricing_page_view"]
    assert pricing.features == (
        "n_pricing_page_view_7d",
        "n_pricing_page_view_30d",
        "n_pricing_page_view_90d",
        "decay_pricing_page_view",
        "days_since_pricing_page_view",
    )
    assert (pricing.direction, pricing.family, pricing.label) == (
        1,
        "engagement",
        "pricing-page view",
    )
    assert concepts["unsubscribe"].direction == -1 and concepts["other"].direction == 0
    assert concepts["activity"].features == (
        "days_since_last_activity",
        "days_since_last_high_intent",
        "decay_all_activity",
        "engagement_points",
    )
    assert concepts["activity"].direction == 1
    # lead age is a concept and a family of its own: no sub-score counts it as engagement
    assert concepts["lead_age"].features == ("lead_age_days",)
    assert concepts["lead_age"].family == LIFECYCLE == registry["lead_age_days"].family
    assert "lead_age_days" not in registry.names_of(family="engagement")
    # the demo's groups
    assert concepts["role"].features == ("seniority", "department")
    assert concepts["company"].features == ("industry", "company_size")
    assert {concepts[k].direction for k in ("role", "company", "employees", "lead_age")} == {0}


def test_without_groups_each_attribute_is_a_concept_worded_label_value():
    concepts = build_registry(_config()).concepts()
    industry, employees = concepts["industry"], concepts["employees"]
    assert industry.features == ("industry",) and industry.label == "industry"
    assert industry.text({"industry": "public_sector"}, 14) == "industry: public sector"
    assert employees.text({"employees": 1962.0}, 14) == "employees: 1,962"
    assert employees.text({"employees": 9.712}, 14) == "employees: 9.71"
    assert industry.text({"industry": None}, 14) == "industry: unknown industry"


def test_a_declared_group_is_one_concept_with_its_own_text():
    group = ConceptGroup(attributes=["seniority", "department"], text="{seniority} in {department}")
    concepts = build_registry(_config(concepts={"role": group})).concepts()
    role = concepts["role"]
    assert role.features == ("seniority", "department") and role.label == "role"
    assert "seniority" not in concepts and "department" not in concepts
    assert role.text({"seniority": "c_level", "department": "finance"}, 14) == "c level in finance"
    missing = role.text({"seniority": "director", "department": math.nan}, 14)
    assert missing == "director in unknown department"
    plain = ConceptGroup(attributes=["industry", "employees"])
    company = build_registry(_config(concepts={"company": plain})).concepts()["company"]
    assert company.text({"industry": "fintech", "employees": 250.0}, 14) == (
        "industry: fintech, employees: 250"
    )


@pytest.mark.parametrize(
    ("concepts", "message"),
    [
        ({"a": {"attributes": ["industry"]}, "b": {"attributes": ["industry"]}}, "more than one"),
        ({"x": {"attributes": ["industry"], "text": "{industry} {seniority}"}}, "not in its"),
    ],
)
def test_bad_groups_are_refused(concepts, message):
    with pytest.raises(ValidationError, match=message):
        _config(concepts=concepts)


def test_a_group_keeps_the_attributes_the_export_declares():
    """One config serves an export with fewer columns: the group covers what is there,
    worded 'label: value' when its text names a missing attribute."""
    group = ConceptGroup(attributes=["industry", "company_size"], text="{industry}, {company_size}")
    concepts = build_registry(_config(concepts={"company": group, "gone": {"attributes": ["x"]}}))
    company = concepts.concepts()["company"]
    assert company.features == ("industry",) and "gone" not in concepts.concepts()
    assert company.text({"industry": "fintech"}, 14) == "industry: fintech"


def test_activity_texts_state_the_leads_own_facts():
    concepts = build_registry(_config()).concepts()
    pricing, webinar, unsub = concepts["pricing"], concepts["webinar"], concepts["unsubscribe"]
    assert pricing.text({"count": 3.0, "days": 1.2}, 14) == (
        "viewed the pricing page 3 times in 90 days, last 1 day ago"
    )
    assert pricing.text({"count": 1.0, "days": 12.4}, 14) == "viewed the pricing page 12 days ago"
    assert pricing.text({"count": 2.0, "days": 0.3}, 14) == (
        "viewed the pricing page twice in 90 days, last one today"
    )
    assert pricing.text({"count": 0.0, "days": 120.0}, 14) == (
        "no pricing-page view in the last 90 days"
    )
    assert pricing.text({"count": 0.0, "days": 3650.0}, 14) == "never viewed the pricing page"
    # no phrase declared: worded from the label
    assert webinar.text({"count": 4.0, "days": 3.0}, 14) == (
        "webinar sign-up 4 times in 90 days, last 3 days ago"
    )
    assert webinar.text({"count": 0.0, "days": 3650.0}, 14) == "no webinar sign-up yet"
    assert unsub.text({"count": 1.0, "days": 5.0}, 14) == "unsubscribed 5 days ago"
    assert unsub.text({"count": 0.0, "days": 3650.0}, 14) == "never unsubscribed"
    facts = {"count": np.array([3.0, 0.0, 0.0]), "days": np.array([1.0, 120.0, 3650.0])}
    assert pricing.absent(facts).tolist() == [False, True, True]


def test_overall_activity_and_lead_age_read_as_facts():
    overall = build_registry(_config()).concepts()["activity"]
    # the count sums every type's 90-day count
    assert overall.facts[0][1] == (
        "n_pricing_90d",
        "n_webinar_90d",
        "n_unsubscribe_90d",
        "n_other_90d",
    )
    assert overall.text({"count": 12.0, "days": 2.4}, 14) == (
        "12 activities in the last 90 days, last 2 days ago"
    )
    assert overall.text({"count": 0.0, "days": 45.0}, 14) == "no activity for 45 days"
    assert (
        overall.text({"count": 0.0, "days": 3650.0}, 14) == "no activity since the lead was created"
    )
    assert [lead_age_text(d, 14) for d in (1.0, 4.2, 13.6, 20.0, 62.0, 100.0, 400.0)] == [
        "new lead (1 day)",
        "new lead (4 days)",
        "lead open for 2 weeks",
        "lead open for 3 weeks",
        "lead open for 9 weeks",
        "lead open for 3 months",
        "lead open for 13 months",
    ]
    lifecycle = build_registry(_config()).concepts()["lead_age"]
    assert lifecycle.text({"days": 4.0}, 7) == "new lead (4 days)"
    assert lifecycle.text({"days": 4.0}, 3) == "lead open for 1 week"


def test_account_concept_reads_contacts_and_whether_they_are_active():
    registry = build_registry(_config(), groups=["account"])
    account = registry.concepts()["account"]
    assert account.features == ("account_contacts", "account_engagement")
    assert account.text({"contacts": 3.0, "active": 0.4}, 14) == (
        "3 other contacts at this account, active recently"
    )
    assert account.text({"contacts": 1.0, "active": 0.0}, 14) == (
        "1 other contact at this account, none active recently"
    )
    assert account.text({"contacts": 0.0, "active": 0.0}, 14) == "no other contacts at this account"


def test_sign_rule():
    absent = np.array([False, False, True, True, False, True])
    value = np.array([0.3, -0.3, 0.3, -0.3, 0.0, 0.0])
    # +1: "did it" only positive, "absent" only negative, a zero never
    assert sign_allowed(1, absent, value).tolist() == [True, False, False, True, False, False]
    # -1 (unsubscribe): the reverse
    assert sign_allowed(-1, absent, value).tolist() == [False, True, True, False, False, False]
    # 0: either sign
    assert sign_allowed(0, absent, value).tolist() == [True, True, True, True, False, False]
