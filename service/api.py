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

__all__ = ["ASSESSMENT_COMPONENTS", "compute", "router", "health_router"]

router = APIRouter(prefix="/v1", tags=["crampdx"], route_class=StrictJSONRoute)
health_router = APIRouter(tags=["health"])

_ERRORS = {
    401: {"description": "a bearer token is required (the service was started with --token-file)"},
    413: {"description": "the body is larger than 64 kB"},
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


@router.post("/assess", responses={200: _ASSESSMENT_RESPONSE, **_ERRORS}, response_class=CompactJSONResponse,
             summary="Rank, explain and advise on one case")
async def assess(body: AssessRequest, request: Request) -> CompactJSONResponse:
    """The whole assessment: ranked causes, red flags, explanations, atypical check and (when
    asked) the next best findings, as the versioned `crampdx-assessment` JSON
    (`model/assessment.schema.json`): the record `crampdx predict --json` prints, every number
    the same double."""
    diagnoser = _diagnoser(request)
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
    record = await compute(request, lambda: diagnoser.assess(case, top=body.top, explain=explain, next_findings=body.next_findings,
                                                             atypical=body.atypical).to_dict(), slow=slow)
    # Returned as a response, not a dict: the record is already JSON-ready (a returned dict
    # would be validated and encoded again by FastAPI).
    return CompactJSONResponse(record)


@router.post("/explain", responses=_ERRORS, summary="Why one cause has its probability, finding by finding")
async def explain(body: ExplainRequest, request: Request) -> dict:
    """SHAP contributions of every entered finding to one cause's score, with the average case's
    score and one line for everything not assessed; they add up exactly to the score, whose
    softmax over the causes is the probability shown."""
    diagnoser = _diagnoser(request)
    case = diagnoser.case(body.findings)
    if body.cause not in diagnoser.class_ids_:
        raise CaseError({"cause": _unknown_cause(body.cause)})
    explanation = await compute(request, lambda: diagnoser.explain(case, body.cause).to_dict(), slow=bool(case.intervals))
    return {**_about(diagnoser, case), "explanation": explanation}


@router.post("/next-findings", responses=_ERRORS, summary="What to ask or examine next")
async def next_findings(body: NextFindingsRequest, request: Request) -> dict:
    """The findings not yet entered whose answer is expected to narrow the differential most
    (expected information gain in bits), with the chance that the top cause changes."""
    diagnoser = _diagnoser(request)
    case = diagnoser.case(body.findings)
    found = await compute(request, lambda: diagnoser.next_best_findings(case, body.k), slow=True)
    return {**_about(diagnoser, case), "next_best_findings": [n.to_dict() for n in found]}


@router.get("/findings", summary="The findings a case can hold")
async def findings(request: Request) -> dict:
    """Ids, labels, kinds, levels, units, reference and plausible ranges, sections."""
    return {"disclaimer": DISCLAIMER, **_diagnoser(request).schema.to_dict()}


@router.get("/classes", summary="The causes crampdx ranks")
async def classes(request: Request) -> dict:
    """Ids, names, ICD-10 codes, priors and where each prior comes from."""
    return {"disclaimer": DISCLAIMER, **request.app.state.knowledge_summary}


@router.get("/model", summary="The model: manifest, metrics and model card")
async def model(request: Request) -> dict:
    """What was trained, on what, and how it measured against the exact posterior."""
    return {"disclaimer": DISCLAIMER, "identity": _diagnoser(request).identity.to_dict(),
            "manifest": request.app.state.public_manifest, "model_card": request.app.state.model_card}


@health_router.get("/healthz", summary="The process is up")
async def healthz() -> dict:
    return {"status": "ok", "disclaimer": DISCLAIMER}


@health_router.get("/readyz", summary="The model is loaded and warmed up",
                   responses={503: {"description": "still warming up"}})
async def readyz(request: Request):
    if not request.app.state.ready.is_set():
        return error_response(503, "crampdx is still warming up the model; try again in a few seconds")
    return {"status": "ready", "disclaimer": DISCLAIMER}
