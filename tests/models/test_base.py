"""Every fitted model kind implements the declared interface (``models.base.LeadScorer``)
and carries the registry and input columns it was trained with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import AttributeConfig, FeatureConfig
from leadscore.features.registry import build_registry
from leadscore.models import training
from leadscore.models.base import LeadScorer, missing_columns, registry_of
from leadscore.models.config import ModelConfig
from leadscore.models.explain import family_sums
from leadscore.models.factory import LeadModel, make_model
from leadscore.models.linear import LogisticLeadModel
from leadscore.models.segments import SegmentedModel
from leadscore.models.subscores import QUANTILE_POINTS, subscores

N = 2000
FEATURES = FeatureConfig(
    attributes=AttributeConfig(categorical=["industry"], numeric=["employees", "visits"])
)
LIGHTGBM = {"n_estimators": 10, "min_child_samples": 10}


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        {
            "industry": rng.choice(["tech", "retail"], size=N),
            "employees": rng.normal(size=N),
            "visits": rng.normal(size=N),
        }
    )
    y = (rng.uniform(size=N) < 1 / (1 + np.exp(-(2 * X["visits"] - 1.5)))).astype(int)
    return X, y.to_numpy()


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({"kind": "lightgbm", "lightgbm": LIGHTGBM}, LeadModel),
        ({"kind": "logistic"}, LogisticLeadModel),
        ({"lightgbm": LIGHTGBM}, LogisticLeadModel),  # auto: the log-odds are linear here
        (
            {
                "lightgbm": LIGHTGBM,
                "segments": {"column": "industry", "min_examples": 10, "min_positives": 5},
            },
            SegmentedModel,
        ),
    ],
)
def test_every_model_kind_is_a_lead_scorer_with_its_registry(config, kind):
    X, y = _data()
    registry = build_registry(FEATURES, behaviour=False)
    model = training.fit_model(X, y, registry, ModelConfig(**config))
    assert type(model) is kind and isinstance(model, LeadScorer)
    assert registry_of(model) is registry
    assert model.input_columns_ == ["industry", "employees", "visits"]
    assert missing_columns(model, ["industry", "visits"]) == ["employees"]
    p = model.predict_proba(X)[:, 1]
    assert np.allclose(p, model.calibrated(model.raw_score(X)))
    contributions, _ = model.contributions(X.head(5))
    assert contributions.shape == (5, 3)
    # the training rows' fit sums as reference quantiles (no activity log: no engagement)
    quantiles = model.subscore_quantiles_
    assert set(quantiles) == {"fit"} and len(quantiles["fit"]) == QUANTILE_POINTS
    fit = family_sums(model.contributions(X)[0], model.features, registry)["fit"]
    scores = subscores({"fit": fit}, quantiles, len(X))["fit_score"].to_numpy(dtype=float)
    assert abs((scores >= 50).mean() - 0.5) < 0.02 and abs((scores >= 80).mean() - 0.2) < 0.02
    median = subscores({"fit": np.array([np.median(fit)])}, quantiles, 1)["fit_score"]
    assert median.tolist() == [50]


def test_a_model_saved_without_its_registry_is_refused_by_name():
    X, y = _data()
    bare = make_model(ModelConfig(lightgbm=LIGHTGBM), ["industry"], ["employees"]).fit(X, y)
    with pytest.raises(LookupError, match="this LeadModel was saved without its feature registry"):
        registry_of(bare)
    assert missing_columns(bare, ["industry"]) == ["employees"]
