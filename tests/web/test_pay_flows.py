"""The driver's flows end to end in Chromium against the real backend and pump simulator:
post-pay in four taps (R11) with the nozzles on screen at once (R12), pay-at-pump with a
preset, and double taps that never create two orders."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from tests.web.conftest import NEAREST_STATION, Driver, Server, Shots, sign_in, until
from tests.web.visual import assert_clean, audit

PAID = re.compile(r"^(paid|fuelling|completed)$")


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def litres(ml: int) -> str:
    cl = (ml + 5) // 10
    return f"{cl // 100}.{cl % 100:02d} L"


async def open_home(page: Page, server: Server) -> None:
    await page.goto(server.app)
    await expect(page.locator("[data-test=station-name]").first).to_be_visible(timeout=15_000)
    await expect(page.locator("[data-test=nozzle]").first).to_be_visible(timeout=10_000)


def my_orders(server: Server, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = server.get("/api/v1/orders", token)["items"]
    return items


async def test_postpay_is_paid_in_four_taps(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    login = await sign_in(driver, server, "13900000001")
    token = login["access_token"]

    await open_home(page, server)
    # R12: the nearest open station is selected and its nozzle grid is on screen at once.
    assert await page.locator("[data-test=station-card]").first.get_attribute(
        "data-station"
    ) == str(NEAREST_STATION)
    await expect(page.locator("[data-test=live-status]")).to_have_attribute("data-status", "live")
    await shots(page, "home")
    assert_clean(await audit(page, "home", primary=False))

    # A car has fuelled and hung up: its nozzle shows the payable sale.
    tile = page.locator("[data-test=nozzle][data-kind=payable]").first
    await expect(tile).to_be_visible(timeout=45_000)
    nozzle = int(await tile.get_attribute("data-nozzle") or 0)
    await shots(page, "payable-on-grid")

    taps = 0
    await tile.tap()  # tap 1: the nozzle
    taps += 1
    amount = page.locator("[data-test=sale-amount]")
    await expect(amount).to_be_visible()
    shown_amount = await amount.inner_text()
    shown_litres = await page.locator("[data-test=sale-litres]").inner_text()
    sales = next(n for n in server.nozzles()["nozzles"] if n["number"] == nozzle)["payable"]
    newest = max(sales, key=lambda s: s["seq"])
    assert shown_amount == yuan(newest["amount_fen"])
    assert shown_litres == litres(newest["volume_ml"])
    # The breakdown: list price, discounts (best one chosen by the server), to pay.
    await expect(page.locator("[data-test=list-price]")).to_have_text(shown_amount)
    await expect(page.locator("[data-test=to-pay]")).to_have_text(shown_amount)
    await shots(page, "pay")
    assert_clean(await audit(page, "pay (post-pay)", primary=True))

    await page.locator("[data-test=primary]").tap()  # tap 2: pay
    taps += 1
    await page.wait_for_url(re.compile(r"/sandbox/wechatpay/sandbox/cashier"), timeout=15_000)
    await expect(page.get_by_text("沙箱").first).to_be_visible()
    await shots(page, "wechat-sandbox-cashier")

    await page.get_by_role("button", name=re.compile("确认支付")).tap()  # tap 3: confirm
    taps += 1
    await page.wait_for_url(re.compile(r"/app/#/pages/result/result"), timeout=15_000)
    status = page.locator("[data-test=result-status]")
    await expect(status).to_have_attribute("data-status", PAID, timeout=20_000)
    await expect(page.locator("[data-test=paid-amount]")).to_have_text(shown_amount)
    await expect(page.locator("[data-test=headline]")).to_have_text("支付成功")
    await expect(page.locator("[data-test=receipt]")).to_be_visible()
    await expect(page.locator("[data-test=invoice-entry]")).to_be_visible()
    await expect(page.locator("[data-test=points-entry]")).to_be_visible()
    await shots(page, "result")
    assert_clean(await audit(page, "result", primary=True))

    await page.locator("[data-test=primary]").tap()  # tap 4: done
    taps += 1
    await expect(page.locator("[data-test=nozzle-grid]")).to_be_visible()
    await shots(page, "back-home")
    assert taps <= 4, f"post-pay took {taps} taps (R11: at most 4)"

    orders = my_orders(server, token)
    assert len(orders) == 1
    assert orders[0]["kind"] == "postpay"
    assert orders[0]["nozzle"] == nozzle
    assert PAID.match(orders[0]["status"])
    assert orders[0]["paid_fen"] == newest["amount_fen"]
    assert not driver.errors
    assert not [u for u in driver.external if "dcloud" not in u], driver.external


async def test_pay_at_pump_with_a_preset_and_a_double_tap(
    driver: Driver, server: Server, shots: Shots
) -> None:
    page = driver.page
    login = await sign_in(driver, server, "13900000002")
    token = login["access_token"]
    await open_home(page, server)

    # A nozzle whose pump is idle. The simulator sends no more cars to a pump holding three
    # unpaid sales, so such a pump stays free for the driver who pays first.
    def free_pump() -> int | None:
        nozzles = server.nozzles()["nozzles"]
        unpaid: dict[int, int] = {}
        for n in nozzles:
            unpaid[n["fp"]] = unpaid.get(n["fp"], 0) + len(n["payable"])
        for n in nozzles:
            if n["state"] == "Idle" and unpaid[n["fp"]] >= 3:
                return int(n["number"])
        return None

    nozzle = await until("an idle pump", free_pump, within=60)
    tile = page.locator(f"[data-test=nozzle][data-nozzle='{nozzle}']")
    await expect(tile).to_be_visible()
    await tile.tap()
    await expect(page.locator("[data-test=mode]")).to_be_visible()
    await page.locator("[data-test=mode-prepay]").tap()
    await expect(page.locator("[data-test=presets]")).to_be_visible()
    await page.locator("[data-test=preset][data-amount='10000']").tap()
    await page.locator("[data-test=provider][data-provider=alipay]").tap()
    await expect(page.locator("[data-test=to-pay]")).to_have_text("¥100.00")
    await expect(page.locator("[data-test=primary]")).to_contain_text("¥100.00")
    await shots(page, "pay-preset")
    assert_clean(await audit(page, "pay (pay at the pump)", primary=True))

    # Two taps in a row on the pay button: one order, one payment.
    await page.locator("[data-test=primary]").dblclick()
    await page.wait_for_url(re.compile(r"/sandbox/alipay/gateway\.do"), timeout=15_000)
    await shots(page, "alipay-sandbox-cashier")
    orders = my_orders(server, token)
    assert len(orders) == 1, orders
    assert orders[0]["kind"] == "prepay"
    assert orders[0]["preset_fen"] == 10000
    assert len(server.get(f"/api/v1/orders/{orders[0]['id']}/payments", token)) == 1

    await page.get_by_role("button", name=re.compile("确认付款")).tap()
    await page.wait_for_url(re.compile(r"/app/.*#/pages/result/result"), timeout=15_000)
    status = page.locator("[data-test=result-status]")
    await expect(status).to_have_attribute("data-status", PAID, timeout=20_000)
    await expect(page.locator("[data-test=pump-status]")).to_be_visible()
    await shots(page, "paid-lift-the-nozzle")
    # The simulator's driver lifts the authorised nozzle and fuels to the preset.
    await expect(page.locator("[data-test=pump-status]")).to_contain_text("加油中", timeout=30_000)
    await shots(page, "fuelling-live")
    await expect(status).to_have_attribute("data-status", "completed", timeout=60_000)
    await expect(page.locator("[data-test=headline]")).to_have_text("加油完成")
    await shots(page, "completed")
    assert_clean(await audit(page, "result (pay at the pump)", primary=True))

    order = server.get(f"/api/v1/orders/{orders[0]['id']}", token)
    assert order["status"] == "completed"
    assert order["nozzle"] == nozzle
    assert order["settled_fen"] + order["refunded_fen"] == 10000
    await expect(page.locator("[data-test=receipt-paid]")).to_have_text(yuan(order["settled_fen"]))
    assert not driver.errors
