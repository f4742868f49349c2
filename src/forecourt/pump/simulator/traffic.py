"""Automatic traffic for the demo: cars arrive at random nozzles and fuel 20-60 L."""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass

from forecourt.pump.domain import FPState
from forecourt.pump.simulator.gateway import GatewaySim
from forecourt.pump.simulator.pump import SimError

log = logging.getLogger("forecourt.simulator")


@dataclass(frozen=True)
class TrafficConfig:
    """How busy the station is; times in simulated seconds."""

    mean_arrival_seconds: float = 4.0
    min_litres: float = 20.0
    max_litres: float = 60.0
    payable_cap: int = 3
    hang_after: tuple[float, float] = (1.0, 3.0)
    walk_to_pump: tuple[float, float] = (2.0, 6.0)
    give_up_seconds: float = 90.0
    step_seconds: float = 0.5
    kiosk_settle_after_seconds: float | None = None


class TrafficDriver:
    """Drives one gateway's pumps like drivers would; never touches the link."""

    def __init__(
        self, gateway: GatewaySim, *, config: TrafficConfig | None = None, rng: random.Random
    ) -> None:
        self.gateway = gateway
        self.config = config or TrafficConfig()
        self.rng = rng
        self.arrivals = 0
        self._next_arrival = self._gap()
        self._walking: dict[int, float] = {}
        self._waiting: dict[int, float] = {}
        self._unpaid_for: dict[tuple[int, int], float] = {}

    def _gap(self) -> float:
        return self.rng.expovariate(1.0 / self.config.mean_arrival_seconds)

    def _litres_ml(self) -> int:
        return int(self.rng.uniform(self.config.min_litres, self.config.max_litres) * 1000)

    def _hang_after(self) -> float:
        return self.rng.uniform(*self.config.hang_after)

    async def run(self) -> None:
        """Step the traffic forever (cancel to stop)."""
        clock = self.gateway.clock
        while True:
            await clock.sleep(self.config.step_seconds)
            self.step(self.config.step_seconds)

    def step(self, dt: float) -> None:
        """Advance the traffic by `dt` simulated seconds."""
        self._pay_at_pump(dt)
        self._give_up(dt)
        self._kiosk(dt)
        self._next_arrival -= dt
        if self._next_arrival <= 0:
            self._next_arrival = self._gap()
            self._arrive()

    def _arrive(self) -> None:
        """A post-pay driver picks a free pump (not one with too many unpaid sales)."""
        cap = self.config.payable_cap
        free = [
            p
            for p in self.gateway.pumps.values()
            if not p.busy() and p.payable_count() < cap and p.open_count() < cap * 2
        ]
        if not free:
            return
        pump = self.rng.choice(free)
        nozzle = self.rng.choice(sorted(pump.grades))
        with contextlib.suppress(SimError):
            self.gateway.lift(
                pump.number, nozzle, target_ml=self._litres_ml(), hang_after=self._hang_after()
            )
            self.arrivals += 1

    def _pay_at_pump(self, dt: float) -> None:
        """A driver who paid in the app walks to the authorised pump and lifts the nozzle."""
        for pump in self.gateway.pumps.values():
            auth = pump.fp.authorisation
            ready = (
                pump.state is FPState.AUTHORISED
                and pump.lifted is None
                and auth is not None
                and auth.order_id is not None
            )
            if not ready:
                self._walking.pop(pump.number, None)
                continue
            assert auth is not None
            left = self._walking.get(pump.number)
            if left is None:
                self._walking[pump.number] = self.rng.uniform(*self.config.walk_to_pump)
                continue
            left -= dt
            self._walking[pump.number] = left
            if left > 0:
                continue
            del self._walking[pump.number]
            nozzle = auth.nozzle or self.rng.choice(sorted(pump.grades))
            # With a preset the pump stops at it; without one the driver fills up.
            target = None if auth.preset is not None else self._litres_ml()
            with contextlib.suppress(SimError):
                self.gateway.lift(
                    pump.number, nozzle, target_ml=target, hang_after=self._hang_after()
                )

    def _give_up(self, dt: float) -> None:
        """Without auto-authorisation nobody may come: the driver hangs up and leaves."""
        for pump in self.gateway.pumps.values():
            if pump.state is not FPState.CALLING or pump.stuck:
                self._waiting.pop(pump.number, None)
                continue
            waited = self._waiting.get(pump.number, 0.0) + dt
            self._waiting[pump.number] = waited
            if waited >= self.config.give_up_seconds:
                del self._waiting[pump.number]
                self.gateway.hang(pump.number)

    def _kiosk(self, dt: float) -> None:
        """Optionally an attendant takes cash for sales left unpaid for a long time."""
        after = self.config.kiosk_settle_after_seconds
        if after is None:
            return
        seen: set[tuple[int, int]] = set()
        for pump in self.gateway.pumps.values():
            for sale in pump.buffer.sales:
                if sale.status.value != "payable":
                    continue
                key = (pump.number, sale.seq)
                seen.add(key)
                waited = self._unpaid_for.get(key, 0.0) + dt
                self._unpaid_for[key] = waited
                if waited >= after and self.gateway.online:
                    self.gateway.settle_at_kiosk(pump.number, sale.seq)
        self._unpaid_for = {k: v for k, v in self._unpaid_for.items() if k in seen}
