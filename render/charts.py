"""Vega-Lite charts of a differential and of an explanation: data and spec, no drawing.

The dashboard hands them to ``st.vega_lite_chart``; written out as plain specs they are drawn
without Altair's schema validation, which would cost tens of milliseconds per rerun.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from crampdx.model.results import Cause, Explanation
from crampdx.render.format import cause_label, percent

__all__ = ["ranking_chart", "waterfall_chart"]

WATERFALL_COLOURS = {"for": "#2e7d32", "against": "#c62828", "average case": "#5f5f5f",
                     "not assessed": "#c7c7c7", "score": "#1f5fa8"}


def ranking_chart(causes: Sequence[Cause], chosen: str) -> tuple[pd.DataFrame, dict]:
    """Horizontal bars of the causes' probabilities, most probable on top, ``chosen`` highlighted.

    Returns
    -------
    frame, spec : pandas.DataFrame, dict
        The data (one row per cause, with its rank) and the Vega-Lite spec.
    """
    frame = pd.DataFrame({
        "rank": list(range(1, len(causes) + 1)),
        "cause": [cause_label(c) for c in causes],
        "probability": [c.probability for c in causes],
        "shown": [percent(c.probability) for c in causes],
        "chosen": ["explained below" if c.id == chosen else "other" for c in causes],
    })
    encoding = {
        # An explicit sort (with none, Vega keeps the row order of the previous data); op "min"
        # because layers share one y domain, where a sort by the default op ("sum") is dropped.
        "y": {"field": "cause", "type": "nominal", "sort": {"field": "rank", "op": "min", "order": "ascending"},
              "title": None, "axis": {"labelLimit": 300, "labelOverlap": False}},
        "x": {"field": "probability", "type": "quantitative", "title": "probability",
              "axis": {"format": "%", "values": [0, 0.2, 0.4, 0.6, 0.8, 1.0]},
              "scale": {"domain": [0, 1.3]}},  # room for the label of a bar near 100 %
        "tooltip": [{"field": "cause", "type": "nominal"}, {"field": "shown", "type": "nominal", "title": "probability"}],
    }
    spec = {
        "height": 28 * len(causes) + 20,
        "encoding": encoding,
        "layer": [
            {"mark": {"type": "bar"}, "encoding": {"color": {
                "field": "chosen", "type": "nominal", "legend": None,
                "scale": {"domain": ["explained below", "other"], "range": ["#1f5fa8", "#9bb7d4"]}}}},
            {"mark": {"type": "text", "align": "left", "dx": 4},
             "encoding": {"text": {"field": "shown", "type": "nominal"}}},
        ],
    }
    return frame, spec


def waterfall_chart(explanation: Explanation, limit: int = 12) -> tuple[pd.DataFrame, dict]:
    """The explanation as a waterfall: from the average case's score, finding by finding, to
    this case's score (see :meth:`Explanation.waterfall`).

    Returns
    -------
    frame, spec : pandas.DataFrame, dict
        One row per step (``start``, ``end``, ``contribution``, ``kind``) and the spec.
    """
    steps = explanation.waterfall(limit)
    frame = pd.DataFrame([(s.text, s.kind, s.start, s.end, s.contribution) for s in steps],
                         columns=["step", "kind", "start", "end", "contribution"])
    frame["order"] = range(len(frame))
    spec = {
        "height": 26 * len(frame) + 20,
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "step", "type": "nominal", "title": None, "axis": {"labelLimit": 360, "labelOverlap": False},
                  "sort": {"field": "order", "op": "min", "order": "ascending"}},
            "x": {"field": "start", "type": "quantitative", "title": "score (right = for)"},
            "x2": {"field": "end"},
            "color": {"field": "kind", "type": "nominal", "legend": None,
                      "scale": {"domain": list(WATERFALL_COLOURS), "range": list(WATERFALL_COLOURS.values())}},
            "tooltip": [{"field": "step", "type": "nominal"},
                        {"field": "contribution", "type": "quantitative", "format": "+.2f"}],
        },
    }
    return frame, spec
