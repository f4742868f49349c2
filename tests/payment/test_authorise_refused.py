"""A pump that refuses the authorisation: the prepaid order is refunded in full."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from forecourt.outbox import Event, handlers
from forecourt.payment import tasks
from tests.payment.conftest import Forecourt
from tests.pump.helpers import eventually


def _finished(**payload: object) -> Event:
    return Event(1, "pump.command_finished", dict(payload), datetime(2026, 3, 2, tzinfo=UTC), 0)


@pytest.mark.parametrize(
    ("payload", "wanted"),
    [
        ({"type": "authorise", "status": "done"}, False),
        ({"type": "authorise", "status": "failed"}, True),
        ({"type": "authorise", "status": "timed_out"}, True),
        ({"type": "stop", "status": "failed"}, False),
        ({"type": "lock_sale", "status": "timed_out"}, False),
    ],
)
def test_only_an_authorisation_that_did_not_go_through_opens_a_unit_of_work(
    payload: dict[str, object], wanted: bool
) -> None:
    [handler] = [
        h for h in handlers.for_topic("pump.command_finished") if h.fn is tasks.authorise_failed
    ]
    assert handler.name == "payment.authorise_failed"
    assert handler.when is not None
    assert handler.when(_finished(**payload)) is wanted


def _runs(outcome: str) -> float:
    labels = {"handler": "payment.authorise_failed", "outcome": outcome}
    return REGISTRY.get_sample_value("forecourt_outbox_handler_runs_total", labels) or 0.0


async def test_a_refused_authorisation_is_refunded_in_full(forecourt: Forecourt) -> None:
    fc = forecourt
    fc.gateway.reject["authorise"] = "nozzle_busy"
    done_before = _runs("done")
    made = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 20_000},
    )
    assert made.status_code == 201, made.text
    order_id = made.json()["id"]
    payment = (
        await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()

    async def refunded() -> dict[str, object] | None:
        body: dict[str, object] = (await fc.get(f"/api/v1/orders/{order_id}")).json()
        return body if body["refunded_fen"] == 20_000 else None

    body = await eventually(refunded, what="order refunded in full")
    assert body["settled_fen"] == 0
    assert _runs("done") == done_before + 1
