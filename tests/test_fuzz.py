"""The fuzz in CI: 10,000 seeded random cases, valid and not, through validate_case and the
Diagnoser (bench/fuzz.py holds the drawing and the checks; its 100,000-case run is the
benchmark). Every case is accepted, with sound probabilities, a ranking equal to the batch
path and explanations that add up, or refused with one sentence: no crash, no wrong result."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fuzz as fuzzing  # noqa: E402
from fuzz import SEED, draw_case, fuzz  # noqa: E402

N_CASES = 10_000


@pytest.fixture(scope="module")
def report(tiny_diagnoser):
    return fuzz(tiny_diagnoser, N_CASES, SEED, rank_every=10, explain_every=100)


def test_no_crash_and_no_wrong_result(report):
    assert report.cases == N_CASES == report.accepted + report.refused + len(report.crashes)
    assert not report.crashes, report.crashes[:5]
    assert not report.wrong, report.wrong[:5]


def test_the_fuzz_reaches_both_answers_and_the_deep_checks(report):
    # the mix is meant to give both answers in earnest (about 60 % accepted with this seed);
    # these bounds are loose so that another seed or schema passes too
    assert 0.3 * N_CASES < report.accepted < 0.9 * N_CASES
    assert report.ranked >= report.accepted // 10 - 10 and report.explained >= report.accepted // 100 - 10


def test_the_cases_are_reproducible_one_by_one(schema):
    children = np.random.SeedSequence(SEED).spawn(5)
    again = np.random.SeedSequence(SEED).spawn(5)
    for a, b in zip(children, again):
        first, second = draw_case(np.random.default_rng(a), schema), draw_case(np.random.default_rng(b), schema)
        assert list(first) == list(second) and repr(first) == repr(second)


class _Broken:
    """The tiny Diagnoser with one fault injected, to show the fuzz's checks can fail."""

    def __init__(self, diagnoser, **faults):
        self._diagnoser, self._faults = diagnoser, faults

    def __getattr__(self, name):
        return self._faults.get(name) or getattr(self._diagnoser, name)


def test_the_fuzz_finds_a_wrong_ranking_and_an_explanation_that_does_not_add_up(tiny_diagnoser):
    unsorted = _Broken(tiny_diagnoser, rank=lambda case: tiny_diagnoser.rank(case)[::-1])
    assert fuzz(unsorted, 200, SEED, rank_every=1, explain_every=1000).wrong
    off = _Broken(tiny_diagnoser, explain=lambda case, cause: replace(tiny_diagnoser.explain(case, cause),
                                                                      base_value=tiny_diagnoser.explain(case, cause).base_value + 1e-3))
    assert any("does not add up" in line for line in fuzz(off, 200, SEED, rank_every=1, explain_every=1).wrong)


def test_the_fuzz_counts_an_exception_that_is_not_a_sentence_as_a_crash(tiny_diagnoser, monkeypatch):
    def overflowing(mapping, schema=None):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(fuzzing, "validate_case", overflowing)
    report = fuzz(tiny_diagnoser, 50, SEED)
    assert len(report.crashes) == 50 and "OverflowError" in report.crashes[0]
