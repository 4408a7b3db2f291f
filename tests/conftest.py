"""Shared fixtures: the shipped schema and knowledge base, a tiny schema + knowledge base
for exhaustive checks, and session-scoped generated frames (generated once per run)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from crampdx.contract.schema_file import SCHEMA_PATH, load_schema, parse_schema
from crampdx.synthetic import compiled_evidence, generate, load_knowledge, posterior, read_knowledge_document
from crampdx.synthetic.load import KNOWLEDGE_DIR

FIXTURES = Path(__file__).parent / "fixtures"
TINY_KNOWLEDGE = FIXTURES / "tiny_knowledge.toml"
BROKEN_KNOWLEDGE = FIXTURES / "broken_knowledge.toml"

# The tiny schema is a subset of the shipped one (same definitions, so the fixtures cannot
# drift from the real levels and ranges).
TINY_FINDINGS = (
    "cramp_timing", "urge_to_move", "cramps_with_dialysis", "pedal_pulses",
    "potassium", "ferritin", "egfr", "glucose",
    "age", "sex", "pregnancy", "hemodialysis", "diabetes",
)

# Large samples for the statistical tests; seeds are fixed so a run is reproducible, and
# every tolerance is derived from a standard error so the tests hold for other seeds too.
N_CASES = 100_000
CASES_SEED = 20240611
COMPLETE_SEED = 977


# Tests that use these fixtures draw 100,000 cases: they are marked slow (run by the README's
# test command and CI; `python -m pytest -q -m "not slow"` leaves them out for a quick run).
_SLOW_FIXTURES = {"cases", "complete_cases", "cases_posterior"}


def pytest_collection_modifyitems(items):
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def schema():
    return load_schema()


@pytest.fixture(scope="session")
def kb():
    return load_knowledge()


@pytest.fixture(scope="session")
def schema_document():
    """The shipped schema as parsed TOML (tests deep-copy it before editing)."""
    return tomllib.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def knowledge_document():
    """The shipped knowledge file as parsed TOML (tests deep-copy it before editing)."""
    return read_knowledge_document(KNOWLEDGE_DIR)[0]


@pytest.fixture(scope="session")
def tiny_schema(schema_document):
    document = copy.deepcopy(schema_document)
    document["findings"] = {fid: document["findings"][fid] for fid in TINY_FINDINGS}
    return parse_schema(document, source="tiny schema")


@pytest.fixture(scope="session")
def tiny_kb(tiny_schema):
    return load_knowledge(TINY_KNOWLEDGE, schema=tiny_schema)


@pytest.fixture(scope="session")
def tiny_knowledge_path():
    return TINY_KNOWLEDGE


@pytest.fixture(scope="session")
def broken_knowledge_path():
    return BROKEN_KNOWLEDGE


@pytest.fixture(scope="session")
def tiny_document():
    return tomllib.loads(TINY_KNOWLEDGE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def cases(kb):
    """100,000 cases with the knowledge base's missingness (the calibration sample)."""
    return generate(N_CASES, seed=CASES_SEED, knowledge=kb)


@pytest.fixture(scope="session")
def full_workup_cases(kb):
    """100,000 cases all given the full workup: the panels at their declared rates, nothing
    thinned by a brief workup (for the panel-level assessment rates)."""
    return generate(N_CASES, seed=CASES_SEED + 1, knowledge=kb, workup="full")


@pytest.fixture(scope="session")
def complete_cases(kb):
    """100,000 cases with every finding reported (for class-conditional rates)."""
    return generate(N_CASES, seed=COMPLETE_SEED, knowledge=kb, complete=True)


@pytest.fixture(scope="session")
def cases_posterior(cases, kb):
    """Exact posterior of ``cases`` (the slowest fixture, about 5 s)."""
    return posterior(cases, knowledge=kb)


@pytest.fixture
def fresh_knowledge_document(knowledge_document):
    """A private deep copy of the shipped knowledge document to mutate."""
    return copy.deepcopy(knowledge_document)



# ------------------------------------------------------------------ a tiny trained model

TINY_MODEL_SEED = 3


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A small trained artifact (a few seconds): enough to test loading, prediction and the
    CLI; the accuracy targets are measured by bench/bench_training.py on the default model."""
    from crampdx.training.train import train
    from crampdx.training.fit import Hyperparameters

    directory = tmp_path_factory.mktemp("artifacts") / "tiny"
    train(directory, cases=8000, seed=TINY_MODEL_SEED, hyperparameters=Hyperparameters(max_iter=50, learning_rate=0.2),
          evaluation_cases=3000, report=lambda line: None)
    return directory


@pytest.fixture(scope="session")
def tiny_diagnoser(tiny_model_dir):
    from crampdx.model.diagnoser import Diagnoser

    return Diagnoser.load(tiny_model_dir)


def possible_case(mapping: dict) -> dict:
    """A drawn case without a pregnancy its sex or age rules out (validate_case refuses those;
    tests/test_case.py tests that on its own), for property-based tests of valid cases."""
    from crampdx.contract.case import impossible_combinations

    if "pregnancy" in impossible_combinations(mapping):
        return {**mapping, "pregnancy": "not_pregnant"}
    return mapping


@pytest.fixture(autouse=True, scope="module")
def atypical_check_on_numpy_after_each_module():
    """A module that starts the atypical check's compiled loop (a service's warm-up, the
    two-path tests) leaves the next module on the numpy path, as a new process would be."""
    yield
    compiled_evidence.EVIDENCE_KERNEL.reset()


@pytest.fixture
def numba_without_disk_cache(monkeypatch):
    """numba as on a read-only install run by a user without a home: ``cache=True`` refused
    (it raises RuntimeError where it finds no writable cache folder)."""
    import numba

    njit = numba.njit

    def refusing_cache(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", refusing_cache)
