"""Background work of the pump area: publishing commands after commit, expiring sale locks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit import clock
from forecourt.outbox import Event, handles
from forecourt.pump import commands, messages, metrics, repository, sales
from forecourt.pump.link import server
from forecourt.worker.jobs import scheduled

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.pump")

SALE_COMMANDS = frozenset({"lock_sale", "unlock_sale", "clear_sale"})


@handles(commands.COMMAND_EVENT, name="pump.publish_command")
async def publish_command(session: AsyncSession, event: Event) -> None:
    """Publish (or resend) a committed command to its gateway; pending -> sent.

    Safe to run again: a command already answered or past `valid_until` is not sent, and a
    repeat reaches the gateway with the same `command_id`, which it executes only once.
    """
    link = server.active()
    now = clock.now()
    out = await commands.prepare_publish(
        session,
        command_id=str(event.payload["command_id"]),
        now=now,
        resend_seconds=link.runtime.settings.pump_command_resend_seconds,
    )
    if out is None:
        return
    await link.publish(out.topic, out.payload, expiry_seconds=out.expiry_seconds)
    metrics.COMMANDS.labels(out.type, "published").inc()
    if out.first and out.type in SALE_COMMANDS and out.fp_number is not None:
        await _announce_sale(session, out, link)


async def _announce_sale(
    session: AsyncSession, out: commands.Outgoing, link: server.PumpLink
) -> None:
    """The sale's new status (committed by the request) to live subscribers."""
    assert out.fp_number is not None
    fp = await repository.fuelling_point(session, out.station_id, out.fp_number)
    seq = commands.wire_field(out, "seq")
    if fp is None or not isinstance(seq, int):
        return
    row = await repository.sale(session, fp_id=fp.id, seq=seq)
    if row is None:
        return
    message = messages.sale_message(row, fp_number=fp.number, now=clock.now())
    try:
        await link.runtime.live.publish(out.station_id, message)
    except Exception:
        log.exception("live sale message not published")


@scheduled("pump.release_expired_locks", cron="* * * * *")
async def release_expired_locks(runtime: Runtime) -> None:
    """Every minute: sales whose order lock ran out become payable and are unlocked at the pump."""
    while True:
        async with runtime.db.unit_of_work() as session:
            released = await sales.release_expired_locks(session, now=clock.now(), limit=500)
        if released < 500:
            return
