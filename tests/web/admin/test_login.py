"""Staff sign in to the console; each role sees its own menus and nothing else."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.web.admin.helpers import field
from tests.web.conftest import Console, Server, Shots

CASHIER_MENUS = ["实时油枪", "订单与退款", "交接班"]


async def test_login_validation_errors_and_role_menus(
    console: Console, server: Server, shots: Shots
) -> None:
    page = console.page
    await page.goto(console.url)
    # Not signed in: the login page, whatever was asked for.
    await expect(page).to_have_url(re.compile(r"/admin/#/login"), timeout=15_000)
    await expect(page.get_by_text("Forecourt 加油站管理后台")).to_be_visible()
    await shots(page, "login")

    # Empty form: validation mirrors the API (both fields required), nothing is sent.
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/auth/staff/login" in r.url else None)
    await page.locator("[data-test=login]").click()
    await expect(page.get_by_text("请输入用户名")).to_be_visible()
    await expect(page.get_by_text("请输入密码")).to_be_visible()
    assert sent == []

    # A wrong password: the API's refusal, inline, with its message.
    await field(page, "username").fill("manager")
    await field(page, "password").fill("not-the-password")
    await page.locator("[data-test=login]").click()
    error = page.locator("[data-test=api-error]")
    await expect(error).to_contain_text("用户名或密码错误")
    await shots(page, "wrong-password")

    # The right one: the station manager lands on the dashboard with the managers' menus.
    await field(page, "password").fill(server.staff_password("manager"))
    await page.locator("[data-test=login]").click()
    await expect(page).to_have_url(re.compile(r"/admin/#/dashboard"), timeout=15_000)
    await expect(page.locator("[data-test=who]")).to_contain_text("北京路站长")
    await expect(page.locator("[data-test=who]")).to_contain_text("站长")
    for menu in (
        "经营概览",
        "实时油枪",
        "订单与退款",
        "油价管理",
        "油罐库存",
        "交接班",
        "审计日志",
    ):
        await expect(page.locator(".el-menu-item", has_text=menu)).to_be_visible()
    # Reconciliation (per provider, all stations) and staff are head office's.
    for menu in ("支付对账", "员工与角色"):
        await expect(page.locator(".el-menu-item", has_text=menu)).to_have_count(0)
    await shots(page, "manager-dashboard")

    # Signing out returns to the login page; the attendant sees the cashier view only.
    await page.locator("[data-test=logout]").click()
    await expect(page).to_have_url(re.compile(r"/admin/#/login"))
    await field(page, "username").fill("attendant")
    await field(page, "password").fill(server.staff_password("attendant"))
    await page.locator("[data-test=login]").click()
    await expect(page).to_have_url(re.compile(r"/admin/#/live"), timeout=15_000)
    menus = page.locator(".el-menu-item")
    await expect(menus).to_have_count(len(CASHIER_MENUS))
    assert [t.strip() for t in await menus.all_inner_texts()] == CASHIER_MENUS
    # A page outside the role is not reachable by its address either.
    await page.goto(f"{console.url}#/prices")
    await expect(page).to_have_url(re.compile(r"/admin/#/live"))
    await shots(page, "attendant-live")

    # Head office sees every menu, staff management included.
    await page.locator("[data-test=logout]").click()
    await field(page, "username").fill("hq")
    await field(page, "password").fill(server.staff_password("hq"))
    await page.locator("[data-test=login]").click()
    await expect(page.locator("[data-test=who]")).to_contain_text("总部管理员", timeout=15_000)
    await shots(page, "hq")
    await expect(page.locator(".el-menu-item", has_text="员工与角色")).to_be_visible(timeout=15_000)
    await expect(page.locator(".el-menu-item", has_text="支付对账")).to_be_visible()
    assert not console.errors, console.errors
    assert console.external == [], console.external
