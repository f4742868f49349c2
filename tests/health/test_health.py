"""Liveness, readiness, metrics and error format."""

from __future__ import annotations

import httpx

from forecourt import migrate
from forecourt.db import Database


async def test_healthz(client: httpx.AsyncClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": None, "revision": None}
    assert len(resp.headers["x-request-id"]) == 32


async def test_readyz_reports_revision(client: httpx.AsyncClient, db: Database) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["revision"] == migrate.head_revision()
    assert resp.json()["database"] == db.dialect


async def test_readyz_refuses_old_schema(client: httpx.AsyncClient, db: Database) -> None:
    await migrate.downgrade_engine(db.engine, "0001")
    try:
        resp = await client.get("/readyz")
        assert resp.status_code == 503
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["code"] == "unavailable"
    finally:
        await migrate.upgrade_engine(db.engine)


async def test_request_id_is_kept(client: httpx.AsyncClient) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"


async def test_metrics_exposition(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert 'forecourt_http_requests_total{method="GET",route="/healthz",status="200"}' in resp.text


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    resp = await client.get("/nope")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["instance"] == "/nope"
