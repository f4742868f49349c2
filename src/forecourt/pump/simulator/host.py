"""Runs simulated gateways (with traffic) and speakers for several stations at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from forecourt.pump.simulator.clock import SimClock
from forecourt.pump.simulator.gateway import GatewayConfig, GatewaySim, StationSpec
from forecourt.pump.simulator.links import Connector
from forecourt.pump.simulator.pump import SimError
from forecourt.pump.simulator.speaker import SpeakerConfig, SpeakerDevice
from forecourt.pump.simulator.traffic import TrafficConfig, TrafficDriver

log = logging.getLogger("forecourt.simulator")


class Fault(StrEnum):
    """Faults the simulator can inject on demand."""

    LINK_DROP = "link-drop"
    POWER_LOSS = "power-loss"
    STUCK_NOZZLE = "stuck-nozzle"


@dataclass(frozen=True)
class HostOptions:
    """What to run: speed, traffic, speakers and scheduled faults."""

    speed: float = 1.0
    traffic: bool = True
    speakers: bool = True
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    traffic_config: TrafficConfig = field(default_factory=TrafficConfig)
    speaker_config: SpeakerConfig = field(default_factory=SpeakerConfig)
    faults: tuple[Fault, ...] = ()
    fault_after_seconds: float = 30.0
    fault_every_seconds: float | None = None
    fault_duration_seconds: float = 15.0
    seed: int | None = None


class SimulatorHost:
    """Gateways, traffic drivers and speakers of many stations on one link."""

    def __init__(
        self, stations: Sequence[StationSpec], connect: Connector, options: HostOptions
    ) -> None:
        self.options = options
        self.clock = SimClock(options.speed)
        self.rng = random.Random(options.seed)
        self.gateways: dict[str, GatewaySim] = {}
        self.traffic: dict[str, TrafficDriver] = {}
        self.speakers: list[SpeakerDevice] = []
        for spec in stations:
            rng = random.Random(self.rng.random())
            gateway = GatewaySim(spec, connect, clock=self.clock, config=options.gateway, rng=rng)
            self.gateways[spec.code] = gateway
            if options.traffic:
                self.traffic[spec.code] = TrafficDriver(
                    gateway, config=options.traffic_config, rng=rng
                )
            if options.speakers:
                self.speakers += [
                    SpeakerDevice(
                        spec.code, n, connect, clock=self.clock, config=options.speaker_config
                    )
                    for n in spec.speakers
                ]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Power on every gateway and speaker, then start traffic and scheduled faults."""
        for gateway in self.gateways.values():
            await gateway.start()
        for speaker in self.speakers:
            await speaker.start()
        for code, driver in self.traffic.items():
            self._tasks.append(asyncio.create_task(driver.run(), name=f"sim-{code}-traffic"))
        if self.options.faults and self.gateways:
            self._tasks.append(asyncio.create_task(self._faults(), name="sim-faults"))

    async def stop(self) -> None:
        """Stop traffic, then take gateways and speakers offline cleanly."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for speaker in self.speakers:
            await speaker.stop()
        for gateway in self.gateways.values():
            await gateway.stop()

    async def inject(self, fault: Fault, *, code: str | None = None) -> str:
        """Inject one fault on a station (the first one by default); what was done, in words."""
        gateway = self.gateways[code] if code else next(iter(self.gateways.values()))
        duration = self.options.fault_duration_seconds
        if fault is Fault.LINK_DROP:
            await gateway.drop_link(duration)
            return f"{gateway.code}: link dropped for {duration:g} s"
        if fault is Fault.POWER_LOSS:
            await gateway.power_loss(duration)
            return f"{gateway.code}: power lost for {duration:g} s"
        idle = [p.number for p in gateway.pumps.values() if not p.busy()]
        if not idle:
            raise SimError(f"{gateway.code}: no idle fuelling point for a stuck nozzle")
        fp = self.rng.choice(idle)
        gateway.stuck_nozzle(fp)
        await self.clock.sleep(duration)
        gateway.free_nozzle(fp)
        return f"{gateway.code}: nozzle of fp {fp} stuck for {duration:g} s"

    async def _faults(self) -> None:
        await self.clock.sleep(self.options.fault_after_seconds)
        while True:
            for fault in self.options.faults:
                try:
                    log.warning("injecting fault %s", fault.value)
                    log.warning("fault done: %s", await self.inject(fault))
                except SimError as exc:
                    log.warning("fault %s skipped: %s", fault.value, exc)
            if self.options.fault_every_seconds is None:
                return
            await self.clock.sleep(self.options.fault_every_seconds)
