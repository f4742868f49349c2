"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from forecourt import migrate
from forecourt.deps import Public, RuntimeDep
from forecourt.errors import ServiceUnavailable

router = APIRouter(tags=["health"], dependencies=[Public])


class Health(BaseModel):
    """Liveness or readiness answer."""

    status: str
    database: str | None = None
    revision: str | None = None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"description": "not ready"}})
async def readyz(runtime: RuntimeDep) -> Health:
    """The database answers and its schema is at the newest migration."""
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        revision = await migrate.current_revision(runtime.db.engine)
    except Exception as exc:
        raise ServiceUnavailable("database unreachable") from exc
    head = migrate.head_revision()
    if revision != head:
        raise ServiceUnavailable(f"database at revision {revision}, code expects {head}")
    return Health(status="ok", database=runtime.db.dialect, revision=revision)


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
