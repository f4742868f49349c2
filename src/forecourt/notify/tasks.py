"""Background work of the notify area."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.notify.speaker import CREATED, wake_local_senders
from forecourt.outbox import Event, handles


@handles(CREATED, name="notify.speaker_wake")
async def wake_speaker_sender(session: AsyncSession, event: Event) -> None:
    """An announcement was committed: the sender of this process sends it at once (other
    processes find it at their next poll)."""
    wake_local_senders()
