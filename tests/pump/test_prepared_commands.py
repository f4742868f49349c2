"""Commands written, sent and answered through prepared statements, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from forecourt.kit import clock
from forecourt.outbox.models import OutboxEvent
from forecourt.pump import alerts, commands, protocol, repository
from forecourt.pump.domain import FPState
from forecourt.pump.models import PumpCommand
from forecourt.runtime import Runtime
from tests.pump.helpers import fp_row, make_pump_station

PUMP_TABLES = ("pump_commands", "fuelling_points", "nozzles", "pump_gateways")


@pytest.fixture
def pump_statements(runtime: Runtime) -> Iterator[list[str]]:
    """The statements on pump tables sent while the test runs (first line, as sent)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        head = sql.split("\n", 1)[0]
        if any(f" {table}" in sql.split(" WHERE ", 1)[0] for table in PUMP_TABLES):
            seen.append(head.split(" SET ", 1)[0].split(",", 1)[0])

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def _command(runtime: Runtime, command_id: str) -> PumpCommand:
    async with runtime.db.read_only() as session:
        row = await session.get(PumpCommand, command_id)
        assert row is not None
        session.expunge(row)
        return row


async def _events(runtime: Runtime, topic: str) -> list[OutboxEvent]:
    async with runtime.db.read_only() as session:
        stmt = select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        rows = list((await session.scalars(stmt)).all())
        session.expunge_all()
        return rows


async def test_a_command_is_sent_resent_and_timed_out(runtime: Runtime) -> None:
    station = await make_pump_station(runtime)
    now = clock.now()
    async with runtime.db.unit_of_work() as session:
        made = await commands.report_state(session, station_id=station.id, fp_number=1, now=now)
    stored = await _command(runtime, made)
    assert (stored.status, stored.attempts, stored.type, stored.fp_number) == (
        "pending",
        0,
        "report_state",
        1,
    )
    assert (stored.created_at, stored.valid_until) == (now, now + timedelta(minutes=1))
    assert stored.payload["command_id"] == made

    sent_at = [now + timedelta(seconds=1), now + timedelta(seconds=11)]
    for attempt, at in enumerate(sent_at, start=1):
        async with runtime.db.unit_of_work() as session:
            out = await commands.prepare_publish(
                session, command_id=made, now=at, resend_seconds=10
            )
        assert out is not None
        assert (out.first, out.command_id, out.fp_number) == (attempt == 1, made, 1)
        assert commands.wire_field(out, "ts") is not None
        row = await _command(runtime, made)
        assert (row.status, row.attempts, row.sent_at) == ("sent", attempt, at)
        resend = (await _events(runtime, commands.COMMAND_EVENT))[-1]
        assert row.resend_event_id == resend.id
        assert resend.available_at == at + timedelta(seconds=10)

    async with runtime.db.unit_of_work() as session:
        late = now + timedelta(minutes=1)
        assert (
            await commands.prepare_publish(session, command_id=made, now=late, resend_seconds=10)
            is None
        )
    row = await _command(runtime, made)
    assert (row.status, row.reason, row.attempts) == (
        "timed_out",
        "no answer before valid_until",
        2,
    )
    [finished] = await _events(runtime, commands.FINISHED_EVENT)
    assert (finished.payload["status"], finished.payload["reason"]) == (
        "timed_out",
        "no answer before valid_until",
    )
    async with runtime.db.read_only() as session:
        raised = await alerts.list_alerts(session, station_id=station.id)
        assert [(a.kind, a.code) for a in raised] == [(alerts.COMMAND_TIMEOUT, "report_state")]


async def test_an_authorise_ack_sees_and_updates_the_rows_the_unit_already_changed(
    runtime: Runtime, pump_statements: list[str]
) -> None:
    """The link applies several messages in one unit: earlier changes are not flushed yet."""
    station = await make_pump_station(runtime)
    now = clock.now()
    async with runtime.db.unit_of_work() as session:
        command_id = (
            await commands.create(
                session,
                station_id=station.id,
                type_="authorise",
                fp_number=1,
                body={"fp": 1, "auth_ref": "ord_1", "preset": None, "nozzle": 1},
                ttl=timedelta(minutes=2),
                now=now,
            )
        ).id
    ack = protocol.CommandAck.model_validate({"command_id": command_id, "status": "ok", "ts": now})
    pump_statements.clear()
    async with runtime.db.unit_of_work() as session:
        fp = await repository.fuelling_point(session, station.id, 1, for_update=True)
        assert fp is not None
        fp.state, fp.last_event_seq = int(FPState.IDLE), 7  # a state report, not flushed
        effects = await commands.apply_ack(session, station_id=station.id, ack=ack, now=now)
        assert (fp.state, fp.authorisation and fp.authorisation["order_id"]) == (
            int(FPState.AUTHORISED),
            "ord_1",
        )
        again = await repository.fuelling_point(session, station.id, 1, for_update=True)
        assert again is fp
    assert [m["state_code"] for m in effects.live] == [int(FPState.AUTHORISED)]
    assert pump_statements == [
        "SELECT fuelling_points.id",  # the state report's row, locked
        "SELECT pump_commands.id",
        "UPDATE pump_commands",
        "UPDATE fuelling_points",  # the state report's change, flushed before the read
        "SELECT fuelling_points.id",  # with its nozzles and the gateway, in one statement
        "UPDATE fuelling_points",
        "SELECT fuelling_points.id",  # the second lookup above
    ]
    stored = await fp_row(runtime, station.id, 1)
    assert (stored.state, stored.last_event_seq, stored.state_changed_at) == (
        int(FPState.AUTHORISED),
        7,
        now,
    )
    assert stored.authorisation is not None
    assert (stored.authorisation["order_id"], stored.authorisation["nozzle"]) == ("ord_1", 1)
    row = await _command(runtime, command_id)
    assert (row.status, row.acked_at, row.resend_event_id, row.reason) == ("done", now, None, None)
    [finished] = await _events(runtime, commands.FINISHED_EVENT)
    assert (finished.payload["status"], finished.payload["ref"]) == ("done", "ord_1")
