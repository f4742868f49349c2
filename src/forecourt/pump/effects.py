"""What a unit of work of the pump area leaves to do after its commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["applied", "duplicate", "refused", "ignored"]


@dataclass(frozen=True)
class Publish:
    """An MQTT message to send after the commit (sale and delivery acks)."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass
class Effects:
    """Live messages and MQTT publishes to send once the unit of work has committed."""

    station_id: int | None = None
    outcome: Outcome = "applied"
    live: list[dict[str, Any]] = field(default_factory=list)
    publish: list[Publish] = field(default_factory=list)

    def add_live(self, message: dict[str, Any]) -> None:
        """Queue a live message (a newer fp message replaces an older one of the same fp)."""
        if message.get("type") == "fp":
            self.live = [
                m for m in self.live if not (m.get("type") == "fp" and m["fp"] == message["fp"])
            ]
        self.live.append(message)
