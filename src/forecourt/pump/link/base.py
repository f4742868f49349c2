"""One interface for MQTT clients, whether the broker is Mosquitto or in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Message:
    """A message received on a subscription."""

    topic: str
    payload: bytes
    retain: bool = False
    duplicate: bool = False


@dataclass(eq=False)
class Delivery:
    """A received message and its acknowledgement, to call once it has been handled."""

    message: Message
    _on_ack: Callable[[], None] | None = field(default=None, repr=False)

    def ack(self) -> None:
        """Acknowledge (PUBACK) the message; later calls do nothing."""
        on_ack, self._on_ack = self._on_ack, None
        if on_ack is not None:
            on_ack()


@dataclass(frozen=True)
class Will:
    """The last-will message the broker publishes when a client drops."""

    topic: str
    payload: bytes
    retain: bool = True


class LinkClient(Protocol):
    """An MQTT-style client: connect, subscribe, publish (QoS 1), receive."""

    client_id: str

    async def connect(self) -> None:
        """Open the session (persistent: queued QoS 1 messages survive reconnects)."""
        ...

    async def disconnect(self) -> None:
        """Close cleanly (the will is not published)."""
        ...

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe with QoS 1."""
        ...

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_seconds: int | None = None
    ) -> None:
        """Publish with QoS 1 (`expiry_seconds`: MQTT 5 Message Expiry Interval, if any)."""
        ...

    def messages(self) -> AsyncIterator[Message]:
        """Messages on the client's subscriptions, in arrival order."""
        ...


@runtime_checkable
class AckingClient(Protocol):
    """A client whose messages can be handled concurrently and acknowledged one by one."""

    def deliveries(self) -> AsyncIterator[Delivery]:
        """Messages in arrival order, each acknowledged by its `Delivery.ack()`."""
        ...


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard matching (`+` one level, `#` the rest)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts):
            return False
        if part != "+" and part != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)
