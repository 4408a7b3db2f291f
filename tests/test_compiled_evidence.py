"""The atypical check's compiled loop (synthetic/compiled_evidence.py) gives the numpy path's
class log-evidences, and leaves to it what it does not do. (tests/test_atypical_lumping.py runs
the check's tests against the whole mixture on both paths.)"""

import numba
import numpy as np
import pandas as pd
import pytest

from crampdx.compiled import LazyKernel
from crampdx.synthetic import compiled_evidence, lumping
from crampdx.synthetic.compiled_evidence import compiled_class_log_evidence
from crampdx.synthetic.typicality import _partition_cells, reference_cases


@pytest.fixture
def numpy_only(monkeypatch):
    monkeypatch.setattr(lumping, "EVIDENCE_KERNEL", LazyKernel(lumping.EVIDENCE_KERNEL.function))  # not started


def _blocks(kb, n_sets, seed):
    """Blocks of generated cases each masked to a random set of findings: age known or not,
    children with and without their parent, and a range on some numeric finding."""
    rng = np.random.default_rng(seed)
    reference = reference_cases(kb, 1000, 20_011)[0]
    numeric = [fid for fid in kb.schema.ids if kb.schema[fid].hard is not None and fid != "age"]
    for i in range(n_sets):
        chosen = [str(f) for f in rng.choice([f for f in kb.schema.ids if f != "age"], size=int(rng.integers(1, 25)), replace=False)]
        if i % 3 == 0:
            chosen = [f for f in chosen if f not in {"hemodialysis", "diabetes"}] + ["egfr", "glucose"]  # parents not assessed
        if i % 2 == 0:
            chosen.append("age")  # each case against its age band's components
        codes = np.full((60, len(kb.schema)), np.nan)
        rows = reference[rng.choice(len(reference), 60, replace=False)]
        columns = [kb.schema.position(f) for f in set(chosen)]
        codes[:, columns] = rows[:, columns]
        chosen, intervals = sorted(set(chosen)), None
        if i % 4 == 1:  # a range, as the check gives one: the case's bounds, each reference its cell
            ranged = str(rng.choice([f for f in numeric if kb.parent_of.get(f) is None or kb.parent_of[f] in chosen]))
            spec = kb.schema[ranged]
            column = kb.schema.position(ranged)
            bounds = (spec.hard[0], float(np.nanmedian(reference[:, column])))
            intervals = {r: {ranged: cell} for r, cell in enumerate(_partition_cells(rows[:, column], bounds, spec.hard))}
            codes[:, column] = np.nan
            chosen.append(ranged)
        yield codes, chosen, intervals


def test_the_loop_gives_the_numpy_paths_class_log_evidence(kb, numpy_only, monkeypatch):
    kernel = compiled_evidence.EVIDENCE_KERNEL
    compared = with_age = with_ranges = 0
    for codes, finding_ids, intervals in _blocks(kb, 40, 5):
        expected = lumping.class_log_evidence(codes, kb, finding_ids, intervals)
        taken = []
        monkeypatch.setattr(lumping, "EVIDENCE_KERNEL", kernel)
        monkeypatch.setattr(lumping, "compiled_class_log_evidence",
                            lambda *args: taken.append(compiled_class_log_evidence(*args)) or taken[-1])
        kernel.get()
        got = lumping.class_log_evidence(codes, kb, finding_ids, intervals)
        monkeypatch.setattr(lumping, "EVIDENCE_KERNEL", LazyKernel(kernel.function))
        assert taken and taken[0] is not None  # the loop answered, not the numpy path
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
        compared += 1
        with_age += "age" in finding_ids
        with_ranges += intervals is not None
    assert compared == 40 and with_age >= 5 and with_ranges >= 5


def test_an_impossible_case_is_a_row_of_nan_on_both_paths(kb, numpy_only):
    codes = kb.schema.encode(pd.DataFrame({"sex": ["male", "male"], "pregnancy": ["trimester_3", None]}))
    for age in (np.nan, 40.0):
        codes[:, kb.schema.position("age")] = age
        ids = ["sex", "pregnancy"] + ([] if np.isnan(age) else ["age"])
        expected = lumping.class_log_evidence(codes, kb, ids)
        got = _call(kb, codes)
        assert np.isnan(expected[0]).all() and np.isnan(got[0]).all()
        assert np.isfinite(got[1]).any()


def _call(kb, codes, intervals=None):
    balanced = lumping._balanced_by_band(kb)
    everyone = np.zeros(len(codes), dtype=np.int64)
    return compiled_class_log_evidence(codes, balanced, intervals, None, balanced.component_log_weight, balanced.component_class,
                                       everyone, everyone + kb.n_components)


def test_what_the_loop_does_not_do_is_left_to_the_numpy_path(kb):
    """A child's range under a parent not assessed, and codes outside the tables (the loop
    reads without bounds checks): ``None``, and the numpy path answers or raises."""
    codes = np.full((1, len(kb.schema)), np.nan)
    assert _call(kb, codes.copy()) is not None
    low = kb.schema["egfr"].hard[0]
    assert _call(kb, codes.copy(), {0: {"egfr": (low, 30.0)}}) is None
    for fid, value in [("true_cramps", len(kb.schema["true_cramps"].levels)), ("true_cramps", -1.0), ("true_cramps", 0.5),
                       ("hemodialysis", 7.0), ("age", 0.0), ("age", 500.0)]:
        bad = codes.copy()
        bad[0, kb.schema.position(fid)] = value
        assert _call(kb, bad) is None, (fid, value)


def test_without_a_writable_cache_the_loop_and_its_helpers_compile_in_memory(kb, monkeypatch):
    njit = numba.njit

    def refusing_cache(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", refusing_cache)
    fresh = LazyKernel(compiled_evidence.EVIDENCE_KERNEL.function, helpers=compiled_evidence.EVIDENCE_KERNEL.helpers)
    monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", fresh)
    codes = reference_cases(kb, 50, 31)[0][:5].copy()
    out = _call(kb, codes)
    assert fresh.started and out.shape == (5, len(kb.classes)) and np.isfinite(out).any()
