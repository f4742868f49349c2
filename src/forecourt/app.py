"""create_app(): middleware, routers, error handlers, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from forecourt import __version__, logs, problems
from forecourt.config import Settings, get_settings
from forecourt.health.endpoints import router as health_router
from forecourt.middleware import RequestContext
from forecourt.runtime import Runtime, build

API = "/api/v1"


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the ASGI application; a given runtime is used as is (tests), else one is built."""
    settings = settings or (runtime.settings if runtime else get_settings())
    logs.setup(level=settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or build(settings)
        app.state.runtime = rt
        if owned:
            await rt.start()
        try:
            yield
        finally:
            if owned:
                await rt.stop()

    app = FastAPI(
        title="Forecourt",
        version=__version__,
        summary="Fuel station platform: stations, prices, pumps, payments, loyalty, invoices.",
        lifespan=lifespan,
    )
    if runtime is not None:
        app.state.runtime = runtime
    problems.install(app)
    app.include_router(health_router)
    for router in area_routers():
        app.include_router(router, prefix=API)
    app.add_middleware(RequestContext, access_log=settings.access_log)
    return app


def area_routers() -> list[APIRouter]:
    """Every business area's router; fixed paths before `/stations/{station_id}`."""
    from forecourt.auth.endpoints import router as auth
    from forecourt.fuel.endpoints import router as fuel
    from forecourt.notify.endpoints import router as speakers
    from forecourt.pump.endpoints import admin as pumps_admin
    from forecourt.pump.endpoints import public as pumps
    from forecourt.pump.live_endpoints import router as live
    from forecourt.search.endpoints import geo_router as geo
    from forecourt.search.endpoints import nearby_router as nearby
    from forecourt.station.endpoints import admin as stations_admin
    from forecourt.station.endpoints import public as stations
    from forecourt.tank.endpoints import admin as tanks_admin
    from forecourt.tank.endpoints import public as tanks

    return [
        *(auth, nearby, geo, stations, stations_admin, fuel, tanks, tanks_admin, live, speakers),
        *(pumps, pumps_admin),
    ]
