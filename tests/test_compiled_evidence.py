"""The atypical check's compiled loop (synthetic/compiled_evidence.py) gives the numpy path's
class log-evidences, and leaves to it what it does not do. (tests/test_atypical_lumping.py runs
the check's tests against the whole mixture on both paths.)"""

import numpy as np
import pandas as pd
import pytest

from crampdx.compiled import LazyKernel
from crampdx.synthetic import compiled_evidence, lumping
from crampdx.synthetic.typicality import _partition_cells, compile_atypical_check, reference_cases


@pytest.fixture
def both_paths(monkeypatch):
    """``evidence(codes, ids, intervals)`` -> (numpy's answer, the loop's answer), checking that
    the loop answered rather than leaving the block to numpy."""
    started = compiled_evidence.EVIDENCE_KERNEL
    started.get()
    loop, answers = compiled_evidence.compiled_class_log_evidence, []
    monkeypatch.setattr(compiled_evidence, "compiled_class_log_evidence", lambda *args: answers.append(loop(*args)) or answers[-1])

    def evidence(kb, codes, finding_ids, intervals=None):
        monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", LazyKernel(started.function))  # not started: numpy
        expected = lumping.class_log_evidence(codes, kb, finding_ids, intervals)
        monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", started)
        answers.clear()
        got = lumping.class_log_evidence(codes, kb, finding_ids, intervals)
        assert len(answers) == 1 and answers[0] is not None  # the loop answered
        return expected, got

    return evidence


def _same(expected, got):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


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
            ranged = str(rng.choice(numeric))  # a child's range under its parent assessed or not
            spec = kb.schema[ranged]
            column = kb.schema.position(ranged)
            bounds = (spec.hard[0], float(np.nanmedian(reference[:, column])))
            intervals = {r: {ranged: cell} for r, cell in enumerate(_partition_cells(rows[:, column], bounds, spec.hard))}
            codes[:, column] = np.nan
            chosen.append(ranged)
        yield codes, chosen, intervals


def test_the_loop_gives_the_numpy_paths_class_log_evidence(kb, both_paths):
    compared = with_age = with_ranges = 0
    for codes, finding_ids, intervals in _blocks(kb, 40, 5):
        _same(*both_paths(kb, codes, finding_ids, intervals))
        compared += 1
        with_age += "age" in finding_ids
        with_ranges += intervals is not None
    assert compared == 40 and with_age >= 5 and with_ranges >= 5


def test_findings_missing_in_some_rows_only_are_skipped_in_those_rows(kb, both_paths):
    """Parents, children and the age each missing in about a third of the rows (the loop must
    not read a missing child's code), with and without a child's range under an assessed parent."""
    ids = ["hemodialysis", "cramps_with_dialysis", "egfr", "diabetes", "med_insulin", "glucose", "potassium"]
    reference = reference_cases(kb, 1000, 20_011)[0][:60]
    rng = np.random.default_rng(0)
    for with_age in (False, True):
        chosen = ids + ["age"] if with_age else ids
        codes = np.full((60, len(kb.schema)), np.nan)
        columns = [kb.schema.position(f) for f in chosen]
        codes[:, columns] = reference[:, columns]
        for fid in ["cramps_with_dialysis", "med_insulin", "glucose"]:
            codes[rng.random(60) < 0.3, kb.schema.position(fid)] = np.nan
        _same(*both_paths(kb, codes, chosen))
        # the eGFR known only as a range, in rows whose dialysis status is known
        codes[:, kb.schema.position("hemodialysis")] = reference[:, kb.schema.position("hemodialysis")]
        egfr = kb.schema.position("egfr")
        cells = _partition_cells(reference[:, egfr], (kb.schema["egfr"].hard[0], 60.0), kb.schema["egfr"].hard)
        codes[:, egfr] = np.nan
        _same(*both_paths(kb, codes, chosen, {r: {"egfr": cell} for r, cell in enumerate(cells)}))


def test_an_impossible_case_is_a_row_of_nan_on_both_paths(kb, both_paths):
    codes = kb.schema.encode(pd.DataFrame({"sex": ["male", "male"], "pregnancy": ["trimester_3", None]}))
    for age in (np.nan, 40.0):
        codes[:, kb.schema.position("age")] = age
        expected, got = both_paths(kb, codes, ["sex", "pregnancy"] + ([] if np.isnan(age) else ["age"]))
        assert np.isnan(expected[0]).all() and np.isnan(got[0]).all()
        _same(expected, got)
        assert np.isfinite(got[1]).any()


def _call(kb, codes, intervals=None):
    balanced = lumping._balanced_by_band(kb)
    everyone = np.zeros(len(codes), dtype=np.int64)
    return compiled_evidence.compiled_class_log_evidence(codes, balanced, intervals, None, balanced.component_log_weight,
                                                         balanced.component_class, everyone, everyone + kb.n_components)


def test_children_known_only_as_ranges_under_a_parent_not_assessed(kb, both_paths):
    """The case with 'egfr low' and no dialysis status (its references: the eGFR's cells), and
    two children of one parent given as ranges, with and without the age."""
    reference = reference_cases(kb, 1000, 20_011)[0][:80]
    for ids in (["egfr", "creatinine", "potassium", "sex"], ["egfr", "creatinine", "potassium", "sex", "age"]):
        codes = np.full((80, len(kb.schema)), np.nan)
        columns = [kb.schema.position(f) for f in ids]
        codes[:, columns] = reference[:, columns]
        intervals = {r: {} for r in range(80)}
        for fid, high in (("egfr", 60.0), ("creatinine", 1.2)):
            column, hard = kb.schema.position(fid), kb.schema[fid].hard
            for r, cell in enumerate(_partition_cells(reference[:, column], (hard[0], high), hard)):
                intervals[r][fid] = cell
            codes[:, column] = np.nan
            _same(*both_paths(kb, codes, ids, intervals))


def test_what_the_loop_does_not_do_is_left_to_the_numpy_path(kb):
    """Codes outside the tables (the loop reads without bounds checks) and ranges keyed by
    something other than a row of the batch: ``None``."""
    compiled_evidence.EVIDENCE_KERNEL.get()
    codes = np.full((1, len(kb.schema)), np.nan)
    assert _call(kb, codes.copy()) is not None
    for row in (-1, 1, 0.0):
        assert _call(kb, codes.copy(), {row: {"potassium": (1.0, 3.5)}}) is None, row
    for fid, value in [("true_cramps", len(kb.schema["true_cramps"].levels)), ("true_cramps", -1.0), ("true_cramps", 0.5),
                       ("hemodialysis", 7.0), ("age", 0.0), ("age", 500.0)]:
        bad = codes.copy()
        bad[0, kb.schema.position(fid)] = value
        assert _call(kb, bad) is None, (fid, value)


def test_components_that_do_not_match_their_weights_or_rows_are_refused(kb):
    balanced = lumping._balanced_by_band(kb)
    codes = np.full((2, len(kb.schema)), np.nan)
    zeros, width = np.zeros(2, dtype=np.int64), kb.n_components
    good = (balanced.component_log_weight, balanced.component_class, zeros, zeros + width)
    for log_weight, classes, start, stop in [good[:2] + (zeros, zeros + width + 1), good[:2] + (zeros + 3, zeros + 2),
                                             (good[0][:-1],) + good[1:], (good[0], good[1] + 100) + good[2:]]:
        with pytest.raises(ValueError, match="do not match"):
            compiled_evidence.compiled_class_log_evidence(codes, balanced, None, None, log_weight, classes, start, stop)


def test_the_warm_up_compiles_the_loop_once_for_every_kind_of_block(kb, monkeypatch):
    """numba compiles a loop at its first call, once per kind of argument: after
    compile_atypical_check, blocks with and without the age, with ranges, and read-only codes
    (the references) reuse that one compilation (a second would stop a server for seconds)."""
    fresh = LazyKernel(compiled_evidence.EVIDENCE_KERNEL.function, helpers=compiled_evidence.EVIDENCE_KERNEL.helpers)
    monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", fresh)
    compile_atypical_check(kb)
    assert len(fresh.get().signatures) == 1
    for codes, finding_ids, intervals in _blocks(kb, 8, 6):
        lumping.class_log_evidence(codes, kb, finding_ids, intervals)
    lumping.class_log_evidence(reference_cases(kb, 50, 31)[0], kb, list(kb.schema.ids))  # read-only, every finding
    assert len(fresh.get().signatures) == 1


def test_without_a_writable_cache_the_loop_and_its_helpers_compile_in_memory(kb, numba_without_disk_cache, monkeypatch):
    for helper in compiled_evidence.EVIDENCE_KERNEL.helpers:  # LazyKernel rebinds them in the module: restored after the test
        monkeypatch.setattr(compiled_evidence, helper.__name__, getattr(compiled_evidence, helper.__name__))
    fresh = LazyKernel(compiled_evidence.EVIDENCE_KERNEL.function, helpers=compiled_evidence.EVIDENCE_KERNEL.helpers)
    monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", fresh)
    out = _call(kb, reference_cases(kb, 50, 31)[0][:5].copy())
    assert fresh.started and out.shape == (5, len(kb.classes)) and np.isfinite(out).any()
