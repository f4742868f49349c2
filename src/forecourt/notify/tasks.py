"""Background work of the notify area."""

from __future__ import annotations

from forecourt.notify.speaker import CREATED, wake_local_senders
from forecourt.outbox import Event, handles_light


@handles_light(CREATED, name="notify.speaker_wake")
async def wake_speaker_sender(event: Event) -> None:
    """An announcement was committed: the sender of this process sends it at once (other
    processes find it at their next poll). Idempotent and database-free, hence light."""
    wake_local_senders()
