"""WebSocket /stations/{id}/nozzles/live: a snapshot, then every change of the station.

Order matters: the handler subscribes to the hub FIRST and only then reads the snapshot, so no
change committed after the snapshot was read can be missed (a change may arrive twice: once in
the snapshot, once as a message; both are states, so applying it twice is harmless).

Close codes: 4404 unknown station; 1013 the client read too slowly and was dropped (reconnect
for a fresh snapshot); 1011 the live hub is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, status
from fastapi.responses import Response
from starlette.websockets import WebSocketState

from forecourt.deps import Public, ReadSession
from forecourt.errors import AppError, NotFound
from forecourt.pump import live_snapshot
from forecourt.pump.live import DEFAULT_QUEUE_SIZE, RESYNC, SubscriberTooSlow, Subscription
from forecourt.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

PATH = "/stations/{station_id}/nozzles/live"
CLOSE_UNKNOWN_STATION = 4404
CLOSE_TOO_SLOW = 1013
CLOSE_UNAVAILABLE = 1011

# Tunables (module level so tests and deployments can change them).
QUEUE_SIZE = DEFAULT_QUEUE_SIZE
KEEPALIVE_SECONDS = 20.0
SEND_TIMEOUT_SECONDS = 10.0


class UpgradeRequired(AppError):
    """The resource speaks WebSocket only."""

    status, code, title = 426, "upgrade_required", "WebSocket upgrade required"


@router.get(
    PATH,
    dependencies=[Public],
    status_code=status.HTTP_426_UPGRADE_REQUIRED,
    responses={404: {"description": "unknown station"}, 426: {"description": "use WebSocket"}},
)
async def nozzles_live_http(session: ReadSession, station_id: int) -> Response:
    """Plain HTTP on the live path: 404 for an unknown station, else 426 (anyone)."""
    if not await live_snapshot.station_exists(session, station_id=station_id):
        raise NotFound(f"station {station_id} not found")
    raise UpgradeRequired(f"connect with WebSocket to {PATH.format(station_id=station_id)}")


@router.websocket(PATH, dependencies=[Public])
async def nozzles_live(websocket: WebSocket, station_id: int) -> None:
    """Live nozzle states of a station: a snapshot, then changes (anyone; no payer data)."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    async with runtime.db.read_only() as session:
        exists = await live_snapshot.station_exists(session, station_id=station_id)
    if not exists:
        await websocket.close(code=CLOSE_UNKNOWN_STATION, reason="station not found")
        return
    try:
        async with runtime.live.subscribe(station_id, queue_size=QUEUE_SIZE) as sub:
            await _serve(websocket, runtime, sub)
    except (TimeoutError, OSError) as exc:  # the hub could not subscribe (Redis down)
        log.warning("live subscribe failed: %s", exc)
        await _close(websocket, CLOSE_UNAVAILABLE, "live updates unavailable")


async def _snapshot(runtime: Runtime, station_id: int) -> dict[str, Any]:
    async with runtime.db.read_only() as session:
        return await live_snapshot.snapshot(session, station_id=station_id)


async def _send(websocket: WebSocket, message: dict[str, Any]) -> None:
    if "sent_at" not in message:
        message = {**message, "sent_at": live_snapshot.iso_now()}
    data = orjson.dumps(message).decode()
    await asyncio.wait_for(websocket.send_text(data), SEND_TIMEOUT_SECONDS)


async def _forward(websocket: WebSocket, runtime: Runtime, sub: Subscription) -> None:
    await _send(websocket, await _snapshot(runtime, sub.station_id))
    while True:
        message = await sub.get(KEEPALIVE_SECONDS)
        if message is None:
            await _send(websocket, {"type": "ping", "ts": live_snapshot.iso_now()})
        elif message.get("type") == RESYNC["type"]:
            await _send(websocket, await _snapshot(runtime, sub.station_id))
        else:
            await _send(websocket, live_snapshot.public_view(message))


async def _watch_client(websocket: WebSocket) -> None:
    """Return when the client goes away; anything it sends is ignored."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _serve(websocket: WebSocket, runtime: Runtime, sub: Subscription) -> None:
    writer = asyncio.create_task(_forward(websocket, runtime, sub))
    watcher = asyncio.create_task(_watch_client(websocket))
    done, pending = await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if writer not in done:
        return  # the client left
    error = writer.exception()
    if isinstance(error, SubscriberTooSlow):
        await _close(websocket, CLOSE_TOO_SLOW, "too slow; reconnect for a snapshot")
    elif isinstance(error, TimeoutError):
        await _close(websocket, CLOSE_TOO_SLOW, "send timed out")
    elif error is not None:
        log.warning("live websocket ended: %r", error)
        await _close(websocket, CLOSE_UNAVAILABLE, "internal error")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), SEND_TIMEOUT_SECONDS)
