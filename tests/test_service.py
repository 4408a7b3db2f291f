"""The explanation service's JSON API: the routes, their errors, the guards.

Driven in-process with FastAPI's TestClient on the tiny model; tests/test_service_server.py
starts the real server and tests/test_cds_hooks.py the CDS Hooks routes.
"""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pydantic_core
import pytest
from fastapi.testclient import TestClient

from crampdx import DISCLAIMER
from crampdx.compiled import LazyKernel
from crampdx.contract import CaseError, validate_case
from crampdx.model import batch_forest
from crampdx.model.assessment import assessment_json_schema
from crampdx.service.app import DISCLAIMER_HEADER, create_app
from crampdx.service.guards import MAX_BODY_BYTES
from crampdx.synthetic import compiled_evidence
from crampdx.service.requests import EXAMPLE_FINDINGS

TOKEN = "a-test-token-of-enough-length"


@pytest.fixture(scope="module")
def client(tiny_diagnoser):
    with TestClient(create_app(tiny_diagnoser), raise_server_exceptions=False) as c:
        yield c


def _no_leak(response) -> None:
    text = response.text
    assert "Traceback" not in text and "/tmp/" not in text and "site-packages" not in text


def test_assess_returns_the_versioned_assessment_with_the_disclaimer(client, tiny_diagnoser):
    response = client.post("/v1/assess", json={"findings": EXAMPLE_FINDINGS, "top": 5, "explain": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    jsonschema.validate(body, assessment_json_schema())
    assert body["disclaimer"] == DISCLAIMER and response.headers[DISCLAIMER_HEADER] == DISCLAIMER
    assert len(body["differential"]) == 5 and len(body["explanations"]) == 2
    direct = tiny_diagnoser.assess(EXAMPLE_FINDINGS, top=5, explain=2)
    assert [c["id"] for c in body["differential"]] == [c.id for c in direct.shown_causes]
    assert body["differential"][0]["probability"] == pytest.approx(direct.causes[0].probability, abs=1e-12)
    assert body["next_best_findings"] is None  # not asked for


def test_assess_with_next_findings_and_named_causes(client):
    response = client.post("/v1/assess", json={"findings": EXAMPLE_FINDINGS, "explain": ["hypokalemia", "pregnancy"],
                                               "next_findings": 3})
    body = response.json()
    assert response.status_code == 200, response.text
    assert [e["cause_id"] for e in body["explanations"]] == ["hypokalemia", "pregnancy"]
    assert len(body["next_best_findings"]) == 3
    assert all(n["expected_information_gain"] >= 0 for n in body["next_best_findings"])


def test_a_bad_case_is_422_naming_every_field_in_the_words_of_the_command_line(client, tiny_diagnoser):
    bad = {"potassium": 40, "cramp_timming": "exertional", "sex": "female", "age": 70, "pregnancy": "trimester_2"}
    response = client.post("/v1/assess", json={"findings": bad})
    assert response.status_code == 422
    with pytest.raises(CaseError) as direct:
        validate_case(bad, schema=tiny_diagnoser.schema)
    body = response.json()
    assert body["problems"] == direct.value.problems and len(body["problems"]) >= 3
    assert body["disclaimer"] == DISCLAIMER and body["error"].endswith("named in problems")
    _no_leak(response)


@pytest.mark.parametrize("request_body, field", [
    ({"findings": {}, "top": 0}, "top"),
    ({"findings": {}, "next_findings": 99}, "next_findings"),
    ({"findings": {}, "verbose": True}, "verbose"),
    ({"findings": {}, "explain": ["no_such_cause"]}, "explain"),
    ({"findings": {}, "explain": -1}, "explain"),
    ({"top": 3}, "findings"),
    ({"findings": ["potassium", 2.5]}, "findings"),
    ({"findings": {}, "top": "3"}, "top"),
    ({"findings": {}, "atypical": "yes"}, "atypical"),
    ({"findings": {}, "top": 10_000}, "top"),
])
def test_a_bad_option_is_422_naming_it(client, request_body, field):
    response = client.post("/v1/assess", json=request_body)
    assert response.status_code == 422, response.text
    assert field in response.json()["problems"], response.json()
    _no_leak(response)


def test_explain_adds_up_to_the_score_and_names_an_unknown_cause(client):
    response = client.post("/v1/explain", json={"findings": EXAMPLE_FINDINGS, "cause": "hypokalemia"})
    assert response.status_code == 200, response.text
    e = response.json()["explanation"]
    total = e["base_value"] + sum(c["contribution"] for c in e["contributions"]) + e["not_assessed"]
    assert math.isclose(total, e["value"], abs_tol=1e-9)
    assert {c["finding_id"] for c in e["contributions"]} == set(EXAMPLE_FINDINGS)
    unknown = client.post("/v1/explain", json={"findings": EXAMPLE_FINDINGS, "cause": "gout"})
    assert unknown.status_code == 422 and "cause" in unknown.json()["problems"]


def test_next_findings_suggests_findings_not_entered(client):
    response = client.post("/v1/next-findings", json={"findings": EXAMPLE_FINDINGS, "k": 4})
    assert response.status_code == 200, response.text
    found = response.json()["next_best_findings"]
    assert len(found) == 4 and not {n["finding_id"] for n in found} & set(EXAMPLE_FINDINGS)
    assert all(n["expected_information_gain"] >= 0 for n in found)


def test_the_reference_routes(client, tiny_diagnoser):
    findings = client.get("/v1/findings").json()
    assert [f["id"] for f in findings["findings"]] == [f.id for f in tiny_diagnoser.schema.findings]
    potassium = next(f for f in findings["findings"] if f["id"] == "potassium")
    assert potassium["unit"] == "mmol/L"
    classes = client.get("/v1/classes").json()["classes"]
    assert {c["id"] for c in classes} == set(tiny_diagnoser.class_ids_)
    assert math.isclose(sum(c["prior"] for c in classes), 1.0, abs_tol=1e-4)
    assert all({"name", "icd10", "prior_src"} <= set(c) for c in classes)
    model = client.get("/v1/model").json()
    assert model["identity"]["model_sha256"] == tiny_diagnoser.manifest_["model_sha256"]
    assert "schema" not in model["manifest"] and "metrics" in model["manifest"]
    assert model["model_card"].startswith("#") and DISCLAIMER in json.dumps(model)


def test_health_and_readiness(client):
    assert client.get("/healthz").json()["status"] == "ok"
    client.app.state.ready.wait(timeout=60)
    assert client.get("/readyz").status_code == 200


def test_the_warm_up_compiles_the_atypical_check(tiny_diagnoser, monkeypatch):
    """Once ready, the service's atypical checks take the compiled loop (synthetic/compiled_evidence.py),
    compiled by the warm-up, not by a request in the event loop (numba compiles at a loop's first
    call, once per kind of argument)."""
    fresh = LazyKernel(compiled_evidence.EVIDENCE_KERNEL.function, helpers=compiled_evidence.EVIDENCE_KERNEL.helpers)
    monkeypatch.setattr(compiled_evidence, "EVIDENCE_KERNEL", fresh)  # as in a new process
    with TestClient(create_app(tiny_diagnoser), raise_server_exceptions=False) as c:
        assert c.app.state.ready.wait(timeout=60) and fresh.started and len(fresh.get().signatures) == 1
        for findings in ({"potassium": 2.9, "age": 70, "med_diuretic": "yes"}, {"potassium": 2.9, "hemodialysis": "yes"}):
            assert c.post("/v1/assess", json={"findings": findings}).json()["atypical"]["reference_cases"] > 0
        assert len(fresh.get().signatures) == 1


def test_the_warm_up_compiles_the_forest_loops_and_requests_add_no_compilation(tiny_diagnoser, monkeypatch):
    """Once ready, one case (the few-rows loop) and a case with a result known only as a range
    (its draws: lanes of rows) are scored in compiled code compiled by the warm-up, for one kind
    of argument each, with the scores scikit-learn gives."""
    few = LazyKernel(batch_forest._score_few_rows, helpers=batch_forest.FEW_ROWS_KERNEL.helpers)
    rows = LazyKernel(batch_forest._score_rows, helpers=batch_forest.SCORE_KERNEL.helpers)
    monkeypatch.setattr(batch_forest, "FEW_ROWS_KERNEL", few)  # as in a new process
    monkeypatch.setattr(batch_forest, "SCORE_KERNEL", rows)
    with TestClient(create_app(tiny_diagnoser), raise_server_exceptions=False) as c:
        assert c.app.state.ready.wait(timeout=60) and few.started and rows.started
        assert len(few.get().signatures) == len(rows.get().signatures) == 1
        for findings in ({"potassium": 2.9, "age": 70}, {"potassium": "low", "age": 70}):
            answer = c.post("/v1/assess", json={"findings": findings, "top": 25})
            assert answer.status_code == 200, answer.text
        assert len(few.get().signatures) == len(rows.get().signatures) == 1
    codes = tiny_diagnoser.case({"potassium": 2.9, "age": 70}).codes().reshape(1, -1)
    expected = tiny_diagnoser.estimator_.decision_function(codes) / tiny_diagnoser.temperature_
    assert np.array_equal(tiny_diagnoser.scores(codes), expected)  # the compiled path, to the bit


def test_unknown_routes_and_methods_are_json_errors(client):
    missing = client.get("/v2/assess")
    assert missing.status_code == 404 and "no such route" in missing.json()["error"]
    assert client.get("/v1/assess").status_code == 405
    _no_leak(missing)


def test_oversized_bodies_are_refused_before_they_are_read(client):
    big = json.dumps({"findings": {"notes": "x" * (MAX_BODY_BYTES + 10)}})
    response = client.post("/v1/assess", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "64 kB" in response.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"findings": {"notes": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}}'
    streamed = client.post("/v1/assess", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text


@pytest.mark.parametrize("raw", [b'{"findings": {"potassium": 2.5', b"[" * 50_000, b"\xff\xfe not json"])
def test_malformed_or_deeply_nested_json_is_one_sentence(client, raw):
    response = client.post("/v1/assess", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"] and response.json()["disclaimer"] == DISCLAIMER
    _no_leak(response)


def test_an_internal_error_is_a_sentence_without_traceback_or_path(tiny_diagnoser, monkeypatch):
    app = create_app(tiny_diagnoser)

    def broken(*args, **kwargs):
        raise RuntimeError("boom in /srv/secret/crampdx/model.py")
    monkeypatch.setattr(app.state, "diagnoser", type("Broken", (), {
        "schema": tiny_diagnoser.schema, "class_ids_": tiny_diagnoser.class_ids_, "assess": broken})())
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.post("/v1/assess", json={"findings": {}})
    assert response.status_code == 500 and "internal error" in response.json()["error"]
    assert "secret" not in response.text and "boom" not in response.text


def test_a_token_guards_the_routes_but_not_health(tiny_diagnoser):
    with TestClient(create_app(tiny_diagnoser, token=TOKEN), raise_server_exceptions=False) as c:
        assert c.post("/v1/assess", json={"findings": {}}).status_code == 401
        wrong = c.post("/v1/assess", json={"findings": {}}, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert c.get("/cds-services").status_code == 401
        ok = c.post("/v1/assess", json={"findings": {}}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200


def test_cors_is_off_unless_an_origin_is_configured(tiny_diagnoser):
    preflight = {"Origin": "https://ehr.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(tiny_diagnoser)) as c:
        assert "access-control-allow-origin" not in c.options("/v1/assess", headers=preflight).headers
        assert "access-control-allow-origin" not in c.get("/v1/classes", headers={"Origin": "https://ehr.example"}).headers
    with TestClient(create_app(tiny_diagnoser, cors_origins=["https://ehr.example"])) as c:
        allowed = c.options("/v1/assess", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://ehr.example"
        other = c.options("/v1/assess", headers={**preflight, "Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("raw, words", [
    (b'{"findings": {"potassium": NaN}}', "NaN"),
    (b'{"findings": {"potassium": 2.5, "potassium": 3.9}}', "given twice"),
    (b'{"findings": {"potassium": 1' + b"0" * 400 + b'}}', "beyond the range"),
])
def test_the_body_is_read_as_strictly_as_a_case_file(client, raw, words):
    response = client.post("/v1/assess", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert words in response.json()["problems"]["body"]


def test_one_cause_id_can_be_explained_by_name(client):
    response = client.post("/v1/assess", json={"findings": EXAMPLE_FINDINGS, "explain": "hypokalemia"})
    assert response.status_code == 200 and response.json()["explanations"][0]["cause_id"] == "hypokalemia"


def test_errors_before_the_routes_carry_the_disclaimer_header(client):
    big = client.post("/v1/assess", content=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.headers[DISCLAIMER_HEADER] == DISCLAIMER


def test_before_the_model_is_warm_requests_wait_in_a_thread_and_health_checks_still_answer(tiny_diagnoser):
    """While the warm-up holds the explainer (here: its lock, held by the test), a /v1 request
    waits in a worker thread, not in the event loop, so /readyz answers 503 at once; the
    request is answered when the explainer is free."""
    import threading

    app = create_app(tiny_diagnoser)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert app.state.ready.wait(60)
        app.state.ready.clear()
        lock = tiny_diagnoser.attribution_._lock
        lock.acquire()
        answers = []
        try:
            waiting = threading.Thread(target=lambda: answers.append(c.post("/v1/assess", json={"findings": EXAMPLE_FINDINGS})))
            waiting.start()
            waiting.join(0.5)
            assert waiting.is_alive()  # held up by the explainer
            health = []  # asked from a thread, so that a blocked event loop fails the test instead of hanging it
            probe = threading.Thread(target=lambda: health.extend([c.get("/readyz").status_code, c.get("/healthz").status_code]))
            probe.start()
            probe.join(10)
            assert health == [503, 200]
        finally:
            lock.release()
        waiting.join(30)
        app.state.ready.set()
    assert answers and answers[0].status_code == 200, answers


def test_the_assessment_schema_in_the_openapi_document_resolves(client):
    """The 200 answer of /v1/assess is described by the assessment's JSON Schema, whose
    references point into the OpenAPI document's components."""
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/v1/assess"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    refs = []

    def collect(node):
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(schema)
    collect(spec.get("components", {}))
    assert refs
    for ref in refs:
        target = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_an_app_served_without_its_lifespan_still_answers(tiny_diagnoser):
    """A server that skips the lifespan (no warm-up, so never "ready") still answers, in the slow lane."""
    c = TestClient(create_app(tiny_diagnoser), raise_server_exceptions=False)  # not entered: no lifespan
    response = c.post("/v1/assess", json={"findings": EXAMPLE_FINDINGS})
    assert response.status_code == 200, response.text
    assert c.get("/readyz").status_code == 503


def test_the_assess_body_is_the_assessment_record_as_compact_json(client, tiny_diagnoser):
    """The record of Assessment.to_dict, every float the same double (the time it was made
    aside), in UTF-8 JSON without spaces (pydantic-core's), for generated cases, a range,
    several explanations."""
    from crampdx.synthetic import generate

    frame = generate(12, seed=41).drop(columns="etiology")
    cases = [{k: v.item() if hasattr(v, "item") else v for k, v in row.dropna().items()} for _, row in frame.iterrows()]
    for k, case in enumerate([*cases, {"potassium": "low", "age": 80, "gangrene": "present"}]):
        options = {"top": 2 + k % 9, "explain": k % 4, "atypical": False}
        response = client.post("/v1/assess", json={"findings": case, **options})
        assert response.status_code == 200, response.text
        record = tiny_diagnoser.assess(case, **options).to_dict()
        created = json.loads(response.content)["created"]
        assert json.loads(response.content) == {**record, "created": created}
        assert response.content == pydantic_core.to_json({**record, "created": created})
