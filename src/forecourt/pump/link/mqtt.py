"""A LinkClient on a real MQTT 5 broker (Mosquitto, EMQX) through aiomqtt.

Every connection is MQTT 5 with Clean Start = false and a Session Expiry Interval, so the
broker keeps the subscriptions and queues QoS 1 messages while the client is away. Incoming
QoS 1 messages are acknowledged (PUBACK) only when the consumer is done with them: with
`messages()` when it asks for the next message, with `deliveries()` when it calls
`Delivery.ack()` (several messages may be in hand at once; PUBACKs still leave in arrival
order, as MQTT 5 section 4.6 requires). A message whose processing was cut short by a crash or
a lost connection is delivered again.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from forecourt.pump.link.base import Delivery, Message, Will

QOS = 1
WILL_DELAY_SECONDS = 10
CONTENT_TYPE = "application/json"


class LinkDisconnected(ConnectionError):
    """The connection to the broker is gone; reconnect (the session is kept by the broker)."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to log in."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """mqtt://[user:pass@]host[:1883] or mqtts://...[:8883]."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"mqtt_url must be mqtt://host:port or mqtts://host:port: {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def publish_properties(*, expiry_seconds: int | None = None) -> Properties:
    """UTF-8 JSON payload markers (and a Message Expiry Interval for commands)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.PayloadFormatIndicator = 1
    props.ContentType = CONTENT_TYPE
    if expiry_seconds is not None:
        props.MessageExpiryInterval = max(1, expiry_seconds)
    return props


class MqttLinkClient:
    """LinkClient over MQTT 5: persistent session, QoS 1, optional retained last will."""

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        *,
        will: Will | None = None,
        session_expiry_seconds: int = 604_800,
        keepalive_seconds: int = 30,
        persistent: bool = True,
        will_delay_seconds: int = WILL_DELAY_SECONDS,
        receive_maximum: int | None = None,
    ) -> None:
        self.address = address
        self.receive_maximum = receive_maximum
        self.will_delay_seconds = will_delay_seconds
        self.client_id = client_id
        self.will = will
        self.session_expiry_seconds = session_expiry_seconds
        self.keepalive_seconds = keepalive_seconds
        self.persistent = persistent
        self._client: aiomqtt.Client | None = None

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still drop at any moment)."""
        return self._client is not None

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_seconds if self.persistent else 0
        if self.receive_maximum is not None:
            # How many unacknowledged QoS 1 messages the broker may send (Mosquitto: 20 otherwise).
            props.ReceiveMaximum = self.receive_maximum
        return props

    def _aiomqtt_will(self) -> aiomqtt.Will | None:
        if self.will is None:
            return None
        props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        props.WillDelayInterval = self.will_delay_seconds
        props.PayloadFormatIndicator = 1
        props.ContentType = CONTENT_TYPE
        return aiomqtt.Will(
            self.will.topic, self.will.payload, qos=QOS, retain=self.will.retain, properties=props
        )

    async def connect(self) -> None:
        """Open the session: MQTT 5, Clean Start false (persistent), manual QoS 1 acks."""
        if self._client is not None:
            return
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=self.client_id,
            username=self.address.username,
            password=self.address.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not self.persistent,
            properties=self._connect_properties(),
            will=self._aiomqtt_will(),
            keepalive=self.keepalive_seconds,
            timeout=10,
            tls_context=ssl.create_default_context() if self.address.tls else None,
            # Small packets (PUBACK, then a PUBLISH) must not wait for Nagle + delayed ACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # PUBACK only after the consumer is done with a message (see the module docstring).
        client._client.manual_ack_set(True)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise LinkDisconnected(f"cannot connect to {self.address.host}: {exc}") from exc
        self._client = client

    async def disconnect(self) -> None:
        """Close cleanly (normal disconnection: the broker does not publish the will)."""
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):  # already gone
            await client.__aexit__(None, None, None)
        _forget_disconnect_error(client)

    def _require(self) -> aiomqtt.Client:
        if self._client is None:
            raise LinkDisconnected("not connected")
        return self._client

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe with QoS 1."""
        try:
            await self._require().subscribe(topic_filter, qos=QOS, timeout=10)
        except aiomqtt.MqttError as exc:
            await self._lost()
            raise LinkDisconnected(str(exc)) from exc

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_seconds: int | None = None
    ) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        try:
            await self._require().publish(
                topic,
                payload,
                qos=QOS,
                retain=retain,
                properties=publish_properties(expiry_seconds=expiry_seconds),
                timeout=10,
            )
        except aiomqtt.MqttError as exc:
            await self._lost()
            raise LinkDisconnected(str(exc)) from exc

    async def messages(self) -> AsyncIterator[Message]:
        """Messages on the subscriptions; each is acknowledged when the next one is requested."""
        client = self._require()
        iterator = client.messages
        while True:
            try:
                raw = await iterator.__anext__()
            except aiomqtt.MqttError as exc:
                await self._lost()
                raise LinkDisconnected(str(exc)) from exc
            payload = raw.payload if isinstance(raw.payload, bytes) else str(raw.payload).encode()
            yield Message(topic=raw.topic.value, payload=payload, retain=bool(raw.retain))
            _ack(client, raw)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Messages on the subscriptions, each acknowledged by `Delivery.ack()` (in order)."""
        client = self._require()
        window = _AckWindow(self, client)
        iterator = client.messages
        while True:
            try:
                raw = await iterator.__anext__()
            except aiomqtt.MqttError as exc:
                await self._lost()
                raise LinkDisconnected(str(exc)) from exc
            payload = raw.payload if isinstance(raw.payload, bytes) else str(raw.payload).encode()
            message = Message(topic=raw.topic.value, payload=payload, retain=bool(raw.retain))
            yield Delivery(message, window.add(raw))

    def drop(self) -> None:
        """Break the TCP connection without DISCONNECT, as a crash would (tests)."""
        if self._client is not None:
            sock = self._client._client.socket()
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)

    async def _lost(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # the connection is already broken
                await client.__aexit__(None, None, None)
            _forget_disconnect_error(client)


def _forget_disconnect_error(client: aiomqtt.Client) -> None:
    """Mark aiomqtt's disconnect error as seen (we handled it), so asyncio does not log it."""
    future = client._disconnected
    if future.done() and not future.cancelled():
        future.exception()


def _ack(client: aiomqtt.Client, raw: aiomqtt.Message) -> None:
    if raw.qos > 0:
        client._client.ack(raw.mid, raw.qos)


@dataclass(eq=False)
class _InHand:
    raw: aiomqtt.Message
    handled: bool = False


class _AckWindow:
    """Messages in hand on one connection; PUBACKs for the handled prefix, in arrival order."""

    def __init__(self, owner: MqttLinkClient, client: aiomqtt.Client) -> None:
        self.owner = owner
        self.client = client
        self.entries: deque[_InHand] = deque()

    def add(self, raw: aiomqtt.Message) -> Callable[[], None]:
        """Track a message; the callable marks it handled."""
        entry = _InHand(raw)
        self.entries.append(entry)

        def done() -> None:
            entry.handled = True
            self._release()

        return done

    def _release(self) -> None:
        if self.owner._client is not self.client:
            self.entries.clear()  # that connection is gone: the broker delivers them again
            return
        while self.entries and self.entries[0].handled:
            _ack(self.client, self.entries.popleft().raw)


def make_client(
    url: str,
    client_id: str,
    *,
    will: Will | None = None,
    username: str | None = None,
    password: str | None = None,
    session_expiry_seconds: int = 604_800,
    keepalive_seconds: int = 30,
    persistent: bool = True,
    will_delay_seconds: int = WILL_DELAY_SECONDS,
) -> MqttLinkClient:
    """A client for the broker at `url` (credentials in the URL win over the arguments)."""
    address = BrokerAddress.parse(url)
    if address.username is None and username is not None:
        address = BrokerAddress(address.host, address.port, address.tls, username, password)
    return MqttLinkClient(
        address,
        client_id,
        will=will,
        session_expiry_seconds=session_expiry_seconds,
        keepalive_seconds=keepalive_seconds,
        persistent=persistent,
        will_delay_seconds=will_delay_seconds,
    )


def node_suffix() -> str:
    """A short random suffix for publish-only client ids (unique per process)."""
    return uuid.uuid4().hex[:8]
