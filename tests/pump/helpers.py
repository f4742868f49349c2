"""Test helpers for the pump link: a station with pumps, a scripted gateway, polling."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import func, select

from forecourt.kit import clock
from forecourt.kit.money import amount_for_volume
from forecourt.pump import protocol
from forecourt.pump.link.base import LinkClient, Message, Will
from forecourt.pump.models import Dispenser, FuellingPointRow, Nozzle, PumpSale, Tank
from forecourt.pump.protocol import TopicKind
from forecourt.runtime import Runtime
from tests.fixtures.factories import add_grades, make_price, make_station

T = TypeVar("T")

PRICES = {"92": 776, "95": 832}
# nozzle number -> (fp number, grade, tank number)
LAYOUT = {1: (1, "92", 1), 2: (1, "95", 2), 3: (2, "95", 2)}
_event_seq = itertools.count(1_777_593_600_000)


@dataclass(frozen=True)
class PumpStation:
    """A station with one dispenser, fuelling points 1 and 2, nozzles 1-3 and tanks 1-2."""

    id: int
    code: str


async def make_pump_station(runtime: Runtime, *, grades: bool = True) -> PumpStation:
    """Insert the station, its prices, tanks and equipment (committed)."""
    async with runtime.db.unit_of_work() as session:
        if grades:
            await add_grades(session)
        station = await make_station(session)
        for grade, price in PRICES.items():
            await make_price(session, station=station, grade=grade, price_fen=price)
        tanks: dict[int, int] = {}
        for number, grade in ((1, "92"), (2, "95")):
            tank_row = Tank(
                station_id=station.id,
                number=number,
                grade_code=grade,
                capacity_ml=30_000_000,
                low_ml=3_000_000,
                out_ml=500_000,
                book_ml=20_000_000,
                book_since=clock.now() - timedelta(days=1),
                variance_alert_ml=200_000,
                active=True,
            )
            session.add(tank_row)
            await session.flush()
            tanks[number] = tank_row.id
        dispenser = Dispenser(station_id=station.id, number=1, model="Tatsuno")
        session.add(dispenser)
        await session.flush()
        fps: dict[int, int] = {}
        for number in (1, 2):
            fp = FuellingPointRow(
                station_id=station.id,
                dispenser_id=dispenser.id,
                number=number,
                state=10,
                last_seq=0,
                missing_seqs=[],
                last_event_seq=0,
                updated_at=clock.now(),
            )
            session.add(fp)
            await session.flush()
            fps[number] = fp.id
        for nozzle, (fp_number, grade, tank) in LAYOUT.items():
            session.add(
                Nozzle(
                    station_id=station.id,
                    fp_id=fps[fp_number],
                    number=nozzle,
                    grade_code=grade,
                    tank_id=tanks[tank],
                    totalizer_volume_ml=0,
                    totalizer_amount_fen=0,
                    active=True,
                )
            )
        await session.flush()
        return PumpStation(id=station.id, code=station.code)


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 10.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy (its value), or fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def sale_count(runtime: Runtime, station_id: int) -> int:
    """How many pump_sales rows the station has."""
    async with runtime.db.read_only() as session:
        stmt = select(func.count()).select_from(PumpSale).where(PumpSale.station_id == station_id)
        return int(await session.scalar(stmt) or 0)


async def fp_row(runtime: Runtime, station_id: int, number: int) -> FuellingPointRow:
    """A fuelling point's mirrored row as committed."""
    async with runtime.db.read_only() as session:
        stmt = select(FuellingPointRow).where(
            FuellingPointRow.station_id == station_id, FuellingPointRow.number == number
        )
        row = (await session.scalars(stmt)).one()
        session.expunge(row)
        return row


def online_will(code: str) -> Will:
    """The gateway's last will: retained `online: false`."""
    payload = protocol.encode(protocol.DeviceStatus(online=False, ts=clock.now()))
    return Will(protocol.build_topic(TopicKind.GATEWAY_ONLINE, code), payload, retain=True)


@dataclass
class ScriptedGateway:
    """A minimal gateway that publishes what a test tells it and records what it receives."""

    client: LinkClient
    code: str
    auto_ack: bool = True
    commands: list[dict[str, Any]] = field(default_factory=list)
    sale_acks: list[dict[str, Any]] = field(default_factory=list)
    delivery_acks: list[dict[str, Any]] = field(default_factory=list)
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    reject: dict[str, str] = field(default_factory=dict)  # command type -> reason
    _reader: asyncio.Task[None] | None = None

    @classmethod
    def on(cls, runtime: Runtime, code: str, *, auto_ack: bool = True) -> ScriptedGateway:
        """A gateway client `fc-gw-<code>` with its last will."""
        client = runtime.link_client(f"fc-gw-{code}", will=online_will(code))
        return cls(client=client, code=code, auto_ack=auto_ack)

    def topic(self, kind: TopicKind, number: int | None = None) -> str:
        """A topic of this gateway's station."""
        return protocol.build_topic(kind, self.code, number)

    async def connect(self, *, announce: bool = True) -> None:
        """Connect, subscribe to commands and acks, and (by default) say online."""
        await self.client.connect()
        for topic_filter in protocol.gateway_filters(self.code):
            await self.client.subscribe(topic_filter)
        self._reader = asyncio.create_task(self._read())
        if announce:
            await self.online(True)

    async def reconnect(self, *, announce: bool = True) -> None:
        """Connect again (same client id and persistent session) after the link dropped."""
        await self._stop_reader()
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        await self.connect(announce=announce)

    async def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None

    async def disconnect(self) -> None:
        """Stop reading and disconnect cleanly."""
        await self._stop_reader()
        await self.client.disconnect()

    async def _read(self) -> None:
        async for message in self.client.messages():
            await self._receive(message)

    async def _receive(self, message: Message) -> None:
        data = orjson.loads(message.payload)
        kind = protocol.parse_topic(message.topic).kind
        if kind is TopicKind.COMMAND:
            self.commands.append(data)
            if self.auto_ack:
                await self.answer(data["command_id"], reason=self.reject.get(data["type"]))
        elif kind is TopicKind.FP_SALE_ACK:
            self.sale_acks.append(data)
        elif kind is TopicKind.TANK_DELIVERY_ACK:
            self.delivery_acks.append(data)

    async def answer(self, command_id: str, *, reason: str | None = None) -> None:
        """Acknowledge a command (`ok`, or `rejected` with a reason); repeats get the same."""
        ack = self.answered.get(command_id) or {
            "command_id": command_id,
            "status": "rejected" if reason else "ok",
            "reason": reason,
        }
        self.answered[command_id] = ack
        await self.send(TopicKind.COMMAND_ACK, None, protocol.CommandAck(**ack, ts=clock.now()))

    async def send(self, kind: TopicKind, number: int | None, message: protocol.Message) -> None:
        """Publish a protocol message on one of this station's topics."""
        await self.client.publish(
            self.topic(kind, number), protocol.encode(message), retain=kind.retained
        )

    async def raw(self, kind: TopicKind, number: int | None, payload: bytes) -> None:
        """Publish raw bytes (malformed input tests)."""
        await self.client.publish(self.topic(kind, number), payload)

    async def online(self, online: bool) -> None:
        """Publish `gateway/online` (retained)."""
        await self.send(
            TopicKind.GATEWAY_ONLINE, None, protocol.DeviceStatus(online=online, ts=clock.now())
        )

    async def state(
        self,
        fp: int,
        state: int,
        *,
        nozzle: int | None = None,
        last_seq: int | None = None,
        error_code: str | None = None,
        event_seq: int | None = None,
    ) -> protocol.StateReport:
        """Publish `fp/{n}/state` (retained) with the next event_seq."""
        report = protocol.StateReport(
            event_seq=event_seq if event_seq is not None else next(_event_seq),
            ts=clock.now(),
            state=state,
            nozzle=nozzle,
            error_code=error_code,
            last_seq=last_seq,
        )
        await self.send(TopicKind.FP_STATE, fp, report)
        return report

    async def progress(
        self,
        fp: int,
        *,
        nozzle: int,
        grade: str,
        volume_ml: int,
        unit_price_fen: int,
        auth_ref: str | None = None,
    ) -> None:
        """Publish `fp/{n}/progress`."""
        await self.send(
            TopicKind.FP_PROGRESS,
            fp,
            protocol.FuellingProgress(
                event_seq=next(_event_seq),
                ts=clock.now(),
                nozzle=nozzle,
                grade=grade,
                volume_ml=volume_ml,
                amount_fen=amount_for_volume(volume_ml, unit_price_fen),
                unit_price_fen=unit_price_fen,
                auth_ref=auth_ref,
            ),
        )

    async def sale(self, fp: int, report: protocol.SaleReport) -> None:
        """Publish `fp/{n}/sale`."""
        await self.send(TopicKind.FP_SALE, fp, report)


def sale_report(
    *,
    seq: int,
    nozzle: int,
    grade: str,
    volume_ml: int,
    unit_price_fen: int,
    totalizer_before_ml: int = 1_000_000,
    totalizer_before_fen: int = 800_000,
    auth_ref: str | None = None,
    amount_fen: int | None = None,
) -> protocol.SaleReport:
    """A consistent SaleReport whose totalizers continue from the given readings."""
    amount = amount_fen if amount_fen is not None else amount_for_volume(volume_ml, unit_price_fen)
    ended = clock.now().replace(microsecond=0)
    return protocol.SaleReport(
        seq=seq,
        ts=clock.now(),
        nozzle=nozzle,
        grade=grade,
        volume_ml=volume_ml,
        amount_fen=amount,
        unit_price_fen=unit_price_fen,
        totalizer_volume_ml=totalizer_before_ml + volume_ml,
        totalizer_amount_fen=totalizer_before_fen + amount,
        started_at=ended - timedelta(minutes=2),
        ended_at=ended,
        auth_ref=auth_ref,
    )
