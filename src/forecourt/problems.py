"""RFC 9457 problem+json rendering of errors and validation failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecourt.errors import AppError, FieldError, RateLimited

PROBLEM = "application/problem+json"


class ProblemResponse(Response):
    """An RFC 9457 body serialised with orjson."""

    media_type = PROBLEM

    def render(self, content: Any) -> bytes:
        """Serialise the problem document."""
        return orjson.dumps(content)


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    """Render an RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": f"https://forecourt.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in errors]
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return ProblemResponse(body, status_code=status, headers=headers)


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


async def _app_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, AppError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return problem(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(_field_name(e.get("loc", ())), str(e.get("msg", ""))) for e in exc.errors()
    ]
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    code = "malformed_json" if malformed else "validation_error"
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return problem(
        request, status=422, code=code, title="Invalid input", detail=detail, errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    return problem(
        request,
        status=exc.status_code,
        code=codes.get(exc.status_code, "http_error"),
        title=str(exc.detail),
        detail=str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
    return problem(
        request, status=500, code="internal_error", title="Internal error", detail="internal error"
    )


def install(app: FastAPI) -> None:
    """Register the problem+json handlers."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
