"""What stands between a request and the Diagnoser: size limit, bearer token, error shapes.

Every error the service returns is JSON ``{"error": one sentence, "problems": {...},
"disclaimer": ...}``: a bad case is 422 with ``problems`` naming every bad field in the
same words as the command line; options sent in a ``/v1`` query string (which would be
ignored) and a body sent without ``Content-Type: application/json`` are 422 saying what to send
instead; an oversized body 413; an unknown route 404; a missing or wrong token 401. Nothing
in a response ever carries a traceback or a server path: an unexpected error is logged on
the server and answered with a 500 sentence.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from typing import Any, Mapping

import pydantic_core

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crampdx import DISCLAIMER
from crampdx.contract import CaseError, SchemaError
from crampdx.contract.casejson import strict_json

__all__ = ["CompactJSONResponse", "DeclaredBodyLimit", "DisclaimerHeader", "MAX_BODY_BYTES", "MAX_CDS_BODY_BYTES", "QueryStringError",
           "StrictJSONRoute", "error_response", "install_error_handlers", "refuse_query_string", "token_matches"]

DISCLAIMER_HEADER = "X-Crampdx-Disclaimer"
MAX_BODY_BYTES = 64 * 1024
# A CDS Hooks prefetch carries a patient's records (up to 200 Observations of 1-3 kB each, and
# more): the limit of `crampdx predict --fhir`.
MAX_CDS_BODY_BYTES = 10 * 1024 * 1024
logger = logging.getLogger("crampdx.service")


class CompactJSONResponse(JSONResponse):
    """Starlette's JSON response rendered by pydantic-core (already there under FastAPI): an
    assessment (~23 kB) in ~35 µs where the standard library's encoder took ~150 µs, 5 % of a
    request's CPU. Floats keep their shortest round-trip digits (``7.885e-05`` is written
    ``0.00007885``: the same number). As strict as Starlette's (``allow_nan=False``): a body
    whose text holds ``NaN`` or ``Infinity`` is rendered again by the standard library, which
    refuses a real one (an error, answered 500) and passes the words inside strings.

    Examples
    --------
    >>> CompactJSONResponse({"p": 7.885e-05, "cause": "Hypokalemia", "ok": [True, None]}).body
    b'{"p":0.00007885,"cause":"Hypokalemia","ok":[true,null]}'
    >>> CompactJSONResponse({"label": "NaN in a string is text"}).body
    b'{"label":"NaN in a string is text"}'
    >>> CompactJSONResponse({"p": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: Out of range float values are not JSON compliant...
    """

    def render(self, content: Any) -> bytes:
        body = pydantic_core.to_json(content)
        if b"NaN" in body or b"Infinity" in body:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
        return body


def error_response(status: int, error: str, problems: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one JSON shape of every error."""
    body: dict[str, Any] = {"error": error, "problems": dict(problems or {}), "disclaimer": DISCLAIMER}
    return CompactJSONResponse(body, status_code=status, headers={DISCLAIMER_HEADER: DISCLAIMER, **dict(headers or {})})


def _field(location: tuple) -> str:
    """The request field an error is about (pydantic adds union member names such as ``int``)."""
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return parts[0] if parts else "body"


def _not_sent_as_json(error: RequestValidationError) -> bool:
    """Whether the body was not read as JSON because its Content-Type is not JSON (FastAPI then
    hands the raw bytes to the model, and pydantic asks for "a valid dictionary")."""
    return any(tuple(item.get("loc", ())) == ("body",) and isinstance(item.get("input"), (bytes, bytearray))
               for item in error.errors())


def _send_json_sentence(content_type: str | None) -> str:
    """The 422 of a body sent without a JSON Content-Type, in one sentence.

    Examples
    --------
    >>> _send_json_sentence("application/x-www-form-urlencoded")
    "the body was sent as application/x-www-form-urlencoded, so it was not read as JSON (curl -d sends that unless told otherwise): send it with the header 'Content-Type: application/json'"
    >>> _send_json_sentence(None)
    "the body was sent without a Content-Type header, so it was not read as JSON: send it with the header 'Content-Type: application/json'"
    """
    kind = (content_type or "").split(";")[0].strip()[:80]
    sent = f"sent as {kind}" if kind else "sent without a Content-Type header"
    curl = " (curl -d sends that unless told otherwise)" if kind == "application/x-www-form-urlencoded" else ""
    return f"the body was {sent}, so it was not read as JSON{curl}: send it with the header 'Content-Type: application/json'"


def _validation_problems(error: RequestValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for item in error.errors():
        if item.get("type") == "json_invalid":
            problems["body"] = f"is not valid JSON ({item.get('ctx', {}).get('error', 'unreadable')})"
        elif item.get("type") == "extra_forbidden":
            problems[_field(item["loc"])] = "is not an option of this route; see /docs for the accepted fields"
        elif item.get("type") == "missing":
            problems[_field(item["loc"])] = "is required"
        else:
            problems.setdefault(_field(item["loc"]), item.get("msg", "is not valid"))
    return problems


def install_error_handlers(app, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Turn every error into the one JSON shape (and never a traceback); ``max_body_bytes`` is
    the /v1 routes' limit that a 413 quotes."""

    @app.exception_handler(CaseError)
    async def bad_case(request: Request, error: CaseError):
        return error_response(422, "the case has findings crampdx cannot use; correct the fields named in problems",
                              error.problems)

    @app.exception_handler(QueryStringError)
    async def query_string(request: Request, error: QueryStringError):
        return error_response(422, error.error, error.problems)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError):
        if _not_sent_as_json(error):
            return error_response(422, _send_json_sentence(request.headers.get("content-type")),
                                  {"body": "is read as JSON only when sent with the header 'Content-Type: application/json'"})
        problems = _validation_problems(error)
        return error_response(422, "the request does not fit this route; correct the fields named in problems "
                                   "(see /docs)", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if error.status_code == 404:
            message = f"no such route: {request.method} {request.url.path[:80]}; the routes are listed at /docs"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path[:80]}; see /docs"
        elif error.status_code == 413:  # a body without Content-Length, counted as it arrived
            cds = request.url.path.startswith("/cds-services")
            message = _too_large(MAX_CDS_BODY_BYTES if cds else max_body_bytes, cds=cds)
        elif error.status_code == 422:  # the strict JSON reader refused the body
            return error_response(422, "the request body is not JSON crampdx reads; correct it", {"body": str(error.detail)})
        elif error.status_code == 400:
            message = "the request body could not be read as JSON (too deeply nested or malformed)"
        else:
            message = str(error.detail)
        return error_response(error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "crampdx failed on this request because of an internal error; "
                                   "the server's log has the details")


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (constant-time).

    Examples
    --------
    >>> token_matches("Bearer s3cret", "s3cret"), token_matches("Bearer wrong", "s3cret"), token_matches(None, "s3cret")
    (True, False, False)
    """
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _too_large(limit: int, *, cds: bool) -> str:
    """The 413 sentence: a /v1 body holds one case, a CDS Hooks body a patient's prefetched records.

    Examples
    --------
    >>> _too_large(MAX_BODY_BYTES, cds=False)
    'the request body is larger than 64 kB; send one case per request'
    >>> _too_large(MAX_CDS_BODY_BYTES, cds=True)
    'the request body is larger than 10 MB; send fewer records (prefetch)'
    >>> _too_large(1000, cds=False)
    'the request body is larger than 1,000 bytes; send one case per request'
    """
    size = f"{limit // 2**20} MB" if limit >= 2**20 and limit % 2**20 == 0 else \
        f"{limit // 1024} kB" if limit % 1024 == 0 else f"{limit:,} bytes"
    advice = "send fewer records (prefetch)" if cds else "send one case per request"
    return f"the request body is larger than {size}; {advice}"


class QueryStringError(Exception):
    """Options sent in the query string: answered 422 naming each one (:func:`refuse_query_string`)."""

    def __init__(self, error: str, problems: dict[str, str]):
        super().__init__(error)
        self.error, self.problems = error, problems


_SHOWN_PARAMETERS = 20


def _body_value(value: str) -> str:
    """A query-string value as it would be written in a JSON body.

    Examples
    --------
    >>> _body_value("2"), _body_value("true"), _body_value("hypokalemia"), _body_value("NaN")
    ('2', 'true', '"hypokalemia"', '"NaN"')
    """
    try:
        parsed = json.loads(value) if len(value) <= 40 else value
    except ValueError:
        parsed = value
    number = isinstance(parsed, bool) or (isinstance(parsed, (int, float)) and math.isfinite(parsed))
    return json.dumps(parsed if number else value[:80])


def refuse_query_string(request: Request) -> None:
    """Refuse a ``/v1`` request with query parameters (they would be silently ignored): a POST
    route reads its options from the JSON body, a GET route takes none. Raises
    :class:`QueryStringError` naming each parameter."""
    if not request.scope.get("query_string"):
        return
    parameters = list(request.query_params.multi_items())[:_SHOWN_PARAMETERS]
    if not parameters:  # only separators, such as "?&"
        return
    route = request.scope.get("route")
    options = getattr(route, "body_options", frozenset())
    where = f"{request.method} {request.url.path[:80]}"
    problems: dict[str, str] = {}
    for name, value in parameters:
        if request.method == "GET":
            problems[name[:80]] = f"is not an option: {where} takes no query parameters"
        elif name in options:
            problems[name] = (f"is read from the JSON body, not the query string; "
                              f"send {{\"{name}\": {_body_value(value)}, ...}}")
        else:
            problems[name[:80]] = "is not an option of this route; its options go in the JSON body (see /docs)"
    if request.method == "GET":
        raise QueryStringError(f"{where} takes no query parameters; leave out those named in problems", problems)
    raise QueryStringError("the options of this route are read from the JSON body, not the query string; "
                           "move those named in problems into the body", problems)


class DeclaredBodyLimit:
    """ASGI middleware: a declared ``Content-Length`` over the route's limit is answered 413 in
    the service's JSON shape before anything is read (FastAPI's own per-route limit, which also
    counts chunked bodies as they arrive, would answer in plain text). ``cds_limit`` applies
    under ``/cds-services``, ``limit`` everywhere else."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, cds_limit: int = MAX_CDS_BODY_BYTES):
        self.app, self.limit, self.cds_limit = app, limit, cds_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            cds = scope.get("path", "").startswith("/cds-services")
            limit = self.cds_limit if cds else self.limit
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None and not declared.isdigit():
                await error_response(400, "the Content-Length header is not a number")(scope, receive, send)
                return
            if declared is not None and int(declared) > limit:
                await error_response(413, _too_large(limit, cds=cds))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class DisclaimerHeader:
    """ASGI middleware: every response carries the disclaimer in :data:`DISCLAIMER_HEADER`
    (a plain ASGI wrapper: Starlette's ``BaseHTTPMiddleware`` runs each request through an
    extra task and stream, a fixed cost on every request)."""

    _header = (DISCLAIMER_HEADER.lower().encode("latin-1"), DISCLAIMER.encode("latin-1"))

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_disclaimer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != self._header[0]]
                message = {**message, "headers": [*headers, self._header]}
            await send(message)

        await self.app(scope, receive, send_with_disclaimer)


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = strict_json(await self.body())
            except SchemaError as error:  # FastAPI re-raises an HTTPException met while reading the body
                raise HTTPException(422, detail=str(error)) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read as case files are (:func:`crampdx.contract.casejson.strict_json`):
    no NaN, no key given twice, no number beyond the float range, nesting checked first.
    ``body_options`` are the fields of its body (named when sent in the query string instead)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model = getattr(getattr(self.body_field, "field_info", None), "annotation", None)
        self.body_options = frozenset(getattr(model, "model_fields", None) or ())

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict(request: Request):
            return await handler(_StrictJSONRequest(request.scope, request.receive))
        return strict
