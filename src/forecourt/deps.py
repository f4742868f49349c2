"""FastAPI dependencies: the request's unit of work, runtime objects and who may call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal, read_access
from forecourt.db import Database
from forecourt.errors import Forbidden, Unauthorized
from forecourt.runtime import Runtime

ROLES = ("hq_admin", "station_manager", "attendant")


async def get_runtime(request: Request) -> Runtime:
    """The process-wide runtime objects built at start-up (async: no worker thread per call)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_database(runtime: RuntimeDep) -> Database:
    """The database handle."""
    return runtime.db


async def unit_of_work(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request; it commits before the response is sent."""
    async with runtime.db.unit_of_work() as session:
        yield session


async def read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A read-only session on the replica when one is configured."""
    async with runtime.db.read_only() as session:
        yield session


Session = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(read_session, scope="function")]

_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def public() -> None:
    """Marks a route that anyone may call (async: no worker thread per call)."""


def _principal(runtime: Runtime, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("bearer token required")
    return read_access(runtime.secrets.jwt_key, credentials.credentials)


async def current_member(runtime: RuntimeDep, credentials: Credentials) -> Principal:
    """The calling driver."""
    principal = _principal(runtime, credentials)
    if principal.kind != "member":
        raise Forbidden("drivers only")
    return principal


async def _staff_principal(runtime: Runtime, principal: Principal) -> Principal:
    from forecourt.auth.models import Staff, StaffStation

    async with runtime.db.read_only() as session:
        staff = await session.get(Staff, principal.id)
        if staff is None or not staff.active:
            raise Unauthorized("staff account disabled")
        rows = await session.scalars(
            select(StaffStation.station_id).where(StaffStation.staff_id == staff.id)
        )
        return Principal(
            kind="staff", id=staff.id, role=staff.role, station_ids=frozenset(rows.all())
        )


def staff(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting staff with one of `roles` (all staff roles when none given)."""
    allowed = set(roles or ROLES)

    async def dependency(runtime: RuntimeDep, credentials: Credentials) -> Principal:
        principal = _principal(runtime, credentials)
        if principal.kind != "staff":
            raise Forbidden("staff only")
        loaded = await _staff_principal(runtime, principal)
        if loaded.role not in allowed:
            raise Forbidden(f"role {loaded.role} may not do this")
        return loaded

    dependency.__name__ = f"staff_{'_'.join(sorted(allowed))}"
    return dependency


Public = Depends(public)
Member = Annotated[Principal, Depends(current_member)]
AnyStaff = Annotated[Principal, Depends(staff())]
Manager = Annotated[Principal, Depends(staff("hq_admin", "station_manager"))]
HqAdmin = Annotated[Principal, Depends(staff("hq_admin"))]
