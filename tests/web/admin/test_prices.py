"""A scheduled price change above the provincial cap: warned, double-confirmed, refused by the
API with its message inline, and nothing saved; one under the cap is scheduled and cancelled."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.web.admin.helpers import choose, field, open_page, yuan
from tests.web.conftest import NEAREST_STATION, Console, Server, Shots, staff_sign_in

GRADE = "92"


async def submit_price(page: Page, price: str) -> None:
    await field(page, "price-new").fill(price)
    await page.locator("[data-test=price-review]").click()
    dialog = page.locator(".el-dialog", has_text="确认调价")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"{price} 元/升")
    await page.locator("[data-test=price-next]").click()
    confirm = page.locator("[data-test=price-confirm-send]")
    # The second confirmation needs the new price typed again.
    await expect(confirm).to_be_disabled()
    await field(page, "price-retype").fill(price)
    await expect(confirm).to_be_enabled()
    await confirm.click()


async def test_price_above_cap_is_refused_inline(
    console: Console, server: Server, shots: Shots
) -> None:
    manager = server.staff_token("manager")
    station = server.get(f"/api/v1/admin/stations/{NEAREST_STATION}", manager)
    caps = server.get("/api/v1/price-caps", province=station["province"])
    cap = max((c for c in caps if c["grade"] == GRADE), key=lambda c: str(c["effective_at"]))
    path = f"/api/v1/admin/stations/{NEAREST_STATION}/prices/history"
    before: list[dict[str, Any]] = server.get(path, manager)

    await staff_sign_in(console, server, "manager")
    page = await open_page(console, "prices")
    await expect(page.locator(f"[data-test=price-{GRADE}]")).to_be_visible(timeout=15_000)
    await choose(page, "price-grade", f"{GRADE}#汽油")
    # Bad input is refused by the form first (mirrors PriceIn).
    await field(page, "price-new").fill("abc")
    await page.locator("[data-test=price-review]").click()
    await expect(page.get_by_text("请输入价格（元/升），最多两位小数")).to_be_visible()
    await expect(page.locator(".el-dialog", has_text="确认调价")).to_be_hidden()

    # One fen above the cap, from midnight: the cap check warns before sending ...
    above = yuan(int(cap["cap_fen"]) + 1)
    await field(page, "price-new").fill(above)
    await expect(page.locator("[data-test=cap-check]")).to_contain_text(
        f"最高限价 {yuan(int(cap['cap_fen']))} 元/升，提交将被拒绝"
    )
    await shots(page, "cap-warning")
    # ... and the API, the final word, refuses it: its message is shown inline.
    await submit_price(page, above)
    error = page.locator("[data-test=price-form] [data-test=api-error]")
    await expect(error).to_contain_text("价格高于省级最高限价，已拒绝", timeout=10_000)
    await expect(error).to_contain_text(f"{yuan(int(cap['cap_fen']))}")
    await expect(page.locator("[data-test=price-form] .el-form-item__error")).to_contain_text(
        "above"
    )
    await shots(page, "cap-refused")
    # Nothing was saved.
    assert server.get(path, manager) == before

    # Under the cap it is scheduled for midnight, listed, and can be cancelled.
    under = yuan(int(cap["cap_fen"]) - 10)
    await submit_price(page, under)
    scheduled = page.locator("[data-test=scheduled-prices]")
    await expect(scheduled).to_contain_text(under, timeout=10_000)
    await expect(error).to_be_hidden()
    known = {p["id"] for p in before}
    after = [p for p in server.get(path, manager) if p["id"] not in known]
    assert [(p["grade"], p["price_fen"], p["state"]) for p in after] == [
        (GRADE, int(cap["cap_fen"]) - 10, "scheduled")
    ]
    await shots(page, "scheduled")
    await scheduled.get_by_role("button", name="取消").click()
    await page.locator(".el-popconfirm").get_by_role("button", name="取消调价").click()
    await expect(scheduled).not_to_contain_text(under, timeout=10_000)
    states = {p["id"]: p["state"] for p in server.get(path, manager)}
    assert states[after[0]["id"]] == "cancelled"
    assert not console.errors, console.errors
