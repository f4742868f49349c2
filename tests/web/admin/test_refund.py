"""A station manager refunds part of a paid order: validated form, API answer, exact amounts."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect

from tests.web.admin.helpers import field, open_page, paid_order, yuan
from tests.web.conftest import Console, Server, Shots, staff_sign_in, until


async def test_refund_with_reason(console: Console, server: Server, shots: Shots) -> None:
    order = await paid_order(server, "13900000101")
    paid = int(order["paid_fen"])
    assert paid > 300
    manager = server.staff_token("manager")

    await staff_sign_in(console, server, "manager")
    page = await open_page(console, "orders")
    row = page.locator(f"[data-test='order-{order['id']}']")
    await expect(row).to_be_visible(timeout=15_000)
    await shots(page, "orders")
    await row.click()
    detail = page.locator("[data-test=order-detail]")
    await expect(detail.locator("[data-test=detail-paid]")).to_have_text(yuan(paid))
    # The payer is shown masked, never in full.
    await expect(detail).to_contain_text("139****0101")
    await expect(detail).not_to_contain_text("13900000101")

    # Bad input is refused before anything is sent: more than was paid, no reason.
    await field(page, "refund-amount").fill(yuan(paid + 1))
    await page.locator("[data-test=refund-submit]").click()
    await expect(detail).to_contain_text(f"最多可退 {yuan(paid)} 元")
    await expect(detail).to_contain_text("请填写退款原因")
    await field(page, "refund-amount").fill("1.234")
    await page.locator("[data-test=refund-submit]").click()
    await expect(detail).to_contain_text("请输入金额，最多两位小数")
    await asyncio.sleep(0.5)
    await shots(page, "refund-invalid")
    refunds: list[dict[str, Any]] = server.get(
        f"/api/v1/admin/orders/{order['id']}/refunds", manager
    )
    assert refunds == []

    # A valid refund: 3.00 元 with a reason.
    await field(page, "refund-amount").fill("3.00")
    await field(page, "refund-reason").fill("油枪计量误差退差价")
    await page.locator("[data-test=refund-submit]").click()
    await expect(detail.locator("[data-test=refunds] .el-table__row")).to_have_count(
        1, timeout=15_000
    )
    await expect(detail.locator("[data-test=refunds]")).to_contain_text("油枪计量误差退差价")
    await expect(detail.locator("[data-test=refunds]")).to_contain_text("3.00")

    refunds = server.get(f"/api/v1/admin/orders/{order['id']}/refunds", manager)
    assert [(r["amount_fen"], r["reason"]) for r in refunds] == [(300, "油枪计量误差退差价")]
    await until(
        "the refund to settle",
        lambda: server.get(f"/api/v1/admin/orders/{order['id']}", manager)["refunded_fen"] == 300,
    )
    # Reopened, the order shows the refunded amount and what is left to refund.
    await page.keyboard.press("Escape")
    await row.click()
    await expect(detail.locator("[data-test=detail-refunded]")).to_have_text("3.00", timeout=10_000)
    await expect(detail).to_contain_text(f"可退 {yuan(paid - 300)} 元")
    await expect(detail.locator("[data-test=refund-status]").first).to_have_text("成功")
    await asyncio.sleep(0.5)  # the drawer slides in
    await shots(page, "refunded")
    assert not console.errors, console.errors
