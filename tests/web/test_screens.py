"""Bad input and failures become Chinese sentences (never raw JSON, never a blank screen), and
the other screens meet the measured visual rules."""

from __future__ import annotations

import json
import re

from playwright.async_api import Page, Route, expect

from tests.web.conftest import Driver, Server, Shots, sign_in
from tests.web.visual import assert_clean, audit


async def visit(page: Page, url: str) -> None:
    """Open a route afresh (a hash change alone would keep the current page instance)."""
    await page.goto("about:blank")
    await page.goto(url)


async def no_raw_json(page: Page) -> None:
    body = await page.locator("body").inner_text()
    assert body.strip(), "blank screen"
    for raw in ('{"', '"code"', "detail", "problem", "Traceback", "undefined", "null"):
        assert raw not in body, f"{raw!r} shown to the driver:\n{body}"


async def test_errors_become_chinese_sentences(
    driver: Driver, server: Server, shots: Shots
) -> None:
    page = driver.page
    await sign_in(driver, server, "13900000005")

    # An unknown station (a stale link): the page says so and offers to retry.
    await visit(page, f"{server.app}#/pages/pay/pay?station=999&nozzle=1")
    err = page.locator("[data-test=error]")
    await expect(err).to_contain_text("没有找到这个加油站", timeout=15_000)
    await expect(page.locator("[data-test=retry]")).to_be_visible()
    await no_raw_json(page)
    await shots(page, "unknown-station")

    # An unknown nozzle at a real station.
    await visit(page, f"{server.app}#/pages/pay/pay?station=1&nozzle=99")
    await page.locator("[data-test=mode-postpay]").tap()
    await expect(page.locator("[data-test=no-sale]")).to_contain_text(
        "没有这把油枪", timeout=15_000
    )
    await no_raw_json(page)

    # An unknown order on the result page.
    await visit(page, f"{server.app}#/pages/result/result?order=NOPE")
    await expect(page.locator("[data-test=error]")).to_contain_text(
        "没有找到这笔订单", timeout=15_000
    )
    await no_raw_json(page)
    await shots(page, "unknown-order")

    # The pump refuses (another car took it): the server's problem becomes a sentence.
    async def busy(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        problem = {
            "type": "https://forecourt.dev/problems/pump_busy",
            "title": "Pump busy",
            "status": 409,
            "detail": "fuelling point 3 is busy",
            "code": "pump_busy",
        }
        await route.fulfill(
            status=409, content_type="application/problem+json", body=json.dumps(problem)
        )

    await page.route(re.compile(r"/api/v1/orders$"), busy)
    await visit(page, f"{server.app}#/pages/pay/pay?station=1&nozzle=1&mode=prepay")
    await page.locator("[data-test=preset][data-amount='10000']").tap()
    primary = page.locator("[data-test=primary]")
    await expect(primary).not_to_have_class(re.compile("disabled"), timeout=20_000)
    await primary.tap()
    await expect(page.locator("[data-test=pay-error]")).to_have_text(
        "这把油枪正在使用中，请稍后或换一把油枪"
    )
    await no_raw_json(page)
    await shots(page, "pump-busy")
    assert_clean(await audit(page, "pay with an error", primary=True))
    await page.unroute(re.compile(r"/api/v1/orders$"))

    # A proxy answering 502 with an HTML page: still one calm sentence.
    async def bad_gateway(route: Route) -> None:
        await route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")

    await page.route(re.compile(r"/api/v1/orders\?"), bad_gateway)
    await visit(page, f"{server.app}#/pages/orders/orders")
    await expect(page.locator("[data-test=error]")).to_contain_text(
        "服务暂时不可用", timeout=15_000
    )
    await no_raw_json(page)
    await shots(page, "bad-gateway")
    assert not driver.errors


async def test_guest_and_station_screens(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    await page.goto(f"{server.app}#/pages/me/me")
    await expect(page.locator("[data-test=me-guest]")).to_be_visible(timeout=15_000)
    await shots(page, "me-guest")
    assert_clean(await audit(page, "me (guest)", primary=True))

    await page.locator(".uni-tabbar__item").nth(2).tap()
    await expect(page.get_by_text("还没有登录")).to_be_visible()
    await shots(page, "orders-guest")
    assert_clean(await audit(page, "orders (guest)", primary=True))

    await page.locator(".uni-tabbar__item").nth(1).tap()
    items = page.locator("[data-test=station-item]")
    await expect(items.first).to_be_visible(timeout=15_000)
    await shots(page, "stations")
    assert_clean(await audit(page, "stations", primary=False))
    total = await items.count()

    # Filters: a grade (server side) and a service (car wash).
    await page.locator("[data-test=filter-grade][data-grade='98']").tap()
    await expect(items.first).to_be_visible()
    await page.locator("[data-test=filter-service][data-service=car_wash]").tap()
    await expect(items.first).to_contain_text("洗车")
    assert await items.count() < total
    for i in range(await items.count()):
        await expect(items.nth(i)).to_contain_text("洗车")
    await shots(page, "stations-filtered")

    await page.locator("[data-test=view-map]").tap()
    pins = page.locator("[data-test=map-pin]")
    await expect(pins.first).to_be_visible()
    await pins.last.tap()  # the topmost of pins that overlap
    await shots(page, "stations-map")
    assert_clean(await audit(page, "stations (map)", primary=False))
    assert not driver.errors
