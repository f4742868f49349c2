"""GET /stations/nearby and GET /geo/convert."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response

from forecourt.deps import Public, RuntimeDep
from forecourt.search import service
from forecourt.search.schemas import ConvertQuery, NearbyPage, NearbyQuery, Point


class JsonBytes(Response):
    """A JSON body serialised with orjson, without a second validation pass."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise the document."""
        return orjson.dumps(content)


nearby_router = APIRouter(tags=["stations"], dependencies=[Public])
geo_router = APIRouter(tags=["geo"], dependencies=[Public])


@nearby_router.get(
    "/stations/nearby",
    response_model=NearbyPage,
    responses={422: {"description": "bad coordinates, radius, limit, grade or parameter"}},
)
async def stations_nearby(query: Annotated[NearbyQuery, Query()], runtime: RuntimeDep) -> Response:
    """Listed stations nearest a point, by great-circle distance, with prices and nav links.

    Read-only. The in-process backend answers without a database session, so none is opened
    per request (the PostGIS backend opens a read-only one itself).
    """
    page = await service.nearby(search=runtime.nearby, db=runtime.db, query=query)
    return JsonBytes(page)


@geo_router.get("/geo/convert", response_model=Point)
async def geo_convert(query: Annotated[ConvertQuery, Query()]) -> Point:
    """Convert a point between WGS-84, GCJ-02 and BD-09."""
    return service.convert_point(lat=query.lat, lng=query.lng, src=query.from_, dst=query.to)
