"""Business errors: a stable code and an HTTP status (rendered by `problems`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


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
