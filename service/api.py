"""The ``/v1`` routes: assess, explain, next findings, and what the model knows.

Stateless, like a case file: every request carries the whole case. Routes are ``async``:
the usual request (a few milliseconds) computes in the event loop. The work is CPU-bound
and holds the GIL, so a process computes one request at a time whatever its threads, and
handing each request to a worker thread and back cost about as much CPU again as the
assessment (measured with bench/bench_service.py). Requests that may take long (next best
findings, results known only as a range, more than three explanations) and every request
before the model is warmed up (the warm-up holds the explainer's lock) go to a worker
thread instead, one at a time (:func:`compute`), so the loop keeps answering ``/healthz``,
``/readyz`` and quick requests meanwhile. Requests run side by side in ``crampdx serve
--workers N`` processes.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import anyio
from fastapi import APIRouter, Request

from crampdx import DISCLAIMER
from crampdx.contract import CaseError
from crampdx.model.assessment import assessment_json_schema
from crampdx.model.diagnoser import Diagnoser
from crampdx.service.guards import CompactJSONResponse, StrictJSONRoute, error_response
from crampdx.service.requests import AssessRequest, ExplainRequest, NextFindingsRequest

__all__ = ["ASSESSMENT_COMPONENTS", "compute", "document_examples", "health_router", "response_examples", "router"]

router = APIRouter(prefix="/v1", tags=["crampdx"], route_class=StrictJSONRoute)
health_router = APIRouter(tags=["health"])

_ERRORS = {
    401: {"description": "a bearer token is required (the service was started with --token-file)"},
    413: {"description": "the body is larger than the service's limit (64 kB unless configured); the error names it"},
    422: {"description": "a field is wrong: `problems` names each one (the same words as `crampdx predict`)"},
}


def _in_components(node: Any) -> Any:
    """A JSON Schema node with its ``#/$defs/X`` references pointed at OpenAPI components."""
    if isinstance(node, dict):
        return {key: (value.replace("#/$defs/", "#/components/schemas/assessment.") if key == "$ref" else _in_components(value))
                for key, value in node.items() if key not in ("$schema", "$id")}
    if isinstance(node, list):
        return [_in_components(value) for value in node]
    return node


_ASSESSMENT_SCHEMA = assessment_json_schema()
# The assessment schema's definitions, as OpenAPI components (app.py adds them to the document).
ASSESSMENT_COMPONENTS = {f"assessment.{name}": _in_components(definition)
                         for name, definition in _ASSESSMENT_SCHEMA.pop("$defs", {}).items()}
_ASSESSMENT_RESPONSE = {"description": "the assessment (`crampdx-assessment` JSON, `model/assessment.schema.json`)",
                        "content": {"application/json": {"schema": _in_components(_ASSESSMENT_SCHEMA)}}}


def _diagnoser(request: Request) -> Diagnoser:
    return request.app.state.diagnoser


def _unknown_cause(cause_id: str) -> str:
    return f"unknown cause {cause_id[:80]!r}; the causes are listed at GET /v1/classes"


T = TypeVar("T")
# At most this many explanations count as a quick request (each walks its cause's trees in SHAP).
QUICK_EXPLANATIONS = 3


async def compute(request: Request, work: Callable[[], T], *, slow: bool) -> T:
    """Run ``work`` in the event loop, or, when ``slow`` or before the model is warmed up, in a
    worker thread of the app's slow lane (one at a time)."""
    state = request.app.state
    if slow or not state.ready.is_set():
        if getattr(state, "slow_lane", None) is None:  # made in the loop that serves (no await in between)
            state.slow_lane = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(work, limiter=state.slow_lane)
    return work()


def _about(diagnoser: Diagnoser, case) -> dict[str, Any]:
    return {"disclaimer": DISCLAIMER, "model": diagnoser.identity.to_dict(), "findings": case.to_dict()}


def _assess_work(diagnoser: Diagnoser, body: AssessRequest) -> tuple[Callable[[], dict], bool]:
    """An assess request checked: the work that answers it, and whether it is slow."""
    case = diagnoser.case(body.findings)
    explain = [body.explain] if isinstance(body.explain, str) else body.explain
    if isinstance(explain, list):
        unknown = [c for c in explain if c not in diagnoser.class_ids_]
        if unknown:
            raise CaseError({"explain": _unknown_cause(unknown[0])})
    elif explain < 0:
        raise CaseError({"explain": "must be a number of causes (0 or more) or a list of cause ids"})
    slow = bool(body.next_findings) or bool(case.intervals) or (
        len(explain) if isinstance(explain, list) else explain) > QUICK_EXPLANATIONS
    return (lambda: diagnoser.assess(case, top=body.top, explain=explain, next_findings=body.next_findings,
                                     atypical=body.atypical).to_dict()), slow


def _explain_work(diagnoser: Diagnoser, body: ExplainRequest) -> tuple[Callable[[], dict], bool]:
    case = diagnoser.case(body.findings)
    if body.cause not in diagnoser.class_ids_:
        raise CaseError({"cause": _unknown_cause(body.cause)})
    return (lambda: {**_about(diagnoser, case), "explanation": diagnoser.explain(case, body.cause).to_dict()}), bool(case.intervals)


def _next_findings_work(diagnoser: Diagnoser, body: NextFindingsRequest) -> tuple[Callable[[], dict], bool]:
    case = diagnoser.case(body.findings)
    return (lambda: {**_about(diagnoser, case),
                     "next_best_findings": [n.to_dict() for n in diagnoser.next_best_findings(case, body.k)]}), True


@router.post("/assess", responses={200: _ASSESSMENT_RESPONSE, **_ERRORS}, response_class=CompactJSONResponse,
             summary="Rank, explain and advise on one case")
async def assess(body: AssessRequest, request: Request) -> CompactJSONResponse:
    """The whole assessment: ranked causes, red flags, explanations, atypical check and (when
    asked) the next best findings, as the versioned `crampdx-assessment` JSON
    (`model/assessment.schema.json`): the record `crampdx predict --json` prints, every number
    the same double."""
    work, slow = _assess_work(_diagnoser(request), body)
    # Returned as a response, not a dict: the record is already JSON-ready (a returned dict
    # would be validated and encoded again by FastAPI).
    return CompactJSONResponse(await compute(request, work, slow=slow))


@router.post("/explain", responses=_ERRORS, summary="Why one cause has its probability, finding by finding")
async def explain(body: ExplainRequest, request: Request) -> dict:
    """SHAP contributions of every entered finding to one cause's score, with the average case's
    score and one line for everything not assessed; they add up exactly to the score, whose
    softmax over the causes is the probability shown."""
    work, slow = _explain_work(_diagnoser(request), body)
    return await compute(request, work, slow=slow)


@router.post("/next-findings", responses=_ERRORS, summary="What to ask or examine next")
async def next_findings(body: NextFindingsRequest, request: Request) -> dict:
    """The findings not yet entered whose answer is expected to narrow the differential most
    (expected information gain in bits), with the chance that the top cause changes."""
    work, slow = _next_findings_work(_diagnoser(request), body)
    return await compute(request, work, slow=slow)


def _findings_body(state) -> dict:
    return {"disclaimer": DISCLAIMER, **state.diagnoser.schema.to_dict()}


def _classes_body(state) -> dict:
    return {"disclaimer": DISCLAIMER, **state.knowledge_summary}


def _model_body(state) -> dict:
    return {"disclaimer": DISCLAIMER, "identity": state.diagnoser.identity.to_dict(),
            "manifest": state.public_manifest, "model_card": state.model_card}


def _healthy() -> dict:
    return {"status": "ok", "disclaimer": DISCLAIMER}


def _ready() -> dict:
    return {"status": "ready", "disclaimer": DISCLAIMER}


@router.get("/findings", summary="The findings a case can hold")
async def findings(request: Request) -> dict:
    """Ids, labels, kinds, levels, units, reference and plausible ranges, sections."""
    return _findings_body(request.app.state)


@router.get("/classes", summary="The causes crampdx ranks")
async def classes(request: Request) -> dict:
    """Ids, names, ICD-10 codes, priors and where each prior comes from."""
    return _classes_body(request.app.state)


@router.get("/model", summary="The model: manifest, metrics and model card")
async def model(request: Request) -> dict:
    """What was trained, on what, and how it measured against the exact posterior."""
    return _model_body(request.app.state)


@health_router.get("/healthz", summary="The process is up")
async def healthz() -> dict:
    return _healthy()


@health_router.get("/readyz", summary="The model is loaded and warmed up",
                   responses={503: {"description": "still warming up"}})
async def readyz(request: Request):
    if not request.app.state.ready.is_set():
        return error_response(503, "crampdx is still warming up the model; try again in a few seconds")
    return _ready()


# Lists in the examples of the long answers are cut to their first entries.
SHOWN_ENTRIES = 3
_CARD_LINES = 6


def _first_entries(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _first_entries(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_first_entries(item) for item in value[:SHOWN_ENTRIES]]
    return value


def _request_example(model) -> Any:
    return model.model_validate(model.model_config["json_schema_extra"]["examples"][0])


def response_examples(state) -> dict[tuple[str, str], dict]:
    """The 200 answer of every ``/v1`` route and health check, as OpenAPI examples computed by
    the live model: the POST routes' answers to their request examples, the long answers cut
    to their first entries (said in the summary). (path, method) -> ``{"summary", "value"}``.
    Takes ~20 ms of CPU on the default model once warmed up (app.py computes them in the
    warm-up thread, off the event loop)."""
    diagnoser = state.diagnoser
    answers = {path: work(diagnoser, _request_example(model))[0]()
               for path, work, model in (("/v1/assess", _assess_work, AssessRequest), ("/v1/explain", _explain_work, ExplainRequest),
                                         ("/v1/next-findings", _next_findings_work, NextFindingsRequest))}
    cut = f"cut to their first {SHOWN_ENTRIES} entries"
    schema, summary = _findings_body(state), _classes_body(state)
    about_model = _first_entries(_model_body(state))
    if about_model["model_card"]:
        about_model["model_card"] = "\n".join(about_model["model_card"].splitlines()[:_CARD_LINES])
    return {
        ("/v1/assess", "post"): {"summary": "the assessment of the request example", "value": answers["/v1/assess"]},
        ("/v1/explain", "post"): {"summary": "the explanation of the request example", "value": answers["/v1/explain"]},
        ("/v1/next-findings", "post"): {"summary": "the next findings for the request example",
                                        "value": answers["/v1/next-findings"]},
        ("/v1/findings", "get"): {"summary": f"abbreviated to the first {SHOWN_ENTRIES} of the {len(schema['findings'])} findings",
                                  "value": {**schema, "findings": schema["findings"][:SHOWN_ENTRIES]}},
        ("/v1/classes", "get"): {"summary": f"abbreviated to the first {SHOWN_ENTRIES} of the {len(summary['classes'])} causes",
                                 "value": {**summary, "classes": summary["classes"][:SHOWN_ENTRIES]}},
        ("/v1/model", "get"): {"summary": f"abbreviated: lists {cut}, the model card to its first {_CARD_LINES} lines",
                               "value": about_model},
        ("/healthz", "get"): {"summary": "the process is up", "value": _healthy()},
        ("/readyz", "get"): {"summary": "the model is warmed up", "value": _ready()},
    }


def document_examples(document: dict, examples: dict[tuple[str, str], dict]) -> None:
    """Put ``examples`` (:func:`response_examples`) in an OpenAPI document as the 200 answers' examples."""
    for (path, method), example in examples.items():
        answer = document["paths"][path][method]["responses"]["200"]
        answer.setdefault("content", {}).setdefault("application/json", {})["examples"] = {"example": example}
