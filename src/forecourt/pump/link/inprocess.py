"""An in-process broker with MQTT semantics: QoS 1 queues, retained messages, last wills."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from forecourt.pump.link.base import Delivery, Message, Will, topic_matches


class InProcessBroker:
    """Routes messages between in-process clients; sessions persist across reconnects."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self._sessions: dict[str, _Session] = {}

    def client(self, client_id: str, *, will: Will | None = None) -> InProcessClient:
        """A client bound to this broker."""
        return InProcessClient(self, client_id, will=will)

    def _session(self, client_id: str) -> _Session:
        return self._sessions.setdefault(client_id, _Session())

    async def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Deliver to every matching session (queued while the client is away)."""
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)
        for session in self._sessions.values():
            if any(topic_matches(f, topic) for f in session.filters):
                session.queue.put_nowait(Message(topic=topic, payload=payload))

    async def drop(self, client_id: str) -> None:
        """Simulate a lost connection: the broker publishes the client's will."""
        session = self._sessions.get(client_id)
        if session is None or not session.connected:
            return
        session.connected = False
        if session.will is not None:
            await self.publish(session.will.topic, session.will.payload, retain=session.will.retain)


class _Session:
    def __init__(self) -> None:
        self.filters: set[str] = set()
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.connected = False
        self.will: Will | None = None


class InProcessClient:
    """A LinkClient on an InProcessBroker."""

    def __init__(self, broker: InProcessBroker, client_id: str, *, will: Will | None) -> None:
        self.broker = broker
        self.client_id = client_id
        self.will = will

    async def connect(self) -> None:
        """Resume or start the session."""
        session = self.broker._session(self.client_id)
        session.connected = True
        session.will = self.will

    async def disconnect(self) -> None:
        """Leave without publishing the will."""
        self.broker._session(self.client_id).connected = False

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe and receive matching retained messages."""
        session = self.broker._session(self.client_id)
        session.filters.add(topic_filter)
        for topic, payload in list(self.broker.retained.items()):
            if topic_matches(topic_filter, topic):
                session.queue.put_nowait(Message(topic=topic, payload=payload, retain=True))

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_seconds: int | None = None
    ) -> None:
        """Publish through the broker (expiry is not modelled in-process)."""
        await self.broker.publish(topic, payload, retain=retain)

    async def messages(self) -> AsyncIterator[Message]:
        """Messages queued for this session."""
        queue = self.broker._session(self.client_id).queue
        while True:
            yield await queue.get()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Messages queued for this session (the in-process broker has nothing to acknowledge)."""
        async for message in self.messages():
            yield Delivery(message)
