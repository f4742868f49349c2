"""Bad gateway input is refused, counted and alerted; the link keeps running; stock is safe."""

from __future__ import annotations

import orjson
from prometheus_client import REGISTRY
from sqlalchemy import select

from forecourt.pump.models import StationAlert
from forecourt.pump.protocol import TopicKind
from forecourt.runtime import Runtime
from tests.pump.helpers import (
    ScriptedGateway,
    eventually,
    fp_row,
    make_pump_station,
    sale_count,
    sale_report,
)


def refused(code: str) -> float:
    """The refusal counter for one code."""
    return REGISTRY.get_sample_value("forecourt_pump_refused_total", {"code": code}) or 0.0


async def alerts(runtime: Runtime, station_id: int) -> list[tuple[str, str, int]]:
    """(kind, code, occurrences) of the station's open alerts, by code."""
    async with runtime.db.read_only() as session:
        rows = (
            await session.scalars(
                select(StationAlert)
                .where(StationAlert.station_id == station_id)
                .order_by(StationAlert.code)
            )
        ).all()
        return [(r.kind, r.code, r.occurrences) for r in rows]


async def _station(link: Runtime) -> tuple[int, ScriptedGateway]:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    return station.id, gateway


async def _acks(gateway: ScriptedGateway, n: int) -> list[dict[str, object]]:
    async def enough() -> bool:
        return len(gateway.sale_acks) >= n

    await eventually(enough, what=f"{n} sale acks")
    return gateway.sale_acks


async def test_malformed_and_invalid_payloads_are_refused_and_the_link_goes_on(
    link: Runtime,
) -> None:
    station_id, gateway = await _station(link)
    before_json, before_invalid = refused("malformed_json"), refused("invalid_payload")
    await gateway.raw(TopicKind.FP_SALE, 1, b'{"seq": 7, "nozzle":')
    bad = orjson.loads(
        sale_report(
            seq=7, nozzle=1, grade="92", volume_ml=1000, unit_price_fen=776
        ).model_dump_json()
    )
    bad["volume_ml"] = "1000"
    await gateway.raw(TopicKind.FP_SALE, 1, orjson.dumps(bad))
    await gateway.sale(
        1, sale_report(seq=7, nozzle=1, grade="92", volume_ml=1000, unit_price_fen=776)
    )
    acks = await _acks(gateway, 2)
    # The malformed one has no readable seq: no ack. The invalid one is refused by seq.
    assert [(a["seq"], a["status"], a["reason"]) for a in acks] == [
        (7, "refused", "invalid"),
        (7, "accepted", None),
    ]
    assert await sale_count(link, station_id) == 1
    assert refused("malformed_json") == before_json + 1
    assert refused("invalid_payload") == before_invalid + 1
    assert await alerts(link, station_id) == [
        ("pump_input", "invalid_payload", 1),
        ("pump_input", "malformed_json", 1),
    ]
    await gateway.disconnect()


async def test_unknown_nozzle_conflict_and_regression_never_touch_stock(link: Runtime) -> None:
    station_id, gateway = await _station(link)
    first = sale_report(
        seq=1,
        nozzle=1,
        grade="92",
        volume_ml=20_000,
        unit_price_fen=776,
        totalizer_before_ml=5_000_000,
        totalizer_before_fen=4_000_000,
    )
    await gateway.sale(1, first)
    await _acks(gateway, 1)
    before = refused("sequence_conflict")
    # Nozzle 3 is on fuelling point 2, not 1.
    await gateway.sale(
        1, sale_report(seq=2, nozzle=3, grade="95", volume_ml=1000, unit_price_fen=832)
    )
    # Seq 1 again with another volume.
    await gateway.sale(
        1,
        sale_report(
            seq=1,
            nozzle=1,
            grade="92",
            volume_ml=21_000,
            unit_price_fen=776,
            totalizer_before_ml=5_000_000,
            totalizer_before_fen=4_000_000,
        ),
    )
    # Seq 2 whose meters are below those after seq 1.
    await gateway.sale(
        1,
        sale_report(
            seq=2,
            nozzle=1,
            grade="92",
            volume_ml=1000,
            unit_price_fen=776,
            totalizer_before_ml=4_000_000,
            totalizer_before_fen=3_000_000,
        ),
    )
    acks = await _acks(gateway, 4)
    assert [(a["seq"], a["status"], a["reason"]) for a in acks] == [
        (1, "accepted", None),
        (2, "refused", "unknown_nozzle"),
        (1, "refused", "sequence_conflict"),
        (2, "refused", "totalizer_regression"),
    ]
    assert refused("sequence_conflict") == before + 1
    assert await sale_count(link, station_id) == 1
    row = await fp_row(link, station_id, 1)
    assert (row.last_seq, row.missing_seqs) == (1, [])
    assert await alerts(link, station_id) == [
        ("pump_input", "sequence_conflict", 1),
        ("pump_input", "totalizer_regression", 1),
        ("pump_input", "unknown_nozzle", 1),
    ]
    await gateway.disconnect()


async def test_illegal_transition_is_alerted_counted_and_state_is_reread(link: Runtime) -> None:
    station_id, gateway = await _station(link)

    async def idle() -> bool:
        return (await fp_row(link, station_id, 1)).state == 3

    await eventually(idle, what="fp 1 idle")
    await gateway.state(1, 8, nozzle=1)  # Idle -> Fuelling is not a legal report
    await gateway.state(1, 8, nozzle=1)

    async def reread() -> bool:
        return [c["type"] for c in gateway.commands] == ["report_state", "report_state"]

    await eventually(reread, what="two report_state commands")
    assert gateway.commands[0]["fp"] == 1
    assert (await fp_row(link, station_id, 1)).state == 3
    assert await alerts(link, station_id) == [("pump_input", "illegal_transition", 2)]
    await gateway.disconnect()


async def test_message_for_an_unknown_station_is_counted_only(link: Runtime) -> None:
    station_id, gateway = await _station(link)
    stranger = ScriptedGateway.on(link, "NOPE01")
    await stranger.connect(announce=False)
    before = refused("unknown_station")
    await stranger.sale(
        1, sale_report(seq=1, nozzle=1, grade="92", volume_ml=1000, unit_price_fen=776)
    )

    async def counted() -> bool:
        return refused("unknown_station") == before + 1

    await eventually(counted, what="unknown station counted")
    assert stranger.sale_acks == []
    assert await alerts(link, station_id) == []
    await stranger.disconnect()
    await gateway.disconnect()
