"""Every route states who may call it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute

from forecourt.app import area_routers
from forecourt.deps import current_member, public
from forecourt.health.endpoints import router as health_router


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _declares_access(dependant: Dependant) -> bool:
    for call in _calls(dependant):
        if call is public or call is current_member:
            return True
        if getattr(call, "__name__", "").startswith("staff_"):
            return True
    return False


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Routes with those of included routers flattened in."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        yield from _flat(nested.routes) if isinstance(nested, APIRouter) else (route,)


def test_every_route_declares_access() -> None:
    routes = list(_flat(r for router in [health_router, *area_routers()] for r in router.routes))
    checked = [r for r in routes if isinstance(r, APIRoute | APIWebSocketRoute)]
    assert len(checked) >= 15
    missing = [
        f"{sorted(getattr(r, 'methods', None) or ['WS'])} {r.path}"
        for r in checked
        if not _declares_access(r.dependant)
    ]
    assert missing == []
