"""Live nozzle states over the WebSocket: the grid follows the pumps, and a lost network is
noticed, shown, and recovered from without a reload."""

from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import Page, WebSocketRoute, expect

from tests.web.conftest import Driver, Server, Shots
from tests.web.visual import assert_clean, audit


async def grid_state(page: Page) -> list[str]:
    tiles = page.locator("[data-test=nozzle]")
    out: list[str] = []
    for i in range(await tiles.count()):
        t = tiles.nth(i)
        out.append(f"{await t.get_attribute('data-kind')}:{await t.inner_text()}")
    return out


async def wait_for_change(
    page: Page, before: list[str], server: Server, within: float = 20.0
) -> list[str]:
    """The grid changes by itself; when every pump waits for payment, the cashier settles one
    (as at a real station), after which a car comes to that pump."""
    end = time.monotonic() + within
    quiet_since = time.monotonic()
    while time.monotonic() < end:
        now = await grid_state(page)
        if now != before:
            return now
        if time.monotonic() - quiet_since > 3.0:
            server.settle_at_counter()
            quiet_since = time.monotonic()
        await asyncio.sleep(0.2)
    raise AssertionError("the nozzle grid did not change")


async def test_grid_follows_the_pumps_live(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    await page.goto(server.app)
    await expect(page.locator("[data-test=live-status]")).to_have_attribute(
        "data-status", "live", timeout=15_000
    )
    first = await grid_state(page)
    await shots(page, "before")
    # Without any reload, the tiles change as the simulator's cars lift, fuel and hang up.
    second = await wait_for_change(page, first, server)
    third = await wait_for_change(page, second, server)
    await shots(page, "after")
    assert first != third
    # Fuelling tiles show the litres running up.
    server.settle_at_counter()
    await expect(page.locator("[data-test=nozzle][data-kind=fuelling]").first).to_contain_text(
        re.compile(r"\d+\.\d\dL"), timeout=20_000
    )
    # What the grid shows agrees with the server once it settles: same nozzles, same payable sales.
    rest = server.nozzles()["nozzles"]
    assert await page.locator("[data-test=nozzle]").count() == len(rest)
    assert not driver.errors


async def test_network_loss_and_reconnection(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    sockets: list[WebSocketRoute] = []
    offline = {"on": False}

    async def route(ws: WebSocketRoute) -> None:
        if offline["on"]:
            await ws.close(code=1006, reason="network down")
            return
        ws.connect_to_server()  # a transparent proxy to the real server
        sockets.append(ws)

    await page.route_web_socket(re.compile(r"/nozzles/live$"), route)
    await page.goto(server.app)
    status = page.locator("[data-test=live-status]")
    await expect(status).to_have_attribute("data-status", "live", timeout=15_000)
    opened = len(sockets)
    assert opened >= 1

    # The network goes away: HTTP fails and the open socket drops.
    offline["on"] = True
    await driver.context.set_offline(True)
    for ws in sockets:
        await ws.close(code=1006, reason="network down")
    await expect(status).to_have_attribute("data-status", "reconnecting", timeout=10_000)
    await expect(status).to_contain_text("网络中断")
    await shots(page, "offline-banner")
    # A screen that needs the network says so in Chinese; never a blank page or raw JSON.
    await page.locator(".uni-tabbar__item").nth(1).tap()
    err = page.locator("[data-test=error]")
    await expect(err).to_be_visible(timeout=15_000)
    await expect(err).to_contain_text("网络连接失败")
    await shots(page, "offline-stations")
    body = await page.locator("body").inner_text()
    assert "{" not in body
    assert "detail" not in body

    # Back online: the app reconnects by itself (no reload) and the grid is live again.
    offline["on"] = False
    await driver.context.set_offline(False)
    await page.locator(".uni-tabbar__item").nth(0).tap()
    await expect(status).to_have_attribute("data-status", "live", timeout=30_000)
    assert len(sockets) > opened, "no new WebSocket after the network came back"
    before = await grid_state(page)
    await wait_for_change(page, before, server)
    await shots(page, "reconnected")
    assert_clean(await audit(page, "home after reconnecting", primary=False))
    assert not driver.errors
