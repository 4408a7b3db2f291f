"""The dashboard's charts as data and Vega-Lite specs."""

from __future__ import annotations

import pytest

from crampdx.render.charts import ranking_chart, waterfall_chart
from crampdx.render.evaluation import model_versus_posterior

HYPOKALEMIA = {"potassium": 2.6, "med_diuretic": "yes", "weakness_reported": "yes", "age": 71}


def test_the_ranking_is_drawn_in_rank_order_in_a_way_vega_keeps(tiny_diagnoser):
    causes = tiny_diagnoser.rank(HYPOKALEMIA, top=10)
    frame, spec = ranking_chart(causes, chosen=causes[2].id)
    assert list(frame["rank"]) == list(range(1, 11))
    assert list(frame["probability"]) == sorted(frame["probability"], reverse=True)
    # layers share one y domain; Vega-Lite drops a sort by the default op ("sum") there and
    # then listed the causes alphabetically; with no sort it kept the previous case's order
    assert spec["encoding"]["y"]["sort"] == {"field": "rank", "op": "min", "order": "ascending"}
    assert list(frame["chosen"]).count("explained below") == 1 and frame["chosen"][2] == "explained below"
    assert frame["cause"][0].endswith(f"· {causes[0].icd10}")


def test_the_waterfall_runs_from_the_average_case_to_the_score(tiny_diagnoser):
    explanation = tiny_diagnoser.explain(HYPOKALEMIA, "hypokalemia")
    frame, spec = waterfall_chart(explanation)
    assert frame["end"].iloc[0] == pytest.approx(explanation.base_value)
    assert frame["end"].iloc[-2] == pytest.approx(explanation.value, abs=1e-6)  # last step before the score bar
    assert frame["end"].iloc[-1] == pytest.approx(explanation.value)
    assert set(frame["kind"]) <= set(spec["encoding"]["color"]["scale"]["domain"])
    assert spec["encoding"]["y"]["sort"]["field"] == "order"


def test_the_model_is_compared_with_the_exact_posterior(tiny_diagnoser):
    table = model_versus_posterior(tiny_diagnoser.manifest_)
    assert list(table.columns) == ["figure", "model", "exact posterior"]
    assert "top-1 accuracy" in set(table["figure"])
    assert model_versus_posterior({}) is None
