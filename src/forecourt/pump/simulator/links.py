"""Link helpers for simulated devices: who connects, abrupt drops, and injected faults."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from forecourt.pump.link.base import LinkClient, Message, Will
from forecourt.pump.link.inprocess import InProcessBroker, InProcessClient
from forecourt.pump.link.mqtt import MqttLinkClient, make_client

Connector = Callable[[str, Will | None], LinkClient]


def inprocess_connector(broker: InProcessBroker) -> Connector:
    """Clients on an in-process broker (the embedded demo and tests)."""

    def connect(client_id: str, will: Will | None) -> LinkClient:
        return broker.client(client_id, will=will)

    return connect


async def abort(client: LinkClient) -> None:
    """Lose the connection without a clean DISCONNECT, so the broker publishes the will."""
    if isinstance(client, FaultyLink):
        await abort(client.inner)
    elif isinstance(client, InProcessClient):
        await client.broker.drop(client.client_id)
    else:
        hard_close = getattr(client, "abort", None)
        if callable(hard_close):
            await hard_close()
        else:
            await client.disconnect()


class FaultyLink:
    """Wraps a LinkClient and drops or duplicates publishes and deliveries at given rates."""

    def __init__(
        self,
        inner: LinkClient,
        *,
        rng: random.Random,
        drop_out: float = 0.0,
        dup_out: float = 0.0,
        drop_in: float = 0.0,
        dup_in: float = 0.0,
        topic_filter: Callable[[str], bool] | None = None,
    ) -> None:
        for rate in (drop_out, dup_out, drop_in, dup_in):
            if not 0.0 <= rate < 1.0:
                raise ValueError("fault rates are in [0, 1)")
        self.inner = inner
        self.client_id = inner.client_id
        self.rng = rng
        self.drop_out, self.dup_out, self.drop_in, self.dup_in = drop_out, dup_out, drop_in, dup_in
        self.applies = topic_filter or (lambda _topic: True)
        self.dropped_out = self.duplicated_out = self.dropped_in = self.duplicated_in = 0

    async def connect(self) -> None:
        """Connect the wrapped client."""
        await self.inner.connect()

    async def disconnect(self) -> None:
        """Disconnect the wrapped client."""
        await self.inner.disconnect()

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe on the wrapped client."""
        await self.inner.subscribe(topic_filter)

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_seconds: int | None = None
    ) -> None:
        """Publish, unless dropped; sometimes twice."""
        if self.applies(topic):
            if self.rng.random() < self.drop_out:
                self.dropped_out += 1
                return
            if self.rng.random() < self.dup_out:
                self.duplicated_out += 1
                await self.inner.publish(
                    topic, payload, retain=retain, expiry_seconds=expiry_seconds
                )
        await self.inner.publish(topic, payload, retain=retain, expiry_seconds=expiry_seconds)

    async def messages(self) -> AsyncIterator[Message]:
        """Deliveries, some dropped and some repeated."""
        async for message in self.inner.messages():
            if self.applies(message.topic):
                if self.rng.random() < self.drop_in:
                    self.dropped_in += 1
                    continue
                if self.rng.random() < self.dup_in:
                    self.duplicated_in += 1
                    yield message
            yield message


class SimMqttClient(MqttLinkClient):
    """An MQTT client that can also drop its connection the hard way (fault injection)."""

    async def abort(self) -> None:
        """DISCONNECT with reason 0x04 (publish my will), then forget the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        with contextlib.suppress(Exception):
            client._client.disconnect(reasoncode=reason)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await client.__aexit__(None, None, None)


def mqtt_connector(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    keepalive_seconds: int = 30,
    session_expiry_seconds: int = 604_800,
) -> Connector:
    """Clients on a real MQTT 5 broker with persistent sessions (section 3)."""
    base = make_client(url, "probe", username=username, password=password)

    def connect(client_id: str, will: Will | None) -> LinkClient:
        return SimMqttClient(
            base.address,
            client_id,
            will=will,
            session_expiry_seconds=session_expiry_seconds,
            keepalive_seconds=keepalive_seconds,
        )

    return connect
