"""SHAP of only the causes explained (model/attribution.py) equals the all-class SHAP."""

import numpy as np
import pytest

import crampdx.synthetic as synthetic


@pytest.fixture(scope="module")
def tiny_codes(tiny_diagnoser, tiny_kb):
    frame = synthetic.generate(40, seed=77, knowledge=tiny_kb).drop(columns=synthetic.LABEL)
    return tiny_diagnoser.schema.encode(frame)


def test_one_class_values_equal_the_all_class_values(tiny_diagnoser, tiny_codes):
    every, every_base = tiny_diagnoser.shap_values(tiny_codes)
    classes = [len(tiny_diagnoser.class_ids_) - 1, 0, 1]  # any order, the last axis follows it
    some, some_base = tiny_diagnoser.shap_values(tiny_codes, classes)
    assert some.shape == tiny_codes.shape + (3,)
    np.testing.assert_allclose(some, every[:, :, classes], rtol=0, atol=1e-9)
    np.testing.assert_allclose(some_base, every_base[classes], rtol=0, atol=1e-9)


def test_one_class_values_add_up_to_the_calibrated_score(tiny_diagnoser, tiny_codes):
    scores = tiny_diagnoser.scores(tiny_codes)
    for k in range(len(tiny_diagnoser.class_ids_)):
        values, base = tiny_diagnoser.shap_values(tiny_codes, [k])
        np.testing.assert_allclose(base[0] + values[:, :, 0].sum(axis=1), scores[:, k], rtol=0, atol=1e-9)


def test_explanations_use_the_explained_causes_own_values(tiny_diagnoser, tiny_kb):
    """An explanation of a cause that is not the top one, next to the top one: each adds up
    to its own score (a column mix-up would break additivity)."""
    case = synthetic.generate(1, seed=5, knowledge=tiny_kb).drop(columns=synthetic.LABEL).iloc[0].dropna().to_dict()
    ranked = tiny_diagnoser.rank(case)
    causes = [ranked[-1].id, ranked[0].id]
    for explanation, cause in zip(tiny_diagnoser.assess(case, explain=causes).explanations, causes):
        assert explanation.cause_id == cause
        total = explanation.base_value + sum(c.contribution for c in explanation.contributions) + explanation.not_assessed
        assert total == pytest.approx(explanation.value, abs=1e-9)
        assert explanation.value == pytest.approx(next(c.score for c in ranked if c.id == cause), abs=1e-9)


def test_only_the_explained_causes_explainers_are_built(tiny_kb, tiny_diagnoser):
    """A class's explainer is built when a cause of that class is first explained (an
    assessment explains one or a few of 25), then reused: a fresh attribution of the same
    model builds exactly the explainers asked for."""
    from crampdx.model.attribution import TreeAttribution

    attribution = TreeAttribution(tiny_diagnoser.estimator_)
    codes = tiny_diagnoser.schema.encode(synthetic.generate(5, seed=3, knowledge=tiny_kb).drop(columns=synthetic.LABEL))
    attribution.shap_values(codes, [1])
    assert set(attribution._class_explainers) == {1}
    first = attribution._class_explainers[1]
    attribution.shap_values(codes, [0, 1])
    assert set(attribution._class_explainers) == {0, 1} and attribution._class_explainers[1] is first
    assert "explainer" not in attribution.__dict__  # shap's reading of the whole model is not needed for this


def test_a_tree_with_a_categorical_split_is_refused():
    """shap's tree format has no categorical splits: a model fitted with them would be
    explained with wrong values, so its trees are refused (crampdx fits with
    categorical_features=None)."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    from crampdx.model.attribution import tree_dictionary

    nodes = np.zeros(3, dtype=PREDICTOR_RECORD_DTYPE)
    nodes[0]["left"], nodes[0]["right"] = 1, 2
    nodes[1]["is_leaf"] = nodes[2]["is_leaf"] = 1
    assert tree_dictionary(nodes)["children_left"].tolist() == [1, -1, -1]
    nodes[0]["is_categorical"] = 1
    with pytest.raises(ValueError, match="categorical splits"):
        tree_dictionary(nodes)
