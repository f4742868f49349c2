"""Every route states who may call it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute

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


def test_every_route_declares_access() -> None:
    routes = [r for router in [health_router, *area_routers()] for r in router.routes]
    checked = [r for r in routes if isinstance(r, APIRoute | APIWebSocketRoute)]
    assert len(checked) >= 15
    missing = [
        f"{sorted(getattr(r, 'methods', None) or ['WS'])} {r.path}"
        for r in checked
        if not _declares_access(r.dependant)
    ]
    assert missing == []
