"""Time for the simulator: real timestamps, physics and timers sped up by a factor."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from forecourt.kit import clock


class SimClock:
    """`now()` is the wall clock (what goes into `ts` and is compared with `valid_until`);
    durations (flow, timers, traffic) run `speed` times faster than real time."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed

    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        return clock.now()

    def elapsed(self) -> float:
        """A monotonic reading in simulated seconds."""
        return time.monotonic() * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(max(seconds, 0.0) / self.speed)
