"""The explanation service's contract with its clients: the OpenAPI document's examples (real
answers of the live model), options refused in the query string, a body sent without the JSON
Content-Type, and the size limits' sentences."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from crampdx import DISCLAIMER
from crampdx.service.app import create_app
from crampdx.service.guards import MAX_CDS_BODY_BYTES

TOKEN = "a-test-token-of-enough-length"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(tiny_diagnoser):
    with TestClient(create_app(tiny_diagnoser), raise_server_exceptions=False) as c:
        assert c.app.state.ready.wait(timeout=60)  # the warm-up computes the answers' examples
        yield c


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _request_example(spec: dict, operation: dict):
    media = operation["requestBody"]["content"]["application/json"]
    if media.get("examples"):
        return next(iter(media["examples"].values()))["value"]
    if "example" in media:
        return media["example"]
    examples = _resolve(spec, media["schema"]).get("examples")
    return examples[0] if examples else None


def _abbreviates(example, answer) -> bool:
    """Whether ``example`` is ``answer`` with lists cut to their first entries and text to its first lines."""
    if isinstance(example, dict):
        return isinstance(answer, dict) and example.keys() == answer.keys() and all(
            _abbreviates(example[k], answer[k]) for k in example)
    if isinstance(example, list):
        return isinstance(answer, list) and len(example) <= len(answer) and (bool(example) or not answer) and all(
            _abbreviates(e, a) for e, a in zip(example, answer))
    if isinstance(example, str) and isinstance(answer, str):
        return answer.startswith(example) and bool(example or not answer)
    return example == answer


def test_every_route_is_documented_with_an_example_that_is_its_real_answer(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for route in ("/v1/assess", "/v1/explain", "/v1/next-findings", "/v1/findings", "/v1/classes", "/v1/model",
                  "/healthz", "/readyz", "/cds-services", "/cds-services/crampdx-leg-cramps"):
        assert route in paths, route
    assert _resolve(spec, {"$ref": "#/components/schemas/HookRequest"}).get("examples")
    assert DISCLAIMER in spec["info"]["description"]
    assert client.get("/docs").status_code == 200
    checked = []
    for path, operations in paths.items():
        if path.startswith("/cds-services"):
            continue
        for method, operation in operations.items():
            request = None
            if "requestBody" in operation:
                request = _request_example(spec, operation)
                assert request, f"{method} {path}: no request example"
            examples = operation["responses"]["200"].get("content", {}).get("application/json", {}).get("examples")
            assert examples, f"{method} {path}: no example of its 200 answer"
            example = next(iter(examples.values()))
            assert example["summary"] and example["value"]
            answer = client.request(method, path, json=request)
            assert answer.status_code == 200, answer.text
            real, shown = answer.json(), example["value"]
            if "created" in real:  # an assessment's time
                shown = {**shown, "created": real["created"]}
            if "abbreviated" in example["summary"]:
                assert _abbreviates(shown, real) and shown != real, f"{method} {path}"
            else:
                assert shown == real, f"{method} {path}"
            checked.append((method, path))
    assert len(checked) == 8 and ("post", "/v1/assess") in checked


def test_the_abbreviation_check_can_fail():
    assert _abbreviates({"a": [1, 2], "t": "# Card"}, {"a": [1, 2, 3], "t": "# Card\nmore"})
    assert not _abbreviates({"a": [2]}, {"a": [1, 2]}) and not _abbreviates({"a": [1]}, {"a": [1], "b": 2})
    assert not _abbreviates({"t": "other"}, {"t": "# Card"})


@pytest.mark.parametrize("path, query, body, named", [
    ("/v1/assess", "top=2", {"findings": {}}, {"top": '{"top": 2, ...}'}),
    ("/v1/assess", "explain=hypokalemia&next_findings=1", {"findings": {}},
     {"explain": '{"explain": "hypokalemia", ...}', "next_findings": '{"next_findings": 1, ...}'}),
    ("/v1/explain", "cause=hypokalemia", {"findings": {}, "cause": "pregnancy"}, {"cause": '{"cause": "hypokalemia", ...}'}),
    ("/v1/next-findings", "k=2", {"findings": {}}, {"k": '{"k": 2, ...}'}),
    ("/v1/assess", "verbose=1", {"findings": {}}, {"verbose": "not an option of this route"}),
])
def test_options_in_the_query_string_are_refused_saying_they_go_in_the_body(client, path, query, body, named):
    response = client.post(f"{path}?{query}", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert "JSON body, not the query string" in answer["error"] and answer["disclaimer"] == DISCLAIMER
    assert answer["problems"].keys() == named.keys()
    for name, words in named.items():
        assert words in answer["problems"][name]


@pytest.mark.parametrize("path", ["/v1/findings", "/v1/classes", "/v1/model"])
def test_get_routes_take_no_query_parameters(client, path):
    response = client.get(f"{path}?lang=en")
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == {"lang": f"is not an option: GET {path} takes no query parameters"}
    assert client.get(f"{path}?").status_code == 200


def test_the_query_check_leaves_the_other_routes_alone_and_comes_after_the_token(client, tiny_diagnoser):
    for path in ("/healthz?probe=1", "/readyz?probe=1", "/openapi.json?v=1", "/docs?v=1", "/cds-services?v=1"):
        assert client.get(path).status_code == 200, path
    with TestClient(create_app(tiny_diagnoser, token=TOKEN), raise_server_exceptions=False) as c:
        assert c.post("/v1/assess?top=2", json={"findings": {}}).status_code == 401
        authorised = c.post("/v1/assess?top=2", json={"findings": {}}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert authorised.status_code == 422 and "top" in authorised.json()["problems"]


@pytest.mark.parametrize("headers, sent_as", [
    ({"content-type": "text/plain"}, "sent as text/plain"),
    ({"content-type": "application/x-www-form-urlencoded"}, "curl -d"),  # what curl -d sends
    ({}, "without a Content-Type header"),
])
@pytest.mark.parametrize("path", ["/v1/assess", "/v1/explain", "/cds-services/crampdx-leg-cramps"])
def test_a_body_not_sent_as_json_is_told_the_content_type_in_one_sentence(client, headers, sent_as, path):
    response = client.post(path, content=b'{"findings": {}}', headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert sent_as in error and "send it with the header 'Content-Type: application/json'" in error
    assert error.count(". ") == 0 and "dictionary" not in response.text
    assert "Content-Type: application/json" in response.json()["problems"]["body"]


def test_the_size_limits_say_what_to_send_instead(client):
    big = b"{" + b" " * (MAX_CDS_BODY_BYTES + 10) + b"}"
    declared = client.post("/cds-services/crampdx-leg-cramps", content=big, headers=JSON)
    assert declared.status_code == 413
    assert declared.json()["error"] == "the request body is larger than 10 MB; send fewer records (prefetch)"

    def chunks():  # no Content-Length: FastAPI counts the body as it arrives
        yield b"{"
        for _ in range(MAX_CDS_BODY_BYTES // 2**16 + 2):
            yield b" " * 2**16
        yield b"}"
    streamed = client.post("/cds-services/crampdx-leg-cramps", content=chunks(), headers=JSON)
    assert streamed.status_code == 413 and streamed.json()["error"] == declared.json()["error"]
    case = client.post("/v1/assess", content=b"{" + b" " * 70_000 + b"}", headers=JSON)
    assert case.json()["error"] == "the request body is larger than 64 kB; send one case per request"


def test_a_smaller_case_limit_is_the_one_quoted_whether_the_size_was_declared_or_streamed(tiny_diagnoser):
    body = b"{" + b" " * 20_000 + b"}"

    def chunks():
        yield from (body[i:i + 4096] for i in range(0, len(body), 4096))
    with TestClient(create_app(tiny_diagnoser, max_body_bytes=8 * 1024), raise_server_exceptions=False) as small:
        for content in (body, chunks()):
            response = small.post("/v1/assess", content=content, headers=JSON)
            assert response.status_code == 413, response.text
            assert response.json()["error"] == "the request body is larger than 8 kB; send one case per request"
