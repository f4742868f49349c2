"""Transactional outbox: publish events in a unit of work, handle them after it commits."""

from forecourt.outbox.registry import Event, HandlerRegistry, handlers, handles, handles_light
from forecourt.outbox.service import cancel, publish

__all__ = [
    "Event",
    "HandlerRegistry",
    "cancel",
    "handlers",
    "handles",
    "handles_light",
    "publish",
]
