"""Every page of the console opens for head office against the live API without an error."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.web.admin.helpers import open_page
from tests.web.conftest import Console, Server, Shots, staff_sign_in

PAGES = {
    "dashboard": "经营概览",
    "live": "实时油枪",
    "orders": "订单与退款",
    "prices": "油价管理",
    "tanks": "油罐库存",
    "shifts": "交接班",
    "reconciliation": "支付对账",
    "members": "会员与积分商城",
    "staff": "员工与角色",
    "audit": "审计日志",
}


async def test_every_page_opens_without_an_api_error(
    console: Console, server: Server, shots: Shots
) -> None:
    await staff_sign_in(console, server, "hq")
    for route, title in PAGES.items():
        page = await open_page(console, route)
        await expect(page.locator("h2.page-title")).to_have_text(title, timeout=10_000)
        await page.wait_for_load_state("networkidle")
        await asyncio.sleep(0.5)  # charts draw after their data arrives
        await shots(page, route)
        errors = await page.locator("[data-test=api-error]").all_inner_texts()
        assert errors == [], f"{route}: {errors}"
    # The staff list shows the demo accounts.
    page = await open_page(console, "staff")
    for name in ("总部管理员", "北京路站长", "北京路收银员"):
        await expect(page.locator("[data-test=staff]")).to_contain_text(name)
    assert not console.errors, console.errors
    assert console.external == [], console.external


async def test_orders_export_downloads_csv_and_excel(
    console: Console, server: Server, shots: Shots
) -> None:
    await staff_sign_in(console, server, "manager")
    page = await open_page(console, "orders")
    await expect(page.locator("[data-test=orders]")).to_be_visible(timeout=10_000)
    async with page.expect_download() as csv_info:
        await page.locator("[data-test=export-csv]").click()
    csv = await csv_info.value
    assert csv.suggested_filename.endswith(".csv")
    path = await csv.path()
    head = path.read_bytes()[:3]
    assert head == b"\xef\xbb\xbf"  # UTF-8 with a byte-order mark, for Excel
    async with page.expect_download() as xlsx_info:
        await page.locator("[data-test=export-xlsx]").click()
    xlsx = await xlsx_info.value
    assert xlsx.suggested_filename.endswith(".xlsx")
    assert (await xlsx.path()).read_bytes()[:2] == b"PK"  # a zip container
    await shots(page, "exported")
    assert await page.locator("[data-test=api-error]").count() == 0
    assert not console.errors, console.errors


async def test_reconciliation_runs_a_daily_bill(
    console: Console, server: Server, shots: Shots
) -> None:
    await staff_sign_in(console, server, "hq")
    page = await open_page(console, "reconciliation")
    await page.locator("[data-test=reconcile-run]").click()
    rows = page.locator("[data-test=reconciliations] .el-table__row")
    await expect(rows.first).to_be_visible(timeout=20_000)
    await expect(page.locator("[data-test=discrepancies]")).to_be_visible()
    hq = server.staff_token("hq")
    stored = server.get("/api/v1/admin/reconciliations", hq, provider="wechatpay")
    assert len(stored) >= 1
    await expect(rows.first).to_contain_text(str(stored[0]["bill_date"]))
    await expect(rows.first).to_contain_text(
        "已平账" if stored[0]["status"] == "balanced" else "有差异"
    )
    await shots(page, "reconciled")
    assert await page.locator("[data-test=api-error]").count() == 0
    assert not console.errors, console.errors
