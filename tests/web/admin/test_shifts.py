"""Shift handover (交接班): open, a cash sale at the counter, close with the cash counted; the
totals by payment method and grade, the cash expected and the over / short are exact."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.web.admin.helpers import field, open_page, yuan
from tests.web.conftest import NEAREST_STATION, Console, Server, Shots, staff_sign_in, until


async def test_shift_close_with_exact_totals(
    console: Console, server: Server, shots: Shots
) -> None:
    token = server.staff_token("attendant")
    await staff_sign_in(console, server, "attendant")
    page = await open_page(console, "shifts")
    current = page.locator("[data-test=shift-current]")
    if not await current.is_visible():
        await page.locator("[data-test=shift-open]").click()
    await expect(current).to_be_visible(timeout=10_000)
    await shots(page, "shift-open")

    # A car fuels and its driver pays cash at the counter: the attendant clears the sale.
    def payable() -> dict[str, Any] | None:
        sales = server.get(f"/api/v1/admin/stations/{NEAREST_STATION}/pump-sales", token)
        return next((s for s in sales if s["status"] == "payable"), None)

    sale = await until("a payable sale", payable, within=90)
    held = (
        f"/api/v1/admin/stations/{NEAREST_STATION}/fuelling-points/{sale['fp']}/sales/{sale['seq']}"
    )
    server.post(f"{held}/lock", None, token)
    server.post(f"{held}/clear", None, token)
    shift = server.get(f"/api/v1/admin/stations/{NEAREST_STATION}/shifts/current", token)
    expected = int(shift["cash_expected_fen"])
    assert expected >= int(sale["amount_fen"])

    # Close with one yuan more in the drawer than expected: 1.00 over.
    await page.reload()
    await expect(current).to_be_visible(timeout=10_000)
    await field(page, "cash-counted").fill("-1")
    await page.locator("[data-test=shift-close]").click()
    await expect(current).to_contain_text("请输入清点的现金金额（元），最多两位小数")
    counted = expected + 100
    await field(page, "cash-counted").fill(yuan(counted))
    await page.locator("[data-test=shift-close]").click()
    await page.locator(".el-message-box").get_by_role("button", name="确认交班").click()
    result = page.locator("[data-test=shift-result]")
    await expect(result).to_be_visible(timeout=15_000)
    await expect(page.locator(".el-message-box")).to_be_hidden()
    await shots(page, "shift-closed", full_page=True)

    closed = server.get(f"/api/v1/admin/shifts/{shift['id']}", token)
    assert closed["status"] == "closed"
    assert closed["cash_counted_fen"] == counted
    assert closed["over_short_fen"] == counted - int(closed["cash_expected_fen"])
    await expect(result.locator("[data-test=cash-counted-result]")).to_have_text(yuan(counted))
    await expect(result.locator("[data-test=cash-expected]")).to_have_text(
        yuan(int(closed["cash_expected_fen"]))
    )
    await expect(result.locator("[data-test=over-short]")).to_contain_text(
        yuan(int(closed["over_short_fen"]))
    )
    for line in closed["totals"]["by_method"]:
        await expect(result.locator(f"[data-test='net-{line['key']}']")).to_have_text(
            yuan(int(line["net_fen"]))
        )
    for line in closed["totals"]["by_grade"]:
        await expect(result.locator(f"[data-test='grade-net-{line['key']}']")).to_have_text(
            yuan(int(line["net_fen"]))
        )
    await expect(result.locator("[data-test='net-__total']")).to_have_text(
        yuan(int(closed["totals"]["total"]["net_fen"]))
    )

    # The printable summary opens from the result.
    await result.locator("[data-test=shift-print]").click()
    await expect(page.locator("[data-test=shift-summary]")).to_be_visible(timeout=10_000)
    await shots(page, "shift-summary")
    assert not console.errors, console.errors
