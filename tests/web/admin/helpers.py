"""Shared steps of the back-office console tests: Element Plus inputs, set-up via the API."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.async_api import Locator, Page

from tests.web.conftest import NEAREST_STATION, Console, Server, until


def yuan(fen: int) -> str:
    """Fen as the console shows 元: 1234 -> "12.34", -5 -> "-0.05"."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def field(page: Page, test_id: str) -> Locator:
    """The text input of an Element Plus input marked with `data-test` (on it or its wrapper)."""
    return page.locator(f"[data-test={test_id}]").locator(
        "xpath=descendant-or-self::*[self::input or self::textarea]"
    )


async def choose(page: Page, select_test_id: str, option: str) -> None:
    """Pick an option of an Element Plus select by its label."""
    await page.locator(f"[data-test={select_test_id}]").first.click()
    await page.locator(".el-select-dropdown__item:visible", has_text=option).first.click()


async def open_page(c: Console, route: str) -> Page:
    """Open a console page (hash route) and wait for the shell."""
    page = c.page
    await page.goto(f"{c.url}#/{route}")
    await page.locator("[data-test=who]").wait_for(timeout=15_000)
    return page


async def paid_order(server: Server, phone: str) -> dict[str, Any]:
    """A driver pays a payable pump sale of the nearest station with WeChat Pay (sandbox)."""
    token = server.member(phone)["access_token"]

    def payable() -> tuple[int, int] | None:
        for n in server.nozzles()["nozzles"]:
            if n["payable"]:
                return int(n["number"]), int(n["payable"][-1]["seq"])
        return None

    nozzle, seq = await until("a payable sale", payable, within=90)
    order: dict[str, Any] = server.post(
        "/api/v1/orders",
        {"kind": "postpay", "station_id": NEAREST_STATION, "nozzle": nozzle, "sale_seq": seq},
        token,
        key=str(uuid.uuid4()),
    )
    payment = server.post(
        f"/api/v1/orders/{order['id']}/payments",
        {"provider": "wechatpay", "channel": "h5"},
        token,
        key=str(uuid.uuid4()),
    )
    server.post("/sandbox/wechatpay/sandbox/complete", {"out_trade_no": payment["id"]})

    def paid() -> dict[str, Any] | None:
        now: dict[str, Any] = server.get(f"/api/v1/orders/{order['id']}", token)
        return now if now["status"] in ("paid", "completed") else None

    done: dict[str, Any] = await until("the order paid", paid)
    return done
