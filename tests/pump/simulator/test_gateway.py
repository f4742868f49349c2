"""The simulated gateway on the in-process broker: wire behaviour, commands and faults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from forecourt.kit import clock
from forecourt.pump import protocol
from forecourt.pump.link.base import Message
from forecourt.pump.link.inprocess import InProcessBroker, InProcessClient
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator import (
    FpSpec,
    GatewayConfig,
    GatewaySim,
    NozzleSpec,
    PumpConfig,
    SimClock,
    StationSpec,
    TrafficConfig,
    TrafficDriver,
)
from forecourt.pump.simulator.links import inprocess_connector

CODE = "KM0001"
SPEED = 20.0
STATION = StationSpec(
    code=CODE,
    fps=(
        FpSpec(1, (NozzleSpec(1, "92"), NozzleSpec(2, "95")), last_seq=10),
        FpSpec(2, (NozzleSpec(3, "95", 5_000_000, 4_000_000),)),
    ),
    prices={"92": 776, "95": 832},
    price_version=3,
)


class Server:
    """A stand-in for the server: records everything the gateway publishes."""

    def __init__(self, broker: InProcessBroker) -> None:
        self.broker = broker
        self.client: InProcessClient = broker.client("test-server")
        self.seen: list[Message] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.connect()
        for kind in TopicKind:
            if kind.upstream:
                await self.client.subscribe(protocol.topic_filter(kind, CODE))
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for message in self.client.messages():
            self.seen.append(message)

    def of(self, kind: TopicKind, number: int | None = None) -> list[Any]:
        out = []
        for m in self.seen:
            topic = protocol.parse_topic(m.topic)
            if topic.kind is kind and (number is None or topic.number == number):
                out.append(protocol.decode(m.topic, m.payload).message)
        return out

    async def send(self, kind: TopicKind, message: protocol.Message, n: int | None = None) -> None:
        await self.client.publish(protocol.build_topic(kind, CODE, n), protocol.encode(message))

    async def command(self, **fields: Any) -> str:
        now = clock.now()
        body = {"ts": now, "valid_until": now + timedelta(minutes=2), **fields}
        body.setdefault("command_id", f"cmd{random.randrange(10**9)}")
        payload = orjson.dumps({k: _wire(v) for k, v in body.items()})
        await self.client.publish(protocol.build_topic(TopicKind.COMMAND, CODE), payload)
        return str(body["command_id"])

    def ack(self, command_id: str) -> protocol.CommandAck | None:
        acks = [a for a in self.of(TopicKind.COMMAND_ACK) if a.command_id == command_id]
        return acks[-1] if acks else None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()


def _wire(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value


async def until(check: Any, within: float = 10.0) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = check()
            if value:
                return value
            await asyncio.sleep(0.01)


@pytest.fixture
def broker() -> InProcessBroker:
    return InProcessBroker()


@pytest.fixture
async def server(broker: InProcessBroker) -> AsyncIterator[Server]:
    s = Server(broker)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def gateway(broker: InProcessBroker, server: Server) -> AsyncIterator[GatewaySim]:
    config = GatewayConfig(pump=PumpConfig(sale_resend_seconds=2.0, auto_authorise=True))
    g = GatewaySim(
        STATION,
        inprocess_connector(broker),
        clock=SimClock(SPEED),
        config=config,
        rng=random.Random(3),
    )
    await g.start()
    await asyncio.wait_for(g.connected.wait(), 5)
    yield g
    await g.stop()


async def test_start_up_publishes_online_and_every_state_retained_with_a_will(
    gateway: GatewaySim, server: Server, broker: InProcessBroker
) -> None:
    await until(lambda: len(server.of(TopicKind.FP_STATE)) == 2)
    (online,) = server.of(TopicKind.GATEWAY_ONLINE)
    assert (online.online, online.volume_resolution_ml) == (True, 1)
    states = {s.last_seq: s for s in server.of(TopicKind.FP_STATE)}
    assert sorted(states) == [0, 10]
    assert all(s.state == 3 and s.price_version == 3 for s in states.values())
    online_topic = protocol.build_topic(TopicKind.GATEWAY_ONLINE, CODE)
    assert orjson.loads(broker.retained[online_topic])["online"] is True
    assert protocol.build_topic(TopicKind.FP_STATE, CODE, 1) in broker.retained
    seqs = [s.event_seq for s in server.of(TopicKind.FP_STATE)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 2
    await broker.drop(gateway.client_id)
    assert orjson.loads(broker.retained[online_topic])["online"] is False


async def test_post_pay_sale_is_resent_until_the_server_acks_it(
    gateway: GatewaySim, server: Server
) -> None:
    gateway.lift(1, 2, target_ml=3_000, hang_after=0.5)
    await until(lambda: len(server.of(TopicKind.FP_SALE, 1)) >= 3)
    sales = server.of(TopicKind.FP_SALE, 1)
    first = sales[0]
    assert (first.seq, first.volume_ml, first.amount_fen, first.auth_ref) == (
        11,
        3_000,
        2_496,
        None,
    )
    assert [s.state for s in server.of(TopicKind.FP_STATE, 1)][1:] == [4, 5, 6, 8, 3]
    progress = server.of(TopicKind.FP_PROGRESS, 1)
    assert progress[-1].volume_ml == 3_000
    await server.send(
        TopicKind.FP_SALE_ACK, protocol.SaleAck(seq=11, status="accepted", ts=clock.now()), 1
    )
    await until(lambda: not gateway.pumps[1].unacked())
    count = len(server.of(TopicKind.FP_SALE, 1))
    await gateway.clock.sleep(5.0)  # more than two resend periods
    assert len(server.of(TopicKind.FP_SALE, 1)) == count


async def test_pay_at_pump_with_a_preset_amount_and_command_dedup(
    gateway: GatewaySim, server: Server
) -> None:
    preset = {"kind": "amount_fen", "value": 10_000}
    cid = await server.command(type="authorise", fp=2, auth_ref="ord_9", preset=preset, nozzle=3)
    ack = await until(lambda: server.ack(cid))
    assert (ack.status, ack.reason) == ("ok", None)
    await server.command(command_id=cid, type="authorise", fp=2, auth_ref="ord_9")
    await until(
        lambda: len([a for a in server.of(TopicKind.COMMAND_ACK) if a.command_id == cid]) == 2
    )
    repeat = [a for a in server.of(TopicKind.COMMAND_ACK) if a.command_id == cid]
    assert repeat[0] == repeat[1]  # the stored answer, not executed again
    gateway.lift(2, 3, hang_after=0.5)
    (sale,) = (await until(lambda: server.of(TopicKind.FP_SALE, 2)))[:1]
    assert (sale.amount_fen, sale.volume_ml, sale.auth_ref) == (10_000, 12_019, "ord_9")
    assert (sale.totalizer_volume_ml, sale.totalizer_amount_fen) == (5_012_019, 4_010_000)
    busy = await server.command(type="lock_sale", fp=2, seq=1, lock_ref="ord_other")
    assert (await until(lambda: server.ack(busy))).reason == "sale_locked"
    clear = await server.command(type="clear_sale", fp=2, seq=1, lock_ref="ord_9")
    assert (await until(lambda: server.ack(clear))).status == "ok"


async def test_commands_refused_with_protocol_reasons(gateway: GatewaySim, server: Server) -> None:
    past = clock.now() - timedelta(minutes=5)
    cases = {
        await server.command(type="stop", fp=7): "unknown_fp",
        await server.command(type="reread_sales", fp=1, from_seq=1): "unknown_sale",
        await server.command(
            type="stop", fp=1, ts=past, valid_until=past + timedelta(seconds=1)
        ): "expired",
        await server.command(type="authorise", fp=1, auth_ref="o", nozzle=3): "nozzle_unknown",
        await server.command(
            type="price_table", version=2, effective_at=clock.now(), prices={"95": 800}
        ): "version_stale",
        await server.command(
            type="price_table", version=9, effective_at=clock.now(), prices={"98": 900}
        ): "unknown_grade",
        await server.command(type="stop", fp="1"): "invalid",
    }
    for cid, reason in cases.items():
        ack = await until(lambda cid=cid: server.ack(cid))
        assert (ack.status, ack.reason) == ("rejected", reason), cid


async def test_price_table_applies_and_states_report_the_version(
    gateway: GatewaySim, server: Server
) -> None:
    cid = await server.command(
        type="price_table", version=4, effective_at=clock.now(), prices={"95": 845, "92": 790}
    )
    assert (await until(lambda: server.ack(cid))).status == "ok"
    await until(lambda: any(s.price_version == 4 for s in server.of(TopicKind.FP_STATE, 2)))
    gateway.lift(2, 3, target_ml=1_000, hang_after=0.2)
    sale = (await until(lambda: server.of(TopicKind.FP_SALE, 2)))[0]
    assert (sale.unit_price_fen, sale.amount_fen, sale.price_version) == (845, 845, 4)


async def test_link_drop_mid_fuelling_sale_is_kept_and_resent_on_reconnect(
    gateway: GatewaySim, server: Server, broker: InProcessBroker
) -> None:
    gateway.lift(1, 1, target_ml=4_000, hang_after=0.2)
    await until(lambda: server.of(TopicKind.FP_PROGRESS, 1))
    drop = asyncio.create_task(gateway.drop_link(10.0))
    await until(lambda: not gateway.online)
    online_topic = protocol.build_topic(TopicKind.GATEWAY_ONLINE, CODE)
    assert orjson.loads(broker.retained[online_topic])["online"] is False  # the will
    await until(lambda: gateway.pumps[1].held)  # the sale completed while offline
    assert server.of(TopicKind.FP_SALE, 1) == []
    await drop
    sale = (await until(lambda: server.of(TopicKind.FP_SALE, 1)))[0]
    assert (sale.seq, sale.volume_ml) == (11, 4_000)
    assert server.of(TopicKind.GATEWAY_ONLINE)[-1].online is True
    assert server.of(TopicKind.FP_STATE, 1)[-1].last_seq == 11


async def test_power_loss_comes_back_idle_keeping_meters_ttc_and_event_seq_order(
    gateway: GatewaySim, server: Server
) -> None:
    gateway.lift(2, 3, target_ml=50_000)
    await until(lambda: len(server.of(TopicKind.FP_PROGRESS, 2)) >= 3)
    before = max(s.event_seq for s in server.of(TopicKind.FP_STATE))
    await gateway.power_loss(2.0)
    await asyncio.wait_for(gateway.connected.wait(), 5)
    state = (
        await until(lambda: [s for s in server.of(TopicKind.FP_STATE, 2) if s.event_seq > before])
    )[0]
    assert (state.state, state.last_seq) == (3, 1)
    assert state.event_seq >= before + 1_000_000 - 10_000  # counted on from the reserved block
    sale = (await until(lambda: server.of(TopicKind.FP_SALE, 2)))[0]
    assert sale.totalizer_volume_ml == 5_000_000 + sale.volume_ml


async def test_stuck_nozzle_calls_then_reports_an_error(
    broker: InProcessBroker, server: Server
) -> None:
    config = GatewayConfig(pump=PumpConfig(stuck_error_after_seconds=2.0))
    g = GatewaySim(STATION, inprocess_connector(broker), clock=SimClock(SPEED), config=config)
    await g.start()
    await asyncio.wait_for(g.connected.wait(), 5)
    g.stuck_nozzle(2)
    error = await until(lambda: [s for s in server.of(TopicKind.FP_STATE, 2) if s.state == 11])
    assert error[0].error_code == "nozzle_stuck"
    assert [s.state for s in server.of(TopicKind.FP_STATE, 2)][-2:] == [4, 11]
    g.free_nozzle(2)
    await until(lambda: server.of(TopicKind.FP_STATE, 2)[-1].state == 3)
    await g.stop()


async def test_traffic_fuels_20_to_60_litres_and_caps_unpaid_sales(
    broker: InProcessBroker, server: Server
) -> None:
    g = GatewaySim(
        STATION, inprocess_connector(broker), clock=SimClock(200.0), rng=random.Random(5)
    )
    traffic = TrafficDriver(
        g, config=TrafficConfig(mean_arrival_seconds=2.0, payable_cap=2), rng=random.Random(5)
    )
    await g.start()
    task = asyncio.create_task(traffic.run())
    try:
        await until(
            lambda: all(p.payable_count() == 2 and not p.busy() for p in g.pumps.values()), 20
        )
        await g.clock.sleep(120.0)
    finally:
        task.cancel()
    assert all(p.payable_count() == 2 for p in g.pumps.values())  # capped: nobody fuels
    volumes = [h.report.volume_ml for p in g.pumps.values() for h in p.held.values()]
    assert len(volumes) == 4
    assert all(20_000 <= v <= 60_000 for v in volumes)
    await g.stop()
