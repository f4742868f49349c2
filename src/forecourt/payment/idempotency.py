"""Idempotency-Key: the same key and body get the same answer; another body gets 422."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.errors import Conflict, FieldError, Unprocessable
from forecourt.kit import clock
from forecourt.payment import repository

M = TypeVar("M", bound=BaseModel)
KEY_MAX = 100


class KeyReused(Unprocessable):
    """The key was used before with a different request."""

    code, title = "idempotency_key_reused", "Idempotency key reused"


class KeyInProgress(Conflict):
    """Another request with this key has not finished."""

    code, title = "idempotency_key_in_progress", "Request with this key in progress"


def _fingerprint(body: object) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_key(key: str | None) -> str | None:
    """Validate the header's value (1-100 visible ASCII characters)."""
    if key is None:
        return None
    if not 1 <= len(key) <= KEY_MAX or not all(33 <= ord(ch) <= 126 for ch in key):
        raise Unprocessable(
            "bad Idempotency-Key",
            errors=[FieldError("Idempotency-Key", "must be 1-100 visible ASCII characters")],
        )
    return key


async def run(
    session: AsyncSession,
    *,
    subject: str,
    route: str,
    key: str | None,
    request: object,
    model: type[M],
    work: Callable[[], Awaitable[M]],
) -> M:
    """Run `work` once per (caller, route, key); a repeat returns the stored answer.

    The key's row is inserted first, in the caller's unit of work: a concurrent repeat waits
    on it (PostgreSQL's unique index, SQLite's write lock) and then replays the answer. A
    failed request rolls back with its key, so it may be retried with the same key.
    """
    key = check_key(key)
    if key is None:
        return await work()
    digest = _fingerprint(request)
    claimed = await repository.claim_idempotency_key(
        session,
        subject=subject,
        route=route,
        key=key,
        request_hash=digest,
        status_code=0,
        response={},
        created_at=clock.now(),
    )
    if not claimed:
        stored = await repository.idempotency_record(session, subject=subject, route=route, key=key)
        if stored is None or stored.status_code == 0:
            raise KeyInProgress("a request with this Idempotency-Key has not finished")
        if stored.request_hash != digest:
            raise KeyReused(
                "this Idempotency-Key was used with a different request",
                errors=[FieldError("Idempotency-Key", "already used with another body")],
            )
        return model.model_validate(stored.response)
    result = await work()
    await repository.store_idempotent_response(
        session,
        subject=subject,
        route=route,
        key=key,
        status_code=200,
        body=result.model_dump(mode="json"),
    )
    return result
