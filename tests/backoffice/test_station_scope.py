"""A manager of station A gets 404 for every station-B resource, in lists and by id.

The routes are enumerated from the app, so a new GET route under /admin or /staff is checked
as soon as it exists: a path parameter this test cannot fill with a station-B value fails it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute

from forecourt.app import API, area_routers
from forecourt.invoice.models import Invoice, InvoiceLine, InvoiceSeller
from tests.backoffice.conftest import Office, paid_order, pump_sale, succeeded_refund
from tests.fixtures.auth import make_staff

# Lists whose station filter narrows the caller's own scope instead of refusing another station.
NARROWING_FILTERS = {f"{API}/staff": "a manager lists only attendants of their own stations"}


def routes(router: APIRouter, prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every HTTP route of a router with its full path, included routers flattened."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        nested = getattr(route, "original_router", None)
        if isinstance(nested, APIRouter):
            context = getattr(route, "include_context", None)
            yield from routes(nested, prefix + str(getattr(context, "prefix", "")))


def staff_get_routes() -> list[tuple[str, APIRoute]]:
    """GET routes for staff: everything under /admin and /staff."""
    found = [
        (path, route)
        for router in area_routers()
        for path, route in routes(router, API)
        if "GET" in (route.methods or set())
        and (path.startswith(f"{API}/admin") or path.startswith(f"{API}/staff"))
    ]
    return sorted(found, key=lambda item: item[0])


def hq_only(route: APIRoute) -> bool:
    """True when only head office may call the route (others get 403 before any lookup)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "__name__", "") == "staff_hq_admin":
            return True
        stack += dep.dependencies
    return False


def leaks(body: Any, station: int, names: set[str]) -> list[str]:
    """Where a JSON body shows a station-B row."""
    found: list[str] = []
    if isinstance(body, dict):
        if body.get("station_id") == station:
            found.append(f"station_id in {sorted(body)}")
        if station in (body.get("station_ids") or []):
            found.append(f"station_ids in {sorted(body)}")
        for value in body.values():
            found += leaks(value, station, names)
    elif isinstance(body, list):
        for value in body:
            found += leaks(value, station, names)
    elif isinstance(body, str) and body in names:
        found.append(body)
    return found


async def _station_b_objects(office: Office) -> dict[str, Any]:
    rt, b = office.runtime, office.b
    order_id = await paid_order(rt, station_id=b, member_id=office.member_id)
    await succeeded_refund(rt, order_id=order_id, amount_fen=100)
    await pump_sale(rt, station_id=b, seq=1)
    shift = await office.http.post(f"{API}/admin/stations/{b}/shifts", headers=office.manager_b)
    price = await office.http.post(
        f"{API}/admin/stations/{b}/prices",
        json={"grade": "92", "price_fen": 700},
        headers=office.manager_b,
    )
    assert shift.is_success
    assert price.is_success
    attendant = await make_staff(rt, role="attendant", station_ids=[b])
    async with rt.db.unit_of_work() as session:
        seller = InvoiceSeller(tax_id="91530100MA6K000001", name="乙站公司", quota_ml=10**9)
        session.add(seller)
        await session.flush()
        invoice = Invoice(
            invoice_no="INVB0000000000000001",
            kind="blue",
            status="issued",
            member_id=office.member_id,
            seller_id=seller.id,
            seller_tax_id=seller.tax_id,
            seller_name=seller.name,
            buyer_kind="personal",
            buyer_name="个人",
            total_fen=23_280,
            net_fen=20_602,
            tax_fen=2_678,
            volume_ml=30_000,
            provider="nuonuo",
        )
        session.add(invoice)
        await session.flush()
        session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                line_no=1,
                order_id=order_id,
                station_id=b,
                grade_code="92",
                goods_name="*汽油*92号车用汽油",
                tax_code="1070101010100000000",
                unit="升",
                volume_ml=30_000,
                unit_price="7.76",
                amount_fen=23_280,
                net_fen=20_602,
                tax_fen=2_678,
            )
        )
        await session.flush()
        invoice_id = invoice.id
    return {
        "station_id": b,
        "order_id": order_id,
        "shift_id": shift.json()["id"],
        "number": 1,
        "invoice_id": invoice_id,
        "member_id": office.member_id,
        "staff_id": attendant.id,
    }


async def test_manager_of_a_never_sees_station_b(office: Office) -> None:
    values = await _station_b_objects(office)
    secret_strings = {values["order_id"]}
    checked: list[str] = []
    for path, route in staff_get_routes():
        params = [p.name for p in route.dependant.path_params]
        queries = {q.alias for q in route.dependant.query_params}
        refused = 403 if hq_only(route) else 404
        if params:
            missing = [p for p in params if p not in values]
            assert not missing, f"{path}: give this test a station-B value for {missing}"
            url = path.format(**{p: values[p] for p in params})
            resp = await office.http.get(url, headers=office.manager_a)
            assert resp.status_code == refused, (path, resp.status_code, resp.text[:200])
            checked.append(path)
            continue
        if "station_id" in queries:
            resp = await office.http.get(
                path, params={"station_id": office.b}, headers=office.manager_a
            )
            if path in NARROWING_FILTERS:
                assert resp.status_code == 200, (path, resp.text[:200])
                assert leaks(resp.json(), office.b, secret_strings) == [], path
            else:
                assert resp.status_code == refused, (path, resp.status_code, resp.text[:200])
        resp = await office.http.get(path, headers=office.manager_a)
        if hq_only(route):
            assert resp.status_code == 403, (path, resp.status_code)
        else:
            assert resp.status_code == 200, (path, resp.status_code, resp.text[:200])
            if resp.headers["content-type"].startswith("application/json"):
                assert leaks(orjson.loads(resp.content), office.b, secret_strings) == [], path
            else:
                assert values["order_id"] not in resp.text, path
        checked.append(path)

    # The new back-office routes are among those checked.
    for suffix in (
        "/admin/audit",
        "/admin/dashboard",
        "/admin/shifts/{shift_id}",
        "/admin/shifts/{shift_id}/summary",
        "/admin/stations/{station_id}/shifts",
        "/admin/stations/{station_id}/shifts/current",
        "/admin/stations/{station_id}/shifts/export",
        "/admin/stations/{station_id}/orders/export",
        "/admin/stations/{station_id}/orders",
        "/admin/orders/{order_id}",
        "/admin/stations/{station_id}/tanks/{number}/readings",
        "/admin/stations/{station_id}/redemptions",
        "/admin/invoices/{invoice_id}",
        "/staff/{staff_id}",
    ):
        assert API + suffix in checked, suffix
    stations = await office.http.get(f"{API}/admin/stations", headers=office.manager_a)
    assert [s["id"] for s in stations.json()["items"]] == [office.a]
    # Station B's sales never reach A's dashboard, nor B's price change A's audit log.
    dash = await office.http.get(f"{API}/admin/dashboard", headers=office.manager_a)
    assert dash.json()["totals"]["orders"] == 0
    audit = await office.http.get(f"{API}/admin/audit", headers=office.manager_a)
    assert audit.json()["items"] == []
    hq_audit = await office.http.get(f"{API}/admin/audit", headers=office.hq)
    assert {e["station_id"] for e in hq_audit.json()["items"]} == {office.b}
