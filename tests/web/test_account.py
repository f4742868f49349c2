"""Signing in with an SMS code (the demo shows the sandbox code, labelled), the order history
with a refund, the member page, and invoices."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect

from tests.web.conftest import NEAREST_STATION, Driver, Server, Shots, sign_in, until
from tests.web.visual import assert_clean, audit


async def test_sms_login(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    await page.goto(f"{server.app}#/pages/login/login")
    phone = page.locator("[data-test=phone] input")
    await expect(phone).to_be_visible(timeout=15_000)
    await shots(page, "login")
    assert_clean(await audit(page, "login", primary=True))

    # A wrong number is refused on the spot, in Chinese.
    await phone.fill("1380013")
    await page.locator("[data-test=send-code]").tap()
    err = page.locator("[data-test=login-error]")
    await expect(err).to_have_text("请输入正确的 11 位手机号")
    # The error colour is not the primary colour (measured from the rendered page).
    assert_clean(await audit(page, "login with an error", primary=True))

    await phone.fill("13700000001")
    await page.locator("[data-test=send-code]").tap()
    sandbox = page.locator("[data-test=sandbox-code]")
    await expect(sandbox).to_contain_text("沙箱")
    code = re.search(r"(\d{6})", await sandbox.inner_text())
    assert code, await sandbox.inner_text()
    await expect(page.locator("[data-test=send-code]")).to_contain_text("秒后重发")
    await shots(page, "sandbox-code-shown")

    # A wrong code: the server's problem becomes a sentence with the attempts left.
    wrong = "000000" if code.group(1) != "000000" else "111111"
    await page.locator("[data-test=code] input").fill(wrong)
    await page.locator("[data-test=primary]").tap()
    await expect(err).to_have_text(re.compile(r"^验证码错误，还可尝试 \d 次$"))
    await shots(page, "wrong-code")

    await page.locator("[data-test=code] input").fill(code.group(1))
    await page.locator("[data-test=primary]").tap()
    await expect(page.locator("[data-test=me-phone]")).to_have_text("137****0001", timeout=15_000)
    await expect(page.locator("[data-test=me-tier]")).not_to_be_empty()
    await shots(page, "signed-in-me")
    assert_clean(await audit(page, "me", primary=False))
    assert not driver.errors


async def test_refund_shows_in_order_history(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    login = await sign_in(driver, server, "13900000003")
    token = login["access_token"]

    # Set-up through the API: pay a sale with WeChat Pay (the sandbox plays the payer) ...
    def payable() -> tuple[int, int] | None:
        for n in server.nozzles()["nozzles"]:
            if n["payable"]:
                return int(n["number"]), int(n["payable"][-1]["seq"])
        return None

    nozzle, seq = await until("a payable sale", payable, within=60)
    order = server.post(
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

    def paid() -> bool:
        status = server.get(f"/api/v1/orders/{order['id']}", token)["status"]
        return status in ("paid", "completed")

    await until("the order paid", paid)
    # ... then the station manager refunds ¥5.00 of it.
    manager = server.staff_token("manager")
    server.post(
        f"/api/v1/admin/orders/{order['id']}/refunds",
        {"amount_fen": 500, "reason": "油品优惠补差"},
        manager,
        key=str(uuid.uuid4()),
    )
    await until(
        "the refund",
        lambda: server.get(f"/api/v1/orders/{order['id']}", token)["refunded_fen"] == 500,
    )

    await page.goto(f"{server.app}#/pages/orders/orders")
    item = page.locator(f"[data-test=order-item][data-order='{order['id']}']")
    await expect(item).to_be_visible(timeout=15_000)
    await expect(item.locator("[data-test=order-refund]")).to_have_text("已退款 ¥5.00")
    await expect(item).to_contain_text("北京路加油站")
    await shots(page, "orders-with-refund")
    assert_clean(await audit(page, "orders", primary=False))

    await item.tap()
    detail = page.locator("[data-test=detail-refund]")
    await expect(detail).to_contain_text("已退款 ¥5.00")
    await expect(page.locator("[data-test=payment]").first).to_contain_text("退 ¥5.00")
    await shots(page, "order-detail-refund")
    assert_clean(await audit(page, "order detail", primary=False))

    # The invoice entry leads to the invoice form for this order.
    await page.locator("[data-test=invoice-entry]").tap()
    await page.locator("[data-test=title-name] input").fill("张三")
    await shots(page, "invoice-form")
    assert_clean(await audit(page, "invoice", primary=True))
    await page.locator("[data-test=primary]").tap()
    status = page.locator("[data-test=invoice-status]")
    await expect(status).to_be_visible(timeout=15_000)
    await shots(page, "invoice-requested")
    # The sandbox tax platform issues it within seconds; the PDF can then be opened.
    await expect(status).to_have_attribute("data-status", "issued", timeout=30_000)
    await expect(page.locator("[data-test=invoice-pdf]")).to_be_visible()
    await shots(page, "invoice-issued")
    assert not driver.errors


async def test_wallet_top_up_with_unionpay(driver: Driver, server: Server, shots: Shots) -> None:
    page = driver.page
    login = await sign_in(driver, server, "13900000004")
    await page.goto(f"{server.app}#/pages/wallet/wallet")
    await expect(page.locator("[data-test=wallet-balance]")).to_contain_text(
        "¥0.00", timeout=15_000
    )
    await page.locator("[data-test=topup-amount][data-amount='20000']").tap()
    await page.locator("[data-test=provider][data-provider=unionpay]").tap()
    await expect(page.locator("[data-test=primary]")).to_have_text("充值 ¥200.00")
    await shots(page, "wallet")
    assert_clean(await audit(page, "wallet", primary=True))

    await page.locator("[data-test=primary]").tap()  # an auto-submitted POST form to UnionPay
    await page.wait_for_url(re.compile(r"/sandbox/unionpay/"), timeout=15_000)
    await shots(page, "unionpay-sandbox-cashier")
    await page.get_by_role("button", name=re.compile("确认付款")).tap()
    await page.wait_for_url(re.compile(r"/app/.*#/pages/result/result"), timeout=20_000)
    await expect(page.locator("[data-test=headline]")).to_have_text("充值成功", timeout=20_000)
    await expect(page.locator("[data-test=subline]")).to_contain_text("另赠 ¥10.00")
    await expect(page.locator("[data-test=wallet-entry]")).to_be_visible()
    await shots(page, "topped-up")
    wallet = server.get("/api/v1/wallet", login["access_token"])
    assert wallet["balance_fen"] == 21000
    assert not driver.errors
