"""The atypical-case check over lumped mixture components (synthetic/lumping.py) gives the
answer of the whole mixture: the same class-balanced evidence, the same percentiles."""

import numpy as np
import pandas as pd
import pytest

import crampdx.synthetic as synthetic
from crampdx.compiled import LazyKernel
from crampdx.contract.case import validate_case
from crampdx.synthetic import compiled_evidence, lumping
from crampdx.synthetic.lumping import class_balanced_log_evidence, lumped_knowledge
from crampdx.synthetic.posterior import class_posterior_and_evidence
from crampdx.synthetic.typicality import TIE_TOLERANCE, _partition_cells, evidence_percentile, reference_cases

# findings sets that exercise: level and numeric findings, a family whose parent is not
# assessed (egfr without hemodialysis), a family with its parent, age and sex
FINDING_SETS = [
    ("true_cramps", "cramp_timing", "potassium"),
    ("egfr", "creatinine", "glucose", "symptom_duration"),
    ("hemodialysis", "egfr", "cramps_with_dialysis", "age", "sex", "med_diuretic"),
    ("age", "sex", "tsh", "magnesium", "pedal_pulses", "diabetes", "hba1c"),
]


@pytest.fixture(autouse=True, params=["numpy", "compiled"])
def evidence_path(request, monkeypatch):
    """Every test runs on both paths of the check: numpy, and the compiled loop
    (synthetic/compiled_evidence.py) that a server's warm-up starts, which must answer at least
    once where the test scores anything (it leaves some blocks to numpy)."""
    if request.param == "numpy":
        monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", LazyKernel(compiled_evidence.EVIDENCE_KERNEL.function))
        yield request.param
        return
    compiled_evidence.EVIDENCE_KERNEL.get()
    answers, loop = [], compiled_evidence.compiled_class_log_evidence
    monkeypatch.setattr(compiled_evidence, "compiled_class_log_evidence", lambda *args: answers.append(loop(*args)) or answers[-1])
    yield request.param
    assert not answers or any(answer is not None for answer in answers)


def _masked(kb, codes, finding_ids):
    out = np.full_like(codes, np.nan)
    columns = [kb.schema.position(f) for f in finding_ids]
    out[:, columns] = codes[:, columns]
    return out


def _whole_mixture_balanced(kb, codes, intervals=None):
    """log (1/C) sum_c p(x_S | c) from the whole mixture's class posterior and evidence."""
    post, evidence = class_posterior_and_evidence(codes, kb, intervals)
    priors = np.array([c.prior for c in kb.classes])
    return evidence + np.log(np.mean(post / priors, axis=1))


@pytest.mark.parametrize("finding_ids", FINDING_SETS)
def test_lumped_mixture_gives_the_whole_mixtures_posterior_and_evidence(kb, finding_ids):
    codes = _masked(kb, reference_cases(kb, 200, 31)[0], finding_ids)
    lumped = lumped_knowledge(kb, finding_ids)
    assert lumped.n_components <= kb.n_components
    np.testing.assert_allclose(np.exp(lumped.component_log_weight).sum(), 1.0, rtol=1e-12)
    post, evidence = class_posterior_and_evidence(codes, kb)
    lumped_post, lumped_evidence = class_posterior_and_evidence(codes, lumped)
    np.testing.assert_allclose(lumped_evidence, evidence, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(lumped_post, post, rtol=0, atol=1e-12)
    np.testing.assert_allclose(class_balanced_log_evidence(codes, kb, finding_ids), _whole_mixture_balanced(kb, codes),
                               rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("finding_ids", FINDING_SETS)
def test_lumps_found_by_hashing_are_the_lumps_found_by_sorting_even_when_hashes_collide(kb, finding_ids, monkeypatch):
    """Components are lumped by a hash of their signatures, checked exactly: the lumps are
    those that sorting the signatures gives, and when every signature hashes alike (the
    multipliers made zero) the check catches it and sorting decides."""
    balanced = lumping._balanced_by_band(kb)
    finding_ids = frozenset(finding_ids)
    row_of, types, multipliers = lumping._type_matrix(balanced)
    telling = sorted(finding_ids | {balanced.parent_of[f] for f in finding_ids if f in balanced.parent_of})
    key, first = lumping._lumps_by_sorting(types[[row_of[f] for f in telling]], balanced.component_class)
    by_sorting = np.full(len(first), -np.inf)
    np.logaddexp.at(by_sorting, key, balanced.component_log_weight)
    for multiplied in (multipliers, np.zeros_like(multipliers)):
        monkeypatch.setattr(lumping, "_type_matrix", lambda kb: (row_of, types, multiplied))
        representative, log_weight = lumping.lumps.__wrapped__(balanced, finding_ids)
        np.testing.assert_array_equal(representative, first)
        np.testing.assert_array_equal(log_weight, by_sorting)
    assert len(first) < balanced.n_components


def test_findings_that_ignore_age_and_sex_lump_many_components(kb):
    assert lumped_knowledge(kb, ["true_cramps", "cramp_timing"]).n_components < kb.n_components / 2


def test_a_knowledge_base_without_tables_lumps_by_class(kb):
    """No finding tells components apart: one lump per class, its first component, all its
    weight (a lumped knowledge base of no findings holds no tables, and can be lumped again)."""
    bare = lumped_knowledge(kb, [])
    assert not bare.tables and bare.n_components == len(kb.classes)
    representative, log_weight = lumping.lumps(bare, frozenset())
    np.testing.assert_array_equal(representative, np.arange(len(kb.classes)))
    np.testing.assert_array_equal(log_weight, bare.component_log_weight)
    again = lumped_knowledge(bare, [])
    np.testing.assert_array_equal(again.component_class, bare.component_class)


def _oracle_percentile(kb, case):
    """The percentile by its definition, over the whole mixture (the check before lumping)."""
    row = case.codes().reshape(1, -1)
    ranges = {fid: (v.low, v.high) for fid, v in case.intervals.items()}
    reference = reference_cases(kb, 1000, 20_011)[0].copy()
    cells = {fid: _partition_cells(reference[:, kb.schema.position(fid)], b, kb.schema[fid].hard) for fid, b in ranges.items()}
    reference[:, np.isnan(row[0])] = np.nan
    by_row = {i: {fid: c[i] for fid, c in cells.items()} for i in range(len(reference))} if ranges else {}
    case_value = _whole_mixture_balanced(kb, row, {0: ranges})[0]
    values = _whole_mixture_balanced(kb, reference, by_row)
    tolerance = TIE_TOLERANCE * max(1.0, abs(case_value))
    return np.mean(values < case_value - tolerance) + np.mean(np.abs(values - case_value) <= tolerance) / 2


def test_percentiles_equal_the_whole_mixtures_on_generated_and_ranged_cases(kb):
    frame = synthetic.generate(40, seed=12, knowledge=kb).drop(columns=synthetic.LABEL)
    mappings = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.dropna().items()} for _, row in frame.iterrows()]
    mappings += [{"potassium": "low", "age": 70, "sex": "female", "true_cramps": "present"},
                 {"magnesium": "low", "egfr": "low", "tsh": "suppressed", "sex": "male"},
                 # age known, children given as ranges under parents not assessed (dialysis, diabetes)
                 {"age": 70, "egfr": "low", "glucose": "high", "creatinine": 3.0, "sex": "male"}]
    cases = [validate_case(m, schema=kb.schema) for m in mappings]
    assert any(case.intervals for case in cases)
    for case in cases:
        ranges = {fid: (v.low, v.high) for fid, v in case.intervals.items()}
        percentile = evidence_percentile(case.codes(), kb, ranges=ranges).percentile
        assert percentile == pytest.approx(_oracle_percentile(kb, case), abs=1e-12), case.to_dict()


def test_references_with_the_cases_very_findings_tie_with_it(kb):
    """A case with only its sex: every reference of that sex ties (mid-rank), the others are
    above or below as a whole."""
    reference = reference_cases(kb, 1000, 20_011)[0]
    sex = reference[:, kb.schema.position("sex")]
    codes = np.full(len(kb.schema), np.nan)
    codes[kb.schema.position("sex")] = sex[0]
    percentile = evidence_percentile(codes, kb).percentile
    same = np.mean(sex == sex[0])
    balanced = class_balanced_log_evidence(_masked(kb, reference[[0, int(np.argmax(sex != sex[0]))]], ["sex"]), kb, ["sex"])
    other_below = balanced[1] < balanced[0]
    assert percentile == pytest.approx(same / 2 + (1 - same) * other_below, abs=1e-12)


@pytest.mark.parametrize("finding_ids", FINDING_SETS)
def test_a_block_as_small_as_the_first_gives_the_whole_mixtures_evidence(kb, finding_ids):
    """A block as small as the atypical check's first (the case and 50 references): the same numbers."""
    codes = _masked(kb, reference_cases(kb, 200, 31)[0], finding_ids)[:51]
    np.testing.assert_allclose(class_balanced_log_evidence(codes, kb, finding_ids), _whole_mixture_balanced(kb, codes),
                               rtol=1e-12, atol=1e-9)


def _mixed_up_cases(kb, n, seed):
    """Generated cases, half of them with findings swapped in from other cases (unusual combinations)."""
    rng = np.random.default_rng(seed)
    codes = _masked(kb, reference_cases(kb, 2 * n, seed)[0], FINDING_SETS[3] + FINDING_SETS[1])[:n]
    donors = codes[rng.permutation(n)]
    swap = (rng.random(codes.shape) < 0.5) & (np.arange(n) % 2 == 0)[:, None]
    return np.where(swap, donors, codes)


def test_settling_early_decides_every_case_as_all_references_do(kb):
    """With settle_at, a case is below the threshold exactly when it is with all 1,000
    references; a case below it is measured on all of them (same percentile), and the usual
    case on far fewer."""
    threshold = 0.01
    cases = _mixed_up_cases(kb, 150, 8)
    # every third case gives its eGFR only as a range (a child finding whose parent, dialysis,
    # is not assessed: the range is summed over the parent's levels, block by block)
    egfr, low = kb.schema.position("egfr"), kb.schema["egfr"].hard[0]
    ranges = [{"egfr": (low, 30.0)} if i % 3 == 0 else {} for i in range(len(cases))]
    cases[::3, egfr] = np.nan
    full = [evidence_percentile(row, kb, ranges=r) for row, r in zip(cases, ranges)]
    quick = [evidence_percentile(row, kb, ranges=r, settle_at=threshold) for row, r in zip(cases, ranges)]
    below = [f.percentile < threshold for f in full]
    assert 0 < sum(below) < len(cases)  # both kinds of case are present
    for f, q, is_below in zip(full, quick, below):
        assert (q.percentile < threshold) == is_below
        assert q.log_evidence == pytest.approx(f.log_evidence, rel=1e-12, abs=1e-9)  # from its first block: to rounding
        if is_below:
            assert q.reference_cases == f.reference_cases == 1000 and q.percentile == pytest.approx(f.percentile, abs=1e-12)
    assert np.median([q.reference_cases for q in quick]) <= 200


def test_the_reported_log_evidence_is_the_cases_evidence_under_the_whole_mixture(kb):
    """The case's log p(x_S), read from the first block of references, equals the exact
    evidence computed on its own (with and without age, a child's range under a parent not
    assessed); an impossible case gets -inf."""
    mappings = [{"potassium": "low", "age": 70, "sex": "female", "true_cramps": "present"},
                {"magnesium": "low", "egfr": "low", "tsh": "suppressed", "sex": "male"},
                {"age": 70, "egfr": "low", "glucose": "high", "creatinine": 3.0, "sex": "male"},
                {"cramp_timing": "nocturnal_at_rest", "med_diuretic": "yes"}]
    for mapping in mappings:
        case = validate_case(mapping, schema=kb.schema)
        ranges = {fid: (v.low, v.high) for fid, v in case.intervals.items()}
        expected = class_posterior_and_evidence(case.codes(), kb, {0: ranges})[1][0]
        for settle_at in (None, 0.01):
            got = evidence_percentile(case.codes(), kb, ranges=ranges, settle_at=settle_at).log_evidence
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), mapping
    impossible = kb.schema.encode(pd.DataFrame({"sex": ["male"], "pregnancy": ["trimester_3"]}))  # validation refuses it
    for settle_at in (None, 0.01):
        assert evidence_percentile(impossible[0], kb, settle_at=settle_at) == (0.0, -np.inf, 0)


def test_a_table_the_knowledge_base_left_out_is_an_error_not_a_zero(kb):
    lumped = lumped_knowledge(kb, ["true_cramps"])
    codes = _masked(kb, reference_cases(kb, 50, 31)[0], ["true_cramps", "potassium"])
    with pytest.raises(KeyError, match="potassium"):
        class_posterior_and_evidence(codes, lumped)
