"""Business errors and their RFC 9457 problem+json rendering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"


class ProblemResponse(Response):
    """An RFC 9457 body serialised with orjson."""

    media_type = PROBLEM

    def render(self, content: Any) -> bytes:
        """Serialise the problem document."""
        return orjson.dumps(content)


@dataclass(frozen=True)
class FieldError:
    """One bad field: where it is and why it is wrong."""

    field: str
    reason: str


class AppError(Exception):
    """A business error with a stable code and an HTTP status."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors)


class NotFound(AppError):
    """The object does not exist or the caller may not see it."""

    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(AppError):
    """Well-formed input that breaks a rule."""

    status, code, title = 422, "unprocessable", "Unprocessable input"


class Unauthorized(AppError):
    """No or bad credentials."""

    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    """Authenticated but not allowed."""

    status, code, title = 403, "forbidden", "Not allowed"


class RateLimited(AppError):
    """Too many requests."""

    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    """A dependency is down."""

    status, code, title = 503, "unavailable", "Service unavailable"


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
