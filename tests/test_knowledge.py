"""The declarative knowledge base: the shipped file, its provenance, its compilation and
the validator (a broken fixture file plus targeted mutations of the shipped document)."""

from __future__ import annotations

import functools
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crampdx.contract import CaseError, validate_case
from crampdx.contract.schema_file import SCHEMA_PATH
from crampdx.synthetic import KnowledgeBase, KnowledgeError, load_knowledge, posterior_from_codes, read_knowledge_document
from crampdx.synthetic.load import KNOWLEDGE_DIR, parse_knowledge
from crampdx.synthetic.tables import AgeTable, ConditionalTable, LevelTable, NormalTable

REQUIRED_CLASSES = {
    "idiopathic_nocturnal", "heat_exertional", "hemodialysis", "hypocalcemia", "hypomagnesemia",
    "hypokalemia", "hyponatremia", "thyroid_disease", "diabetic_polyneuropathy",
    "small_fiber_neuropathy", "hcv_neuropathy", "pad_claudication", "critical_limb_ischemia",
    "venous_insufficiency", "lumbar_radiculopathy", "lumbar_canal_stenosis", "restless_legs",
    "plms", "pes_planovalgus", "jia", "ibd_arthritis", "metabolic_myopathy", "medication_induced",
    "cirrhosis", "pregnancy",
}


# ------------------------------------------------------------------------ the shipped file

def test_shipped_knowledge_loads(kb):
    assert isinstance(kb, KnowledgeBase)
    assert kb.n_components > 0
    assert kb.sha256 and re.fullmatch(r"[0-9a-f]{64}", kb.sha256)


def test_shipped_knowledge_has_the_required_classes(kb):
    missing = REQUIRED_CLASSES - set(kb.class_ids)
    assert not missing, f"missing classes: {sorted(missing)}"
    assert len(kb.class_ids) == len(set(kb.class_ids))


def test_load_knowledge_with_an_explicit_path_matches_the_default(tmp_path, kb):
    path = tmp_path / "copy"
    shutil.copytree(KNOWLEDGE_DIR, path)
    copy_kb = load_knowledge(path)
    assert copy_kb.class_ids == kb.class_ids
    assert copy_kb.sha256 == kb.sha256
    np.testing.assert_array_equal(copy_kb.component_log_weight, kb.component_log_weight)


def _walk_src(node, path=""):
    """Yield (path, src, table) for every key named ``src`` anywhere in a parsed TOML document;
    ``table`` is the table holding the src (and the numbers it is the provenance of)."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "src":
                yield where, value, node
            else:
                yield from _walk_src(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_src(value, f"{path}[{i}]")


# The seed article, kept in the repository so that citations are checked on any machine;
# the workspace's original (shared/seed/, beside the repository) must be the same text.
SEED_TEXT_PATH = Path(__file__).resolve().parents[1] / "synthetic" / "knowledge" / "seed" / "leg-cramps-differential.txt"
ORIGINAL_SEED_PATH = Path(__file__).resolve().parents[2] / "shared" / "seed" / "leg-cramps-differential.txt"
# Keys whose values are numbers the src is the provenance of (knowledge base and schema).
NUMBER_KEYS = frozenset({"p", "levels", "mean", "median", "value", "rate", "reference", "hard"})

_SEED = re.compile(r"seed:\s*(\d+(?:\s*,\s*\d+)*)")  # seed:4 or seed:1,3
_ASSUMPTION = re.compile(r"assumption:\s*\S+")
# A figure: a percentage ("60 %", "60%") or a decimal number ("1.5"), not preceded by a letter,
# digit or dot (so "L4", "S1", reference numbers and years are not figures).
_FIGURE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?\s*%|\d+\.\d+)")


def _figures(text: str) -> set[str]:
    """The figures quoted in a text, normalised ("60 %" -> "60%"), citations left out."""
    return {re.sub(r"\s+", "", f) for f in _FIGURE.findall(_SEED.sub(" ", text))}


@functools.cache
def _seed_figures() -> frozenset[str] | None:
    """The figures the seed's text gives, or None when the seed file is not there."""
    if not SEED_TEXT_PATH.is_file():
        return None
    return frozenset(_figures(SEED_TEXT_PATH.read_text(encoding="utf-8")))


def _src_problem(src, carries_numbers: bool = False) -> str | None:
    """What is wrong with one src, or None.

    Any src cites the seed's references 1-9 or states 'assumption: <reason>'. A src on a
    table that carries numbers (``carries_numbers``) must say 'assumption:' unless it quotes
    a figure the seed literally gives ("seed:5 60 % versus 50 %"): a bare 'seed:N' names the
    finding, it does not give its probability. Figures quoted on the seed's side of a src
    (before 'assumption:') must be the seed's own.
    """
    if not isinstance(src, str) or not src.strip():
        return "empty or not text"
    cited = [int(n) for group in _SEED.findall(src) for n in group.split(",")]
    if any(not 1 <= n <= 9 for n in cited):
        return f"cites {cited}, the seed has references 1-9"
    assumption = _ASSUMPTION.search(src)
    if not cited and not assumption:
        return "neither seed:N nor 'assumption: <reason>'"
    seed_side = src[:assumption.start()] if assumption else src
    quoted = _figures(seed_side) if cited else set()
    seed_figures = _seed_figures() or frozenset()
    if quoted - seed_figures:
        return f"quotes {sorted(quoted - seed_figures)} as the seed's, the seed does not give them"
    if carries_numbers and not assumption and not quoted:
        return "carries numbers but cites only seed:N: add 'assumption: <reason>' (the seed gives no figure)"
    return None


def _document_problems(document) -> dict[str, str]:
    """{path of src: problem} over a parsed knowledge or schema document."""
    return {where: problem for where, src, table in _walk_src(document)
            if (problem := _src_problem(src, carries_numbers=bool(NUMBER_KEYS & set(table)))) is not None}


@pytest.mark.parametrize("path", [KNOWLEDGE_DIR, SCHEMA_PATH], ids=["knowledge", "schema"])
def test_every_src_cites_the_seed_or_states_an_assumption(path):
    import tomllib

    document = read_knowledge_document(path)[0] if path.is_dir() else tomllib.loads(path.read_text(encoding="utf-8"))
    sources = list(_walk_src(document))
    assert len(sources) >= 10  # the walk does find them
    assert sum(bool(NUMBER_KEYS & set(table)) for _, _, table in sources) >= 10  # and the numbers
    bad = _document_problems(document)
    assert not bad, bad


def test_the_seed_text_is_there_and_gives_its_figures():
    assert _seed_figures() is not None, f"the seed text is missing at {SEED_TEXT_PATH}"
    if ORIGINAL_SEED_PATH.is_file():
        assert SEED_TEXT_PATH.read_bytes() == ORIGINAL_SEED_PATH.read_bytes(), "the repository's seed copy differs"
    assert {"60%", "50%"} <= _seed_figures()
    assert not {"1", "2", "5", "1995", "2025"} & _seed_figures()  # citations and years are not figures


@pytest.mark.parametrize(
    ("src", "numbers", "ok"),
    [("seed:4", False, True), ("seed:1,3 names the test", False, True), ("seed:4, seed:1,3", False, True),
     ("assumption: typical adult interval", False, True), ("seed:12 hypokalemia", False, False),
     ("seed:0", False, False), ("seed:2, 13", False, False), ("from a textbook", False, False),
     ("assumption:", False, False), ("", False, False),
     # a table carrying numbers: a bare seed:N is not the provenance of a probability
     ("seed:4 burning feet", True, False), ("seed:4,6 exertional", True, False),
     ("seed:7 L4 root, knee reflex", True, False),
     ("seed:4 burning feet; assumption: rate (the seed names the finding, not its frequency)", True, True),
     ("assumption: typical adult interval; seed:1,3 name the test", True, True),
     ("assumption: 5 % of presentations", True, True),
     # ... unless it quotes a figure the seed gives, and only the seed's figures
     ("seed:5 60 % versus 50 %", True, True), ("seed:5 60% vs 50%", True, True),
     ("seed:1,2 up to 60 % of adults", True, True),
     ("seed:5 about half of patients", True, False),
     ("seed:5 odds ratio 1.5", True, False), ("seed:5 60 % vs 50 %: odds ratio 1.5", True, False),
     ("seed:2 70 % of pregnant women", True, False), ("seed:2 70 % of pregnant women", False, False),
     ("seed:5 60 % vs 50 %; assumption: their odds ratio of 1.5 diluted to about 1.3", True, True),
     ("seed:5 60 % vs 50 % (odds ratio 1.5); assumption: diluted to about 1.3", True, False),
     ("seed:2 commonly; assumption: 4 % of presentations", True, True)],
)
def test_src_checker_of_this_suite_tells_good_from_bad(src, numbers, ok):
    assert (_src_problem(src, carries_numbers=numbers) is None) is ok


def test_src_checker_flags_bare_seed_citations_only_on_tables_carrying_numbers():
    document = {
        "background": {"numbness": {"p": 0.08, "src": "seed:4 numbness"}},
        "classes": {"x": {"prior": {"value": 0.1, "src": "seed:1 most common"},
                          "age": {"mean": 40.0, "sd": 9.0, "src": "assumption: adults of any age"},
                          "findings": {"cramp_timing": {"levels": {"exertional": 1.0},
                                                        "src": "seed:4,6 exertional; assumption: near 1 by definition"}}}},
        "dependencies": {"diabetes": {"src": "seed:4", "when": {}}},
        "assessment": {"sections": {"history": {"rate": 0.8, "src": "seed:2 timing"}}},
    }
    assert set(_document_problems(document)) == {
        "background.numbness.src", "classes.x.prior.src", "assessment.sections.history.src"}


def test_every_numeric_distribution_in_the_document_has_a_src(knowledge_document):
    """Every table that carries a number (p, levels, mean, median, value, rate) carries a src."""
    number_keys = {"p", "levels", "mean", "median", "value", "rate"}
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            if number_keys & set(node) and "src" not in node and not path.endswith(".levels"):
                missing.append(path)
            for key, value in node.items():
                walk(value, f"{path}.{key}")

    walk(knowledge_document, "")
    assert not missing, missing


def test_every_finding_but_age_and_sex_has_a_background_distribution(kb, knowledge_document):
    background = knowledge_document["background"]
    for fid in kb.schema.ids:
        if fid in ("age", "sex"):
            assert fid not in background
        else:
            assert fid in background, fid
    assert set(background) <= set(kb.schema.ids)


def test_component_weights_sum_to_one(kb):
    weights = np.exp(kb.component_log_weight)
    assert np.isfinite(kb.component_log_weight).all()
    assert math.isclose(weights.sum(), 1.0, rel_tol=1e-12)


def test_class_priors_are_the_documented_weights_normalised(kb, knowledge_document):
    raw = {cid: c["prior"]["value"] for cid, c in knowledge_document["classes"].items()}
    total = sum(raw.values())
    for cls in kb.classes:
        assert cls.prior == pytest.approx(raw[cls.id] / total, rel=1e-12)
    per_class = np.bincount(kb.component_class, weights=np.exp(kb.component_log_weight), minlength=len(kb.classes))
    np.testing.assert_allclose(per_class, [c.prior for c in kb.classes], rtol=1e-10)


def test_profile_weights_sum_to_one_in_every_class(kb):
    for cls in kb.classes:
        assert sum(p.weight for p in cls.profiles) == pytest.approx(1.0, abs=1e-9), cls.id


def _expected_component_weights(document, edges):
    """(class, profile, band, sex) -> weight, from the document alone (scipy for the age normal;
    the declared age floor spreads that share of each profile over the bands its min-max touches)."""
    age_floor = document.get("floors", {}).get("age", 0.0)
    classes = document["classes"]
    total = sum(c["prior"]["value"] for c in classes.values())
    out = {}
    for cid, raw in classes.items():
        profiles = raw.get("profiles") or {"main": {"weight": {"value": 1.0}}}
        for pid, profile in profiles.items():
            age = profile.get("age", raw["age"])
            female = profile.get("female", raw["female"])["p"]
            lo, hi = age.get("min", edges[0]), age.get("max", edges[-1])
            dist = stats.truncnorm((lo - age["mean"]) / age["sd"], (hi - age["mean"]) / age["sd"], loc=age["mean"], scale=age["sd"])
            masses = np.diff(dist.cdf(np.asarray(edges, dtype=float)))
            start, stop = np.asarray(edges[:-1], dtype=float), np.asarray(edges[1:], dtype=float)
            inside = [s < hi and e > lo for s, e in zip(start, stop)]
            masses = (1 - age_floor) * masses / masses.sum() + age_floor * np.asarray(inside) / sum(inside)
            for band, mass in enumerate(masses):
                for sex, p_sex in enumerate((female, 1.0 - female)):
                    weight = raw["prior"]["value"] / total * profile["weight"]["value"] * mass * p_sex
                    if weight > 0:
                        out[(cid, pid, band, sex)] = weight
    return out


@pytest.mark.parametrize("which", ["shipped", "tiny"])
def test_component_weights_follow_priors_profiles_age_and_sex(which, kb, knowledge_document, tiny_kb, tiny_document):
    kb, document = (kb, knowledge_document) if which == "shipped" else (tiny_kb, tiny_document)
    expected = _expected_component_weights(document, document["demographics"]["age_band_edges"])
    got = {}
    for k in range(kb.n_components):
        ci, pid = kb.profiles[kb.component_profile[k]]
        assert ci == kb.component_class[k]
        key = (kb.class_ids[ci], pid, int(kb.component_band[k]), int(kb.component_sex[k]))
        assert key not in got, f"duplicate component {key}"
        got[key] = math.exp(kb.component_log_weight[k])
    assert set(got) == set(expected)
    keys = sorted(expected)
    np.testing.assert_allclose([got[k] for k in keys], [expected[k] for k in keys], rtol=1e-9, atol=1e-15)


# --------------------------------------------------- compiled tables follow the document

def _resolve(document, kb, k, fid):
    """The spec of finding ``fid`` in component ``k``: profile > class > background."""
    ci, pid = kb.profiles[kb.component_profile[k]]
    raw_class = document["classes"][kb.class_ids[ci]]
    profile = raw_class.get("profiles", {}).get(pid, {})
    for source in (profile.get("findings", {}), raw_class.get("findings", {}), document["background"]):
        if fid in source:
            return source[fid]
    raise AssertionError(f"no spec for {fid}")


def _at_age(spec, base, band_start):
    value = base
    for age, override in spec.get("by_age", []):
        if band_start >= age:
            value = override
    return value


def _level_vector(finding, spec, band_start):
    if finding.kind == "binary":
        p = _at_age(spec, spec["p"], band_start)
        return np.array([1.0 - p, p])
    levels = _at_age(spec, spec["levels"], band_start)
    return np.array([levels.get(lid, 0.0) for lid in finding.level_ids])


def _normal_params(spec, band_start):
    keys = ("mean", "sd") if spec["dist"] == "normal" else ("median", "log_sd")
    params = _at_age(spec, {key: spec[key] for key in keys}, band_start)
    loc, scale = params[keys[0]], params[keys[1]]
    return (loc if spec["dist"] == "normal" else math.log(loc)), scale


def _allowed(rule, band_start, band_stop, sex_id):
    low, high = rule.get("age", [-math.inf, math.inf])
    return band_start >= low and band_stop <= high and rule.get("sex") in (None, sex_id)


def _ruled_out_by_schema(finding, sex_id, start, stop) -> bool:
    """The schema's only_when: the other sex, or a band wholly outside the possible ages."""
    rule = finding.only_when
    if rule is None:
        return False
    wrong_sex = rule.sex is not None and sex_id != rule.sex
    return wrong_sex or (rule.age is not None and (stop - 1 < rule.age[0] or start > rule.age[1]))


def _check_table(table, finding, spec_of, kb, constraint=None, floor=0.0):
    """Compare one compiled table with the parameters resolved from the document: the
    constraint's forced level, the declared floor on every level, the schema's zeros."""
    expected = []
    for k in range(kb.n_components):
        band = kb.component_band[k]
        start, stop = kb.band_edges[band], kb.band_edges[band + 1]
        spec = spec_of(k)
        if finding.is_numeric:
            assert table.log_space == (spec["dist"] == "lognormal"), (finding.id, k)
            expected.append(_normal_params(spec, start))
            continue
        vector = _level_vector(finding, spec, start)
        sex_id = "female" if kb.component_sex[k] == 0 else "male"  # component_sex: 0 female, 1 male
        if constraint is not None and not _allowed(constraint, start, stop, sex_id):
            vector = np.zeros(len(finding.levels))
            vector[finding.code(constraint["otherwise"])] = 1.0
        vector = np.maximum(vector, floor)
        if _ruled_out_by_schema(finding, sex_id, start, stop):
            vector = np.eye(len(finding.levels))[finding.code(finding.only_when.otherwise)]
        expected.append(vector / vector.sum())
    expected = np.array(expected)
    if finding.is_numeric:
        assert isinstance(table, NormalTable)
        assert (table.low, table.high) == finding.hard
        np.testing.assert_allclose(table.loc, expected[:, 0], rtol=1e-12, err_msg=finding.id)
        np.testing.assert_allclose(table.scale, expected[:, 1], rtol=1e-12, err_msg=finding.id)
    else:
        assert isinstance(table, LevelTable)
        np.testing.assert_allclose(table.probs, expected, rtol=0, atol=1e-12, err_msg=finding.id)


@pytest.mark.parametrize("which", ["shipped", "tiny"])
def test_compiled_tables_follow_the_document(which, kb, knowledge_document, tiny_kb, tiny_document):
    kb, document = (kb, knowledge_document) if which == "shipped" else (tiny_kb, tiny_document)
    constraints = document.get("constraints", {})
    floor = document.get("floors", {}).get("probability", 0.0)
    dependencies = document.get("dependencies", {})
    child_parent = {child: parent for parent, raw in dependencies.items()
                    for specs in raw["when"].values() for child in specs}
    assert {c for kids in kb.children.values() for c in kids} == set(child_parent)
    for finding in kb.schema:
        table = kb.tables[finding.id]
        if finding.id == "age":
            assert isinstance(table, AgeTable)
            np.testing.assert_array_equal(table.band, kb.component_band)
            np.testing.assert_array_equal(table.edges, document["demographics"]["age_band_edges"])
            continue
        if finding.id == "sex":
            female = finding.code("female")
            np.testing.assert_array_equal(table.probs[:, female], (kb.component_sex == 0).astype(float))
            continue
        spec_of = lambda k, f=finding.id: _resolve(document, kb, k, f)  # noqa: E731
        if finding.id in child_parent:
            parent = child_parent[finding.id]
            assert isinstance(table, ConditionalTable) and table.parent == parent
            _check_table(table.default, finding, spec_of, kb, floor=floor)
            when = dependencies[parent]["when"]
            for code, level in enumerate(kb.schema[parent].level_ids):
                spec = when.get(level, {}).get(finding.id)
                if spec is None:
                    assert table.variants[code] is None
                else:
                    _check_table(table.variants[code], finding, lambda k, s=spec: s, kb, floor=floor)
        else:
            _check_table(table, finding, spec_of, kb, constraints.get(finding.id), floor)


def test_pregnancy_is_impossible_exactly_where_validation_refuses_it(kb):
    """The schema's only_when (women aged 10-64) is the one source of truth: the knowledge
    base gives a pregnancy probability zero for men and for age bands wholly outside 10-64,
    and a small but positive probability everywhere validation accepts one."""
    probs = kb.tables["pregnancy"].probs
    not_pregnant = kb.schema["pregnancy"].code("not_pregnant")
    start = kb.band_edges[kb.component_band]
    last_year = kb.band_edges[kb.component_band + 1] - 1
    low, high = kb.schema["pregnancy"].only_when.age
    refused = (kb.component_sex == 1) | (last_year < low) | (start > high)
    assert refused.any() and (~refused).any()
    np.testing.assert_array_equal(probs[refused, not_pregnant], 1.0)
    assert (probs[~refused, not_pregnant] < 1.0).all()
    for age in (low, low + 4, 47, 58, high, high + 0.5):  # accepted by validation, so possible
        case = validate_case({"sex": "female", "age": age, "pregnancy": "trimester_2"})
        assert np.isfinite(posterior_from_codes(case.codes(), kb)).all(), age
    for age in (low - 1, high + 1):  # refused by validation, and impossible under the knowledge base
        with pytest.raises(CaseError, match="pregnancy|Pregnancy"):
            validate_case({"sex": "female", "age": age, "pregnancy": "trimester_2"})
        codes = kb.schema.encode(pd.DataFrame({"sex": ["female"], "age": [float(age)], "pregnancy": ["trimester_2"]}))
        assert np.isnan(posterior_from_codes(codes.astype(float), kb)).all(), age


def test_assessment_panels_cover_every_finding_once(kb, knowledge_document):
    positions = [p for _, members in kb.panels for p in members]
    assert sorted(positions) == list(range(len(kb.schema)))
    rates = kb.assessment_rates()
    assert ((rates > 0) & (rates <= 1)).all()
    for name, panel in knowledge_document["assessment"]["panels"].items():
        for fid in panel["findings"]:
            assert rates[kb.schema.position(fid)] == panel["rate"], (name, fid)
    paneled = {fid for panel in knowledge_document["assessment"]["panels"].values() for fid in panel["findings"]}
    for finding in kb.schema:
        if finding.id not in paneled:
            assert rates[kb.schema.position(finding.id)] == knowledge_document["assessment"]["sections"][finding.section]["rate"]


def test_dependency_children_have_one_parent_and_parents_are_not_children(kb):
    children = [c for kids in kb.children.values() for c in kids]
    assert len(children) == len(set(children))
    assert not set(kb.children) & set(children)
    assert kb.children["hemodialysis"] and "egfr" in kb.children["hemodialysis"]


# ----------------------------------------------------------------------- the tiny fixture

def test_tiny_fixture_knowledge_loads(tiny_kb, tiny_document):
    assert tiny_kb.class_ids == tuple(tiny_document["classes"])
    assert set(tiny_kb.children) == {"hemodialysis", "diabetes"}


# ---------------------------------------------------------------------- broken knowledge

BROKEN_FIELDS = (
    "classes.nocturnal.findings.potassium.sd",
    "classes.nocturnal.findings.cramp_timing.levels",
    "classes.restless.findings.not_a_finding",
    "classes.restless.profiles",
    "classes.dialysis.findings.diabetes.src",
    "classes.dialysis.findings.cramps_with_dialysis.levels.sometimes",
    "background.urge_to_move.by_age[0]",
)


def test_broken_fixture_names_every_entry_and_field(broken_knowledge_path, tiny_schema):
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(broken_knowledge_path, schema=tiny_schema)
    message = str(error.value)
    assert message.startswith("broken_knowledge.toml: ")
    problems = message.removeprefix("broken_knowledge.toml: ").split("; ")
    for field in BROKEN_FIELDS:
        assert any(p.startswith(field + ":") for p in problems), f"{field} not reported in {message}"
    # nothing but the planted errors is reported
    assert len(problems) == len(BROKEN_FIELDS), problems
    assert "sum to 0.9" in message and "sum to 1.1" in message and "must be a positive number" in message


def test_broken_fixture_fails_against_the_shipped_schema_too(broken_knowledge_path):
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(broken_knowledge_path)
    message = str(error.value)
    for field in BROKEN_FIELDS:
        assert field in message


def test_invalid_toml_raises_knowledge_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("format_version = 1\n[classes.x\nname = \n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="bad.toml: not valid TOML"):
        load_knowledge(path)


def test_non_utf8_file_raises_knowledge_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "Crampes nocturnes été"\n'.encode("latin-1"))
    with pytest.raises(KnowledgeError, match="not valid TOML"):
        load_knowledge(path)


def test_shipped_document_deep_copy_parses(fresh_knowledge_document, kb):
    """The baseline of the mutation tests below: unmutated, the document is valid."""
    parsed = parse_knowledge(fresh_knowledge_document)
    assert parsed.class_ids == kb.class_ids


def _set(path, value):
    def edit(document):
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _delete(path):
    def edit(document):
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def _append_panel_member(document):
    document["assessment"]["panels"]["electrolytes"]["findings"].append("serum_unobtainium")


def _second_panel(document):
    document["assessment"]["panels"]["thyroid"]["findings"] = ["tsh", "potassium"]


def _drop_reference(document):
    del document["references"]["9"]


MUTATIONS = {
    "unknown-finding": (
        _set("classes.restless_legs.findings.serum_unobtainium", {"p": 0.5, "src": "seed:1"}),
        "classes.restless_legs.findings.serum_unobtainium", "unknown finding"),
    "unknown-level": (
        _set("classes.restless_legs.findings.cramp_timing.levels.after_lunch", 0.0),
        "classes.restless_legs.findings.cramp_timing.levels.after_lunch", "unknown level"),
    "levels-not-summing-to-1": (
        _set("classes.restless_legs.findings.cramp_timing.levels.nocturnal_at_rest", 0.5),
        "classes.restless_legs.findings.cramp_timing.levels", "sum to 1"),
    "src-without-seed-or-assumption": (
        _set("background.urge_to_move.src", "a textbook said so"),
        "background.urge_to_move.src", "must cite the seed"),
    "src-seed-12": (
        _set("classes.hypokalemia.findings.potassium.src", "seed:12 hypokalemia"),
        "classes.hypokalemia.findings.potassium.src", "12"),
    "src-missing": (
        _delete("classes.restless_legs.findings.urge_to_move.src"),
        "classes.restless_legs.findings.urge_to_move.src", "provenance"),
    "profile-weights-not-summing-to-1": (
        _set("classes.hypokalemia.profiles.diuretic.weight.value", 0.7),
        "classes.hypokalemia.profiles", "sum to 1"),
    "by-age-not-a-band-edge": (
        _set("background.joint_pain_stiffness.by_age", [[50, 0.25], [65, 0.35]]),
        "background.joint_pain_stiffness.by_age[0]", "band edges"),
    "by-age-not-increasing": (
        _set("background.joint_pain_stiffness.by_age", [[65, 0.35], [45, 0.25]]),
        "background.joint_pain_stiffness.by_age[1]", "increase"),
    "raloxifene-profile-allows-men": (
        _set("classes.medication_induced.profiles.raloxifene.female.p", 0.5),
        "classes.medication_induced.profiles.raloxifene.findings.med_raloxifene", "constraint"),
    "raloxifene-profile-allows-premenopausal-ages": (
        _set("classes.medication_induced.profiles.raloxifene.age",
             {"mean": 40.0, "sd": 9.0, "min": 15, "src": "assumption: a wrong age range"}),
        "classes.medication_induced.profiles.raloxifene.findings.med_raloxifene", "constraint"),
    "negative-sd": (
        _set("classes.hypokalemia.findings.potassium.sd", -0.3),
        "classes.hypokalemia.findings.potassium.sd", "positive"),
    "mean-outside-hard-range": (
        _set("classes.hypokalemia.findings.potassium.mean", 12.0),
        "classes.hypokalemia.findings.potassium.mean", "plausible range"),
    "lognormal-median-not-positive": (
        _set("classes.restless_legs.findings.ferritin.median", -5.0),
        "classes.restless_legs.findings.ferritin.median", "positive"),
    "mixed-distribution-family": (
        _set("classes.hypokalemia.findings.potassium", {"dist": "lognormal", "median": 3.0, "log_sd": 0.1, "src": "seed:3"}),
        "potassium", "same distribution family"),
    "probability-above-1": (
        _set("classes.restless_legs.findings.urge_to_move.p", 1.2),
        "classes.restless_legs.findings.urge_to_move.p", "probability"),
    "categorical-given-as-p": (
        _set("classes.restless_legs.findings.cramp_timing", {"p": 0.5, "src": "seed:1"}),
        "classes.restless_legs.findings.cramp_timing.p", "unknown field"),
    "missing-background": (
        _delete("background.ferritin"), "background.ferritin", "missing"),
    "age-as-class-finding": (
        _set("classes.restless_legs.findings.age", {"dist": "normal", "mean": 50.0, "sd": 10.0, "src": "seed:1"}),
        "classes.restless_legs.findings.age", "age and sex"),
    "unknown-class-field": (
        _set("classes.jia.colour", "red"), "classes.jia.colour", "unknown field"),
    "bad-icd10": (
        _set("classes.jia.icd10", "JIA"), "classes.jia.icd10", "ICD-10"),
    "prior-not-positive": (
        _set("classes.jia.prior.value", 0.0), "classes.jia.prior.value", "positive"),
    "age-sd-not-positive": (
        _set("classes.jia.age.sd", 0.0), "classes.jia.age.sd", "positive"),
    "age-max-not-a-band-edge": (
        _set("classes.jia.age.max", 20), "classes.jia.age", "band edges"),
    "female-not-a-probability": (
        _set("classes.jia.female.p", 1.5), "classes.jia.female.p", "probability"),
    "numeric-dependency-parent": (
        _set("dependencies.potassium", {"src": "seed:3", "when": {}}), "dependencies.potassium", "parent"),
    "child-with-two-parents": (
        _set("dependencies.diabetes.when.present.egfr", {"dist": "normal", "mean": 60.0, "sd": 10.0, "src": "seed:4"}),
        "dependencies.diabetes.when.present.egfr", "one parent"),
    "unknown-dependency-level": (
        _set("dependencies.diabetes.when.maybe", {}), "dependencies.diabetes.when.maybe", "unknown level"),
    "constraint-on-numeric": (
        _set("constraints.potassium", {"otherwise": "low", "src": "seed:3"}), "constraints.potassium", "binary or categorical"),
    "constraint-otherwise-unknown-level": (
        _set("constraints.pregnancy.otherwise", "never"), "constraints.pregnancy.otherwise", "level"),
    "panel-unknown-finding": (
        _append_panel_member, "assessment.panels.electrolytes.findings", "serum_unobtainium"),
    "finding-in-two-panels": (
        _second_panel, "assessment.panels.thyroid.findings", "already in another panel"),
    "rate-above-1": (
        _set("assessment.sections.history.rate", 1.5), "assessment.sections.history.rate", "probability"),
    "missing-reference": (
        _drop_reference, "references", "1-9"),
    "unknown-decision-kind": (
        _set("decisions", [{"cause": "x", "decision": "ignored", "into": "y", "reason": "seed:1"}]),
        "decisions[0].decision", "merged"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
def test_mutated_document_raises_knowledge_error_naming_the_field(fresh_knowledge_document, mutation):
    edit, field, words = MUTATIONS[mutation]
    edit(fresh_knowledge_document)
    with pytest.raises(KnowledgeError) as error:
        parse_knowledge(fresh_knowledge_document, source="mutated.toml")
    message = str(error.value)
    assert message.startswith("mutated.toml: ")
    problems = message.removeprefix("mutated.toml: ").split("; ")
    named = [p for p in problems if p.startswith(field)]
    assert named, f"{field!r} not named in: {message}"
    assert any(words in p for p in named), f"{words!r} not in: {named}"


def test_several_problems_are_reported_together(fresh_knowledge_document):
    for name in ("unknown-finding", "negative-sd", "missing-background", "src-seed-12"):
        MUTATIONS[name][0](fresh_knowledge_document)
    with pytest.raises(KnowledgeError) as error:
        parse_knowledge(fresh_knowledge_document)
    for name in ("unknown-finding", "negative-sd", "missing-background", "src-seed-12"):
        assert MUTATIONS[name][1] in str(error.value)


@pytest.mark.parametrize(
    ("edit", "words"),
    [(_set("format_version", 2), "format_version"),
     (_set("demographics.age_band_edges", [1, 45, 15, 106]), "age_band_edges"),
     (_set("demographics.age_band_edges", [18, 45, 106]), "age_band_edges"),
     (_set("constraint", {"pregnancy": {"sex": "female"}}), "constraint: unknown top-level table")],
    ids=["format-version", "edges-not-increasing", "edges-not-covering-ages", "misspelt-top-level-table"],
)
def test_structural_errors_raise_knowledge_error(fresh_knowledge_document, edit, words):
    edit(fresh_knowledge_document)
    with pytest.raises(KnowledgeError, match=words):
        parse_knowledge(fresh_knowledge_document)


def test_key_findings_list_every_entry_of_the_class_with_its_source_most_distinctive_first(kb):
    from crampdx.synthetic.summary import cited_references, key_findings

    frame = key_findings(kb, "pad_claudication")
    entry = kb.document["classes"]["pad_claudication"]
    n_entries = len(entry.get("findings", {})) + sum(len(p.get("findings", {})) for p in entry.get("profiles", {}).values())
    assert len(frame) == n_entries
    assert frame["source"].str.len().gt(0).all()
    assert "seed:6" in " ".join(frame["source"])
    # an absent pedal pulse or a low ABI tells more about PAD than, say, the sex ratio
    top = " ".join(frame["finding"].head(5))
    assert "pulse" in top.lower() or "ankle-brachial" in top.lower()
    assert any(ref.startswith("[6] ") and len(ref) > 6 for ref in cited_references(kb, "pad_claudication"))
