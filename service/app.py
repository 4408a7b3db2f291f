"""The explanation service as one ASGI application (FastAPI).

:func:`create_app` takes a Diagnoser that is already loaded and verified (``crampdx serve``
refuses to start without one), so a running service always has a model. The model's
forest and SHAP explainers are warmed up in a background thread after start-up, which then
computes the examples of every answer the OpenAPI document shows (real answers of this
model); ``/readyz`` answers 503 until they are, ``/healthz`` as soon as the process serves.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Iterable

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crampdx import DISCLAIMER, __version__
from crampdx.model.batch_forest import compile_kernels
from crampdx.model.diagnoser import Diagnoser
from crampdx.service import api, cds_hooks
from crampdx.service.guards import (DISCLAIMER_HEADER, CompactJSONResponse, MAX_BODY_BYTES, MAX_CDS_BODY_BYTES, DeclaredBodyLimit, DisclaimerHeader,
                                    error_response, install_error_handlers, refuse_query_string, token_matches)
from crampdx.synthetic.summary import knowledge_summary
from crampdx.synthetic.typicality import compile_atypical_check

__all__ = ["DISCLAIMER_HEADER", "create_app", "public_manifest"]

logger = logging.getLogger("crampdx.service")

_bearer = HTTPBearer(auto_error=False, description="the token in the file given to `crampdx serve --token-file`")


class _Unauthorised(Exception):
    pass


def public_manifest(manifest: dict) -> dict:
    """The manifest as the service shows it: the finding schema is left to ``/v1/findings``."""
    return {key: value for key, value in manifest.items() if key != "schema"}


def _model_card(diagnoser: Diagnoser) -> str | None:
    card = Path(diagnoser.path_) / "model_card.md" if diagnoser.path_ is not None else None
    return card.read_text(encoding="utf-8") if card is not None and card.is_file() else None


def _warm_up(state, ready: threading.Event) -> None:
    """Compile the forest and the atypical check and build the explainers before the first real
    request needs them; then compute the OpenAPI document's examples of the answers (~20 ms of
    CPU on the default model), so /readyz answers 200 once /docs shows them."""
    try:
        compile_atypical_check(state.diagnoser.knowledge_)
        if state.diagnoser.batch_forest_ is not None:  # one case or a ranged one's draws: compiled
            compile_kernels(state.diagnoser.batch_forest_)
        # Every cause explained once: each cause's explainer is built on its first explanation.
        state.diagnoser.assess({}, explain=len(state.diagnoser.class_ids_), next_findings=1)
    except Exception:  # /readyz then stays 503: say why in the log
        logger.exception("warming up the model failed; /readyz will answer 503")
        return
    try:
        state.response_examples = api.response_examples(state)
    except Exception:  # e.g. a model whose schema has not the example's findings: documented without them
        logger.exception("computing the OpenAPI examples failed; /docs shows the answers without examples")
    ready.set()


def create_app(diagnoser: Diagnoser, *, token: str | None = None, cors_origins: Iterable[str] = (),
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The service around one loaded Diagnoser.

    Parameters
    ----------
    diagnoser : Diagnoser
        Loaded and verified (:meth:`Diagnoser.load`).
    token : str, optional
        When given, every ``/v1`` and ``/cds-services`` route needs ``Authorization: Bearer <token>``.
    cors_origins : iterable of str
        Browser origins allowed to call the service (none by default: CORS stays off).
    max_body_bytes : int
        Larger request bodies are refused with 413.
    """
    ready = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=_warm_up, args=(app.state, ready), name="crampdx-warm-up", daemon=True).start()
        yield

    async def require_token(request: Request,
                            credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if token is not None and not token_matches(request.headers.get("authorization"), token):
            raise _Unauthorised

    async def require_token_and_no_query(request: Request,
                                         credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        """The /v1 guard: the token first, then options sent in the query string are refused
        (one dependency: each costs a few µs a request)."""
        await require_token(request, credentials)
        refuse_query_string(request)

    app = FastAPI(
        title="crampdx explanation service",
        version=__version__,
        description=(f"**{DISCLAIMER}**\n\nRank the causes of leg cramps for one case, explain each cause finding "
                     "by finding (SHAP contributions that add up to the score), suggest what to ask or examine "
                     "next, and answer CDS Hooks `patient-view` requests with cards."),
        lifespan=lifespan,
        default_response_class=CompactJSONResponse,
        # FastAPI's OpenTelemetry hooks: without an SDK configured they record nothing, at
        # ~18 µs a request (15 % of a /healthz)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.diagnoser = diagnoser
    app.state.ready = ready
    app.state.knowledge_summary = knowledge_summary(diagnoser.knowledge_)
    app.state.public_manifest = public_manifest(diagnoser.manifest_)
    app.state.model_card = _model_card(diagnoser)
    app.state.response_examples = None  # computed by the warm-up
    install_error_handlers(app, max_body_bytes)

    @app.exception_handler(_Unauthorised)
    async def unauthorised(request: Request, error: _Unauthorised):
        return error_response(401, "this service needs a bearer token: send the header "
                                   "'Authorization: Bearer <token>' with the token its operator gave you",
                              headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(require_token)]
    # FastAPI's own limit on each route also counts chunked bodies as they arrive; its 413
    # then reaches the service's error handlers (the app-wide limit would answer in plain text).
    app.include_router(api.router, dependencies=[Depends(require_token_and_no_query)], max_body_size=max_body_bytes)
    app.include_router(cds_hooks.router, dependencies=guarded, max_body_size=MAX_CDS_BODY_BYTES)
    app.include_router(api.health_router)

    origins = list(cors_origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=[DISCLAIMER_HEADER])
    app.add_middleware(DeclaredBodyLimit, limit=max_body_bytes, cds_limit=MAX_CDS_BODY_BYTES)
    app.add_middleware(DisclaimerHeader)
    _document(app)
    return app


def _document(app: FastAPI) -> None:
    """Add the assessment schema's definitions to the OpenAPI document's components (the 200
    answer of /v1/assess refers to them), and the examples of the answers once the warm-up has
    computed them (FastAPI builds the document at the first request for it, and keeps it)."""
    generate = app.openapi

    def openapi() -> dict:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(api.ASSESSMENT_COMPONENTS)
        if app.state.response_examples is not None:
            api.document_examples(document, app.state.response_examples)
        return document

    app.openapi = openapi
