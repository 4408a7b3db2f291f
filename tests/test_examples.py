"""The example cases of the dashboard: valid, clinically consistent with the knowledge base."""

from __future__ import annotations

import copy
import tomllib

import numpy as np
import pytest

from crampdx.synthetic.examples import EXAMPLES_PATH, ExampleError, load_examples, parse_examples
from crampdx.synthetic import posterior_from_codes
from crampdx.synthetic.typicality import evidence_percentile

MAIN_CAUSES = {
    "idiopathic_nocturnal", "pad_claudication", "critical_limb_ischemia", "diabetic_polyneuropathy",
    "hypokalemia", "hypomagnesemia", "hyponatremia", "hypocalcemia", "thyroid_disease", "restless_legs",
    "lumbar_radiculopathy", "lumbar_canal_stenosis", "venous_insufficiency", "medication_induced",
    "hemodialysis", "pregnancy", "cirrhosis", "heat_exertional",
}


@pytest.fixture(scope="module")
def examples(kb):
    return load_examples(class_ids=kb.class_ids)


@pytest.fixture(scope="module")
def document():
    return tomllib.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))


def test_every_example_validates_and_names_a_class(examples, kb, schema):
    assert len(examples) >= 15
    assert len({e.id for e in examples}) == len(examples) == len({e.name for e in examples})
    for example in examples:
        assert example.cause in kb.class_ids
        assert len(example.case) == len(example.findings) >= 5, example.id
        assert {"age", "sex"} <= set(example.case.values), example.id
        assert set(example.case.values) <= set(schema.ids)


def test_the_main_causes_each_have_an_example(examples):
    assert MAIN_CAUSES <= {e.cause for e in examples}


def test_the_exact_posterior_ranks_each_example_s_cause_first(examples, kb):
    codes = np.vstack([e.case.codes() for e in examples])
    probabilities = np.asarray(posterior_from_codes(codes, kb))
    for example, row in zip(examples, probabilities):
        top = kb.class_ids[int(np.argmax(row))]
        assert top == example.cause, f"{example.id}: the knowledge base ranks {top} first ({row.max():.2f})"
        assert row.max() > 0.5, example.id


def test_examples_are_typical_not_atypical(examples, kb):
    for example in examples:
        percentile = evidence_percentile(example.case.codes(), kb).percentile
        assert percentile >= 0.01, f"{example.id} would raise the atypical-case warning ({percentile:.3f})"


def test_a_broken_example_is_reported_by_example_and_field(document, kb):
    broken = copy.deepcopy(document)
    first = next(iter(broken["examples"]))
    broken["examples"][first]["findings"]["potassium"] = 42
    broken["examples"][first]["findings"]["shoe_size"] = 44
    broken["examples"][first]["cause"] = "gout"
    with pytest.raises(ExampleError) as error:
        parse_examples(broken, class_ids=kb.class_ids)
    message = str(error.value)
    assert f"examples.{first}.findings.potassium" in message and "plausible range" in message
    assert f"examples.{first}.findings.shoe_size" in message
    assert f"examples.{first}.cause" in message and "gout" in message


def test_format_version_is_checked(document):
    with pytest.raises(ExampleError, match="format_version"):
        parse_examples({**document, "format_version": 2})
