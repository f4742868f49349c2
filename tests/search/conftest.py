"""Nearby-search fixtures: every API test runs on the in-process index and on PostGIS."""

from __future__ import annotations

import os

import pytest

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.search.repository import has_geography_column
from tests.conftest import test_settings

REQUIRE_POSTGIS = os.environ.get("FORECOURT_TEST_REQUIRE_POSTGIS", "").lower() in (
    "1",
    "true",
    "yes",
)


async def require_postgis(db: Database) -> None:
    """Skip without PostGIS, or fail when FORECOURT_TEST_REQUIRE_POSTGIS is set (CI)."""
    if db.dialect != "postgresql":
        pytest.skip("PostGIS runs on PostgreSQL only")
    async with db.read_only() as session:
        present = await has_geography_column(session)
    if not present:
        message = "stations.geog is missing: PostGIS is not installed in this PostgreSQL"
        if REQUIRE_POSTGIS:
            pytest.fail(f"FORECOURT_TEST_REQUIRE_POSTGIS is set but {message}")
        pytest.skip(message)


@pytest.fixture(params=["memory", "postgis"])
async def spatial_backend(request: pytest.FixtureRequest, db: Database) -> str:
    """The nearby-search backend under test."""
    backend = str(request.param)
    if backend == "postgis":
        await require_postgis(db)
    return backend


@pytest.fixture
def settings(db: Database, spatial_backend: str) -> Settings:
    """Test settings with the backend under test and a fingerprint check on every query."""
    return test_settings(db.url, spatial_backend=spatial_backend, spatial_refresh_seconds=0.0)
