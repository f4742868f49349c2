"""Transactional outbox: publish events in a unit of work, handle them after it commits."""

from forecourt.outbox.registry import Event, HandlerRegistry, handlers, handles
from forecourt.outbox.service import cancel, publish

__all__ = ["Event", "HandlerRegistry", "cancel", "handlers", "handles", "publish"]
