"""When a failed event is tried again: capped exponential backoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before attempt n+1 is `base * factor**(n-1)`, never more than `cap`."""

    base: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    warn_after: int = 10

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure (1 = first failure)."""
        if attempts < 1:
            return timedelta(0)
        cap = self.cap.total_seconds()
        seconds = self.base.total_seconds() * self.factor ** min(attempts - 1, 64)
        return timedelta(seconds=min(seconds, cap))
