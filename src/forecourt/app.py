"""create_app(): middleware, routers, error handlers, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from forecourt import __version__, logs, problems
from forecourt.config import Settings, get_settings
from forecourt.health.endpoints import router as health_router
from forecourt.middleware import RequestContext
from forecourt.payment.sandbox_mount import PREFIX as SANDBOX_PREFIX
from forecourt.payment.sandbox_mount import SandboxMount
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
    if settings.app_dist_dir.is_dir():  # the driver app (H5 build of web/app), when built
        app.mount("/app", StaticFiles(directory=settings.app_dist_dir, html=True), name="app")
    if settings.admin_dist_dir.is_dir():  # the back-office console (web/admin), when built
        app.mount("/admin", StaticFiles(directory=settings.admin_dist_dir, html=True), name="admin")
    app.mount(SANDBOX_PREFIX, SandboxMount(), name="sandboxes")
    app.add_middleware(RequestContext, access_log=settings.access_log)
    return app


def area_routers() -> list[APIRouter]:
    """Every business area's router; fixed paths before `/stations/{station_id}`.

    Routes are matched in order, so the pay path's routers (no path of theirs overlaps an
    earlier one's) come first.
    """
    from forecourt.auth.endpoints import router as auth
    from forecourt.backoffice.endpoints import router as backoffice
    from forecourt.fuel.endpoints import router as fuel
    from forecourt.invoice.endpoints import router as invoices
    from forecourt.loyalty.endpoints import admin as loyalty_admin
    from forecourt.loyalty.endpoints import router as loyalty
    from forecourt.loyalty.mall_endpoints import admin as mall_admin
    from forecourt.loyalty.mall_endpoints import router as mall
    from forecourt.notify.endpoints import router as speakers
    from forecourt.order.endpoints import router as orders
    from forecourt.payment.endpoints import router as payments
    from forecourt.pump.endpoints import admin as pumps_admin
    from forecourt.pump.endpoints import public as pumps
    from forecourt.pump.live_endpoints import router as live
    from forecourt.search.endpoints import geo_router as geo
    from forecourt.search.endpoints import nearby_router as nearby
    from forecourt.station.endpoints import admin as stations_admin
    from forecourt.station.endpoints import public as stations
    from forecourt.tank.endpoints import admin as tanks_admin
    from forecourt.tank.endpoints import public as tanks
    from forecourt.wallet.endpoints import router as wallet

    return [
        *(orders, payments),
        *(auth, nearby, geo, stations, stations_admin, fuel, tanks, tanks_admin, live, speakers),
        *(pumps, pumps_admin, wallet),
        invoices,
        *(loyalty, loyalty_admin, mall, mall_admin),
        backoffice,
    ]
