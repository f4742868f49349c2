"""Live nozzle states: the hub's fan-out and the WebSocket (snapshot, then changes)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from forecourt.app import create_app
from forecourt.kit import clock
from forecourt.pump import live_endpoints, live_snapshot
from forecourt.pump.live import InProcessHub, SubscriberTooSlow
from forecourt.pump.models import FuellingPointRow
from forecourt.runtime import Runtime
from forecourt.tank import service as tanks
from tests.fixtures.tanks import Site, add_nozzle, add_sale, add_tank, reading
from tests.fixtures.tanks import site as site

Connect = Callable[[int], Awaitable[ClientConnection]]


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port; its ws:// base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runtime=runtime), lifespan="off", log_level="warning")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not srv.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
    yield f"ws://127.0.0.1:{port}"
    srv.should_exit = True
    await task
    sock.close()


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        data = await ws.recv()
    message: dict[str, Any] = orjson.loads(data)
    assert message.pop("sent_at").endswith("Z")
    return message


async def _equipped(runtime: Runtime, site: Site) -> None:
    """Station A: nozzle 1 (fp 1, fuelling, progress), nozzle 2 (fp 2, idle, payable sale)."""
    async with runtime.db.unit_of_work() as s:
        tank = await add_tank(s, station_id=site.a, number=1, grade="92", low_ml=3_000_000)
        n1 = await add_nozzle(
            s, station_id=site.a, number=1, grade="92", tank_id=tank.id, fp_number=1, state=8
        )
        n2 = await add_nozzle(
            s, station_id=site.a, number=2, grade="92", tank_id=tank.id, fp_number=2, state=3
        )
        fp = await s.get(FuellingPointRow, n1.fp_id)
        assert fp is not None
        fp.nozzle_out = 1
        fp.progress = {"volume_ml": 12_340, "amount_fen": 10_427, "unit_price_fen": 845, "x": 1}
        sale = await add_sale(
            s, nozzle=n2, volume_ml=35_500, ended_at=clock.now(), status="payable"
        )
        seq, amount = sale.seq, sale.amount_fen
        await add_sale(s, nozzle=n2, volume_ml=1_000, ended_at=clock.now(), status="cleared")
    async with runtime.db.unit_of_work() as s:
        await tanks.record_reading(
            s, station_id=site.a, tank_number=1, reading=reading(event_seq=1, volume_ml=2_000_000)
        )
    _equipped.sale = (seq, amount)  # type: ignore[attr-defined]


async def test_snapshot_then_changes(server: str, runtime: Runtime, site: Site) -> None:
    await _equipped(runtime, site)
    seq, amount = _equipped.sale  # type: ignore[attr-defined]
    async with connect(f"{server}/api/v1/stations/{site.a}/nozzles/live") as ws:
        snap = await _recv(ws)
        assert snap.pop("ts").endswith("Z")
        tank = snap["tanks"][0]
        assert tank.pop("ts").endswith("Z")
        assert snap == {
            "type": "snapshot",
            "station_id": site.a,
            "gateway_online": False,
            "nozzles": [
                {
                    "number": 1,
                    "fp": 1,
                    "grade": "92",
                    "state": "Fuelling",
                    "state_code": 8,
                    "nozzle_out": True,
                    "progress": {"volume_ml": 12_340, "amount_fen": 10_427, "unit_price_fen": 845},
                    "payable": [],
                },
                {
                    "number": 2,
                    "fp": 2,
                    "grade": "92",
                    "state": "Idle",
                    "state_code": 3,
                    "nozzle_out": False,
                    "progress": None,
                    "payable": [{"seq": seq, "volume_ml": 35_500, "amount_fen": amount}],
                },
            ],
            # Public: availability only, no volumes.
            "tanks": [{"type": "tank", "tank": 1, "grade": "92", "availability": "low"}],
        }
        fp = {
            "type": "fp",
            "fp": 1,
            "state": "Idle",
            "state_code": 3,
            "nozzle_out": None,
            "progress": None,
            "ts": "2026-05-01T00:03:11.000Z",
        }
        await runtime.live.publish(site.a, fp)
        await runtime.live.publish(site.b, {"type": "gateway", "online": True, "ts": "x"})
        tank_change = {
            "type": "tank",
            "tank": 1,
            "grade": "92",
            "measured_ml": 9,
            "book_ml": 9,
            "availability": "out",
            "ts": "2026-05-01T00:05:00Z",
        }
        await runtime.live.publish(site.a, tank_change)
        assert await _recv(ws) == fp
        assert await _recv(ws) == {
            "type": "tank",
            "tank": 1,
            "grade": "92",
            "availability": "out",
            "ts": "2026-05-01T00:05:00Z",
        }


async def test_subscribes_before_reading_the_snapshot(
    server: str, runtime: Runtime, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change committed while the snapshot is being read still reaches the client."""
    real = live_snapshot.snapshot

    async def racing(session: Any, *, station_id: int) -> dict[str, Any]:
        await runtime.live.publish(station_id, {"type": "gateway", "online": True, "ts": "t1"})
        return await real(session, station_id=station_id)

    monkeypatch.setattr(live_snapshot, "snapshot", racing)
    async with connect(f"{server}/api/v1/stations/{site.a}/nozzles/live") as ws:
        assert (await _recv(ws))["type"] == "snapshot"
        assert await _recv(ws) == {"type": "gateway", "online": True, "ts": "t1"}


async def test_unknown_station(server: str, client: Any, site: Site) -> None:
    async with connect(f"{server}/api/v1/stations/999999/nozzles/live") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404
    plain = await client.get("/api/v1/stations/999999/nozzles/live")
    assert plain.status_code == 404
    assert plain.headers["content-type"] == "application/problem+json"
    known = await client.get(f"/api/v1/stations/{site.a}/nozzles/live")
    assert (known.status_code, known.json()["code"]) == (426, "upgrade_required")


async def test_keepalive_ping(server: str, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_endpoints, "KEEPALIVE_SECONDS", 0.05)
    async with connect(f"{server}/api/v1/stations/{site.a}/nozzles/live") as ws:
        assert (await _recv(ws))["type"] == "snapshot"
        ping = await _recv(ws)
        assert ping["type"] == "ping"
        assert ping["ts"].endswith("Z")


async def test_slow_websocket_is_dropped_with_1013(
    server: str, runtime: Runtime, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_endpoints, "QUEUE_SIZE", 4)
    async with connect(f"{server}/api/v1/stations/{site.a}/nozzles/live") as ws:
        assert (await _recv(ws))["type"] == "snapshot"
        # Ten changes in one burst: the handler cannot drain its 4-slot queue in between.
        for i in range(10):
            await runtime.live.publish(site.a, {"type": "gateway", "online": True, "ts": str(i)})
        got = []
        with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012
            while True:
                got.append((await _recv(ws))["ts"])
    # The message already taken off the queue is sent; after the overflow nothing more is.
    assert got == ["0"]
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013


async def test_hub_drops_only_the_slow_subscriber() -> None:
    hub = InProcessHub()
    async with hub.subscribe(7, queue_size=4) as slow, hub.subscribe(7, queue_size=4) as fast:
        received = []
        for i in range(10):
            await hub.publish(7, {"n": i})  # never waits for anyone
            message = await fast.get(1)
            assert message is not None
            received.append(message["n"])
        assert received == list(range(10))
        assert slow.dropped
        assert hub.subscriber_count(7) == 1
        with pytest.raises(SubscriberTooSlow):
            await slow.get(1)
    assert hub.subscriber_count(7) == 0
