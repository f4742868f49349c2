"""The live forecourt follows the pumps while the simulator fuels, without a reload."""

from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import Page, expect

from tests.web.admin.helpers import open_page
from tests.web.conftest import NEAREST_STATION, Console, Server, Shots, staff_sign_in

LITRES = re.compile(r"(\d+\.\d\d)L")


async def grid(page: Page) -> list[str]:
    tiles = page.locator("[data-test=nozzle]")
    return [
        f"{await tiles.nth(i).get_attribute('data-kind')}:{await tiles.nth(i).inner_text()}"
        for i in range(await tiles.count())
    ]


async def changed(page: Page, before: list[str], within: float = 30.0) -> list[str]:
    end = time.monotonic() + within
    while time.monotonic() < end:
        now = await grid(page)
        if now != before:
            return now
        await asyncio.sleep(0.2)
    raise AssertionError("the nozzle grid did not change")


async def test_live_forecourt_updates_while_the_simulator_fuels(
    console: Console, server: Server, shots: Shots
) -> None:
    await staff_sign_in(console, server, "manager")
    page = await open_page(console, "live")
    await expect(page.locator("[data-test=live-status]")).to_have_attribute(
        "data-status", "live", timeout=15_000
    )
    await expect(page.locator("[data-test=gateway]")).to_have_text("油站网关在线")
    # Every nozzle of the station is on screen, as the API lists them.
    rest = server.nozzles(NEAREST_STATION)["nozzles"]
    tiles = page.locator("[data-test=nozzle]")
    await expect(tiles).to_have_count(len(rest), timeout=10_000)
    first = await grid(page)
    await shots(page, "live-start")

    # The simulator's cars lift, fuel and hang up: the tiles change with no reload.
    second = await changed(page, first)
    third = await changed(page, second)
    assert first != third

    # A fuelling tile shows the litres running up.
    fuelling = page.locator("[data-test=nozzle][data-kind=fuelling]").first
    await expect(fuelling).to_be_visible(timeout=45_000)
    number = await fuelling.get_attribute("data-nozzle")
    tile = page.locator(f"[data-test=nozzle][data-nozzle='{number}']")
    progress = tile.locator("[data-test=nozzle-progress]")
    await expect(progress).to_contain_text(LITRES, timeout=10_000)
    start = LITRES.search(await progress.inner_text())
    assert start is not None
    await shots(page, "live-fuelling")

    async def ran_up() -> bool:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if await tile.get_attribute("data-kind") != "fuelling":
                return True  # finished: it went on to hang up (a payable sale or idle)
            m = LITRES.search(await progress.inner_text())
            if m and float(m.group(1)) > float(start.group(1)):
                return True
            await asyncio.sleep(0.2)
        return False

    assert await ran_up(), "the fuelling tile did not move"
    await shots(page, "live-later")
    assert not console.errors, console.errors
    assert console.external == [], console.external
