"""A simulated station gateway speaking docs/pump-protocol.md over a LinkClient."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from forecourt.pump import protocol
from forecourt.pump.domain import PumpError
from forecourt.pump.link.base import LinkClient, Message, Will
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator.clock import SimClock
from forecourt.pump.simulator.links import Connector, abort
from forecourt.pump.simulator.pump import (
    EventCounter,
    FpSpec,
    Outgoing,
    PriceBook,
    PumpConfig,
    PumpSim,
    Reject,
    SimError,
)
from forecourt.pump.simulator.tanks import TankConfig, TankGauge, TankSpec

log = logging.getLogger("forecourt.simulator")

EVENT_BLOCK = 1_000_000
# Reasons a gateway may give (section 6.11); a domain refusal with another code is `invalid`.
REASONS = frozenset(
    {
        "expired",
        "invalid",
        "unknown_fp",
        "fp_offline",
        "fp_busy",
        "fp_closed",
        "nozzle_unknown",
        "buffer_full",
        "unknown_sale",
        "sale_locked",
        "sale_not_locked",
        "sale_cleared",
        "unknown_grade",
        "version_stale",
        "unsupported",
    }
)


COMMANDS = (
    protocol.AuthoriseCommand,
    protocol.StopCommand,
    protocol.LockSaleCommand,
    protocol.UnlockSaleCommand,
    protocol.ClearSaleCommand,
    protocol.PriceTableCommand,
    protocol.RereadSalesCommand,
    protocol.ReportStateCommand,
)


@dataclass(frozen=True)
class StationSpec:
    """A station's equipment as the gateway knows it."""

    code: str
    fps: tuple[FpSpec, ...]
    prices: dict[str, int]
    price_version: int | None = None
    speakers: tuple[int, ...] = (1,)
    tanks: tuple[TankSpec, ...] = ()


@dataclass(frozen=True)
class GatewayConfig:
    """Gateway behaviour; times in simulated seconds."""

    pump: PumpConfig = field(default_factory=PumpConfig)
    tick_seconds: float = 0.1
    reconnect_seconds: float = 1.0
    firmware: str = "forecourt-sim-1"
    command_memory: int = 10_000
    tank_reading_seconds: float = 60.0
    tank: TankConfig = field(default_factory=TankConfig)


class GatewaySim:
    """One station's forecourt controller: pumps, sale buffers and the MQTT link."""

    def __init__(
        self,
        station: StationSpec,
        connect: Connector,
        *,
        clock: SimClock | None = None,
        config: GatewayConfig | None = None,
        rng: random.Random | None = None,
        event_seq_start: int | None = None,
    ) -> None:
        self.station = station
        self.code = station.code
        self.client_id = f"fc-gw-{station.code}"
        self._connect = connect
        self.clock = clock or SimClock()
        self.config = config or GatewayConfig()
        self.rng = rng or random.Random()
        # A gateway with a trusted clock may count event_seq from Unix milliseconds (5.3).
        start = event_seq_start
        if start is None:
            start = int(self.clock.now().timestamp() * 1000)
        self.events = EventCounter(start)
        self._block_end = start + EVENT_BLOCK
        self.prices = PriceBook(station.prices, station.price_version)
        # The gauge has its own random stream: its draws never shift the pumps' ones.
        self.tanks = TankGauge(
            station.code,
            station.tanks,
            self.events,
            config=self.config.tank,
            reading_seconds=self.config.tank_reading_seconds,
            rng=random.Random(self.rng.random()) if station.tanks else None,
        )
        self.pumps: dict[int, PumpSim] = {
            spec.number: PumpSim(
                spec,
                self.prices,
                self.events,
                config=self.config.pump,
                rng=self.rng,
                on_sale=self.tanks.sale,
            )
            for spec in station.fps
        }
        self.grades = {n.grade for spec in station.fps for n in spec.nozzles}
        self.answers: OrderedDict[str, protocol.CommandAck] = OrderedDict()
        self.client: LinkClient | None = None
        self.online = False
        self.connected = asyncio.Event()
        self.published: int = 0
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._link_lost = asyncio.Event()
        self._link_allowed = asyncio.Event()
        self._link_allowed.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._powered = False

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Power on: pumps Idle, connect, then run until stopped."""
        if self._powered:
            return
        self._powered = True
        self._tasks = [
            asyncio.create_task(self._ticker(), name=f"sim-{self.code}-tick"),
            asyncio.create_task(self._link_loop(), name=f"sim-{self.code}-link"),
        ]

    async def stop(self, *, graceful: bool = True) -> None:
        """Shut down; a graceful stop publishes `online: false` itself first (section 3.1)."""
        client = self.client
        if graceful and client is not None and self.online:
            with contextlib.suppress(Exception):
                offline = protocol.DeviceStatus(online=False, ts=self.clock.now())
                await client.publish(
                    protocol.build_topic(TopicKind.GATEWAY_ONLINE, self.code),
                    protocol.encode(offline),
                    retain=True,
                )
        await self._halt()
        if client is not None:
            with contextlib.suppress(Exception):
                await (client.disconnect() if graceful else abort(client))

    async def _halt(self) -> None:
        self._powered = False
        self.online = False
        self.connected.clear()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- faults --------------------------------------------------------------------------

    async def drop_link(self, duration: float) -> None:
        """Fault: the uplink is lost for `duration` simulated seconds; pumps keep working."""
        self._link_allowed.clear()
        client = self.client
        self.online = False
        if client is not None:
            await abort(client)
        self._link_lost.set()
        await self.clock.sleep(duration)
        self._link_allowed.set()

    async def power_loss(self, outage: float) -> None:
        """Fault: power cut for `outage` s; only the buffers, meters and TTCs survive."""
        client = self.client
        await self._halt()
        if client is not None:
            await abort(client)
        now = self.clock.now()
        for pump in self.pumps.values():
            pump.power_lost(now)
        # Block reservation (section 5.3): count on from the end of the reserved block.
        self.events.value = max(self.events.value, self._block_end)
        self._block_end = self.events.value + EVENT_BLOCK
        await self.clock.sleep(outage)
        await self.start()

    def stuck_nozzle(self, fp: int, nozzle: int | None = None) -> None:
        """Fault: a nozzle switch of an idle fp sticks in the lifted position."""
        self._emit(self.pumps[fp].set_stuck(self.clock.now(), nozzle))

    def free_nozzle(self, fp: int) -> None:
        """End the stuck-nozzle fault: the fp returns to Idle."""
        self._emit(self.pumps[fp].clear_stuck(self.clock.now()))

    # -- driver actions (traffic and tests) ----------------------------------------------

    def lift(
        self,
        fp: int,
        nozzle: int,
        *,
        target_ml: int | None = None,
        hang_after: float | None = None,
    ) -> None:
        """A driver lifts a nozzle (SimError if the pump cannot take it now)."""
        pump = self.pumps[fp]
        self._emit(pump.lift(nozzle, self.clock.now(), target_ml=target_ml, hang_after=hang_after))

    def hang(self, fp: int) -> None:
        """The driver hangs the nozzle up."""
        self._emit(self.pumps[fp].hang(self.clock.now()))

    def settle_at_kiosk(self, fp: int, seq: int) -> None:
        """An attendant takes cash for a payable sale at the kiosk POS."""
        self._emit([self.pumps[fp].settle_at_kiosk(seq, self.clock.now())])

    # -- the link ------------------------------------------------------------------------

    def _emit(self, messages: Iterable[Outgoing]) -> None:
        """Queue messages in creation order; while offline they are dropped (the state and
        unacknowledged sales are published again on reconnect, progress is not)."""
        if not self.online:
            return
        for message in messages:
            self._queue.put_nowait(message)

    async def _link_loop(self) -> None:
        while True:
            await self._link_allowed.wait()
            now = self.clock.now()
            will = Will(
                topic=protocol.build_topic(TopicKind.GATEWAY_ONLINE, self.code),
                payload=protocol.encode(protocol.DeviceStatus(online=False, ts=now)),
                retain=True,
            )
            try:
                client = self._connect(self.client_id, will)
                await client.connect()
                for topic_filter in protocol.gateway_filters(self.code):
                    await client.subscribe(topic_filter)
            except Exception as exc:
                log.warning("gateway %s cannot connect: %s", self.code, exc)
                await self.clock.sleep(self.config.reconnect_seconds)
                continue
            self.client = client
            self._queue = asyncio.Queue()
            self._link_lost.clear()
            self.online = True
            self._emit(self._startup(now))
            self.connected.set()
            receive = asyncio.create_task(self._receive(client))
            publish = asyncio.create_task(self._publish(client))
            lost = asyncio.create_task(self._link_lost.wait())
            try:
                await asyncio.wait({receive, publish, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when this loop itself is cancelled (stop, Ctrl-C)
                self.online = False
                self.connected.clear()
                for task in (receive, publish, lost):
                    task.cancel()
                for task in (receive, publish, lost):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if self._link_allowed.is_set():  # lost by itself, not a drill: reconnect soon
                with contextlib.suppress(Exception):
                    await abort(client)
                await self.clock.sleep(self.config.reconnect_seconds)

    def _startup(self, now: datetime) -> list[Outgoing]:
        """Online, fp states, unacknowledged sales (3.1), then unacknowledged deliveries (8)."""
        online = protocol.DeviceStatus(
            online=True, ts=now, firmware=self.config.firmware, volume_resolution_ml=1
        )
        out = [Outgoing(TopicKind.GATEWAY_ONLINE, None, online)]
        for pump in self.pumps.values():
            out += pump.reconnected(now)
        return out + self.tanks.reconnected(now)

    async def _publish(self, client: LinkClient) -> None:
        queue = self._queue
        while True:
            item = await queue.get()
            topic = protocol.build_topic(item.kind, self.code, item.number)
            await client.publish(topic, protocol.encode(item.message), retain=item.kind.retained)
            self.published += 1

    async def _receive(self, client: LinkClient) -> None:
        async for message in client.messages():
            try:
                self._handle(message)
            except Exception:
                log.exception("gateway %s failed on %s", self.code, message.topic)

    def _handle(self, message: Message) -> None:
        try:
            decoded = protocol.decode(message.topic, message.payload)
        except protocol.ProtocolError as exc:
            self._bad_command(message, exc)
            return
        if decoded.topic.station != self.code:
            return
        msg = decoded.message
        if isinstance(msg, protocol.SaleAck):
            assert decoded.topic.number is not None
            pump = self.pumps.get(decoded.topic.number)
            if pump is not None:
                pump.sale_acked(msg)
        elif isinstance(msg, protocol.DeliveryAck):
            assert decoded.topic.number is not None
            self.tanks.delivery_acked(decoded.topic.number, msg)
        elif decoded.topic.kind is TopicKind.COMMAND:
            self._command(msg)

    def _bad_command(self, message: Message, exc: protocol.ProtocolError) -> None:
        """A command that does not decode: answer `invalid` when its id is readable."""
        if not message.topic.endswith("/cmd"):
            log.warning("gateway %s dropped a bad message: %s", self.code, exc.reason)
            return
        try:
            command_id = json.loads(message.payload)["command_id"]
            ack = protocol.CommandAck(
                command_id=command_id, status="rejected", reason="invalid", ts=self.clock.now()
            )
        except Exception:
            log.warning("gateway %s dropped an unreadable command: %s", self.code, exc.reason)
            return
        self._answer(ack)

    def _answer(self, ack: protocol.CommandAck) -> None:
        self.answers[ack.command_id] = ack
        while len(self.answers) > self.config.command_memory:
            self.answers.popitem(last=False)
        self._emit([Outgoing(TopicKind.COMMAND_ACK, None, ack)])

    # -- commands ------------------------------------------------------------------------

    def _command(self, command: protocol.Message) -> None:
        assert isinstance(command, COMMANDS)
        stored = self.answers.get(command.command_id)
        if stored is not None:  # a repeat: the same answer, not executed again
            self._emit([Outgoing(TopicKind.COMMAND_ACK, None, stored)])
            return
        now = self.clock.now()
        out: list[Outgoing] = []
        reason: str | None = None
        if now > command.valid_until:
            reason = "expired"
        else:
            try:
                out = self._execute(command, now)
            except Reject as exc:
                reason = exc.reason
            except PumpError as exc:
                reason = exc.code if exc.code in REASONS else "fp_busy"
            except SimError:
                reason = "fp_busy"
        self._emit(out)
        ack = protocol.CommandAck(
            command_id=command.command_id,
            status="ok" if reason is None else "rejected",
            reason=reason,
            ts=now,
        )
        self._answer(ack)

    def _pump(self, fp: int) -> PumpSim:
        pump = self.pumps.get(fp)
        if pump is None:
            raise Reject("unknown_fp")
        return pump

    def _execute(self, command: protocol.Message, now: datetime) -> list[Outgoing]:
        p = protocol
        if isinstance(command, p.AuthoriseCommand):
            return self._pump(command.fp).authorise(command, now)
        if isinstance(command, p.StopCommand):
            return self._pump(command.fp).stop(now)
        if isinstance(command, p.LockSaleCommand):
            self._pump(command.fp).lock_sale(command.seq, command.lock_ref, now)
            return []
        if isinstance(command, p.UnlockSaleCommand):
            self._pump(command.fp).unlock_sale(command.seq, command.lock_ref)
            return []
        if isinstance(command, p.ClearSaleCommand):
            self._pump(command.fp).clear_sale(command.seq, command.lock_ref)
            return []
        if isinstance(command, p.PriceTableCommand):
            return self._price_table(command, now)
        if isinstance(command, p.RereadSalesCommand):
            sales = self._pump(command.fp).reread(command.from_seq, command.to_seq, now)
            if not sales:
                raise Reject("unknown_sale")
            return sales
        if isinstance(command, p.ReportStateCommand):
            if command.fp is None:
                return [pump.state_report(now) for pump in self.pumps.values()]
            return [self._pump(command.fp).state_report(now)]
        raise Reject("unsupported")

    def _price_table(self, command: protocol.PriceTableCommand, now: datetime) -> list[Outgoing]:
        book = self.prices
        newest = book.pending or None
        current = newest.version if newest is not None else book.version
        if current is not None:
            known_prices = newest.prices if newest is not None else book.prices
            if command.version < current:
                raise Reject("version_stale")
            if command.version == current:
                if dict(command.prices) != known_prices:
                    raise Reject("version_stale")
                return []
        if any(grade not in self.grades for grade in command.prices):
            raise Reject("unknown_grade")
        book.pending = command
        return self._switch_prices(now)

    def _switch_prices(self, now: datetime) -> list[Outgoing]:
        """Put a pending price table in force once effective; idle pumps show it at once."""
        book = self.prices
        pending = book.pending
        if pending is None or now < pending.effective_at:
            return []
        book.prices.update(pending.prices)  # a grade left out keeps its price
        book.version = pending.version
        book.pending = None
        out: list[Outgoing] = []
        for pump in self.pumps.values():
            out += pump.refresh_price_version(now)
        return out

    # -- time ----------------------------------------------------------------------------

    async def _ticker(self) -> None:
        last = self.clock.elapsed()
        while True:
            await self.clock.sleep(self.config.tick_seconds)
            mark = self.clock.elapsed()
            dt, last = mark - last, mark
            now = self.clock.now()
            out = self._switch_prices(now)
            for pump in self.pumps.values():
                out += pump.tick(now, dt, online=self.online)
            out += self.tanks.tick(now, dt, online=self.online)
            self._emit(out)
