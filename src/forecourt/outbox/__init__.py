"""Transactional outbox: publish events in a unit of work, handle them after it commits."""

from forecourt.outbox.registry import Event, HandlerRegistry, handlers, handles
from forecourt.outbox.service import publish

__all__ = ["Event", "HandlerRegistry", "handlers", "handles", "publish"]
