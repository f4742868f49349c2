"""H5 payments (手机网站支付): prepay, validation, the h5_url cashier, redirect_url, MWEB."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.config import Settings
from forecourt.integrations.wechatpay import from_settings
from forecourt.integrations.wechatpay.client import BILL_COLUMNS, WeChatPayError
from forecourt.integrations.wechatpay.provider import h5_prepay_id
from forecourt.integrations.wechatpay.sandbox import H5_URL_TTL
from forecourt.kit import clock
from forecourt.payment.providers import PrepayRequest, ProviderError, RefundRequest
from tests.integrations.wechatpay.conftest import (
    APPID,
    BASE,
    MCHID,
    NOTIFY_URL,
    OPENID,
    PAYER_IP,
    MakeRig,
    Rig,
    eventually,
)

PREFIX = "/sandbox/wechatpay"
DONE = "https://m.forecourt.test/pay/done?order=FC20240520&from=wechat"


@pytest.fixture
async def browser(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that reaches the sandbox app (h5_urls are absolute: the host is ignored)."""
    transport = httpx.ASGITransport(app=rig.sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


def _h5_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "appid": APPID,
        "mchid": MCHID,
        "description": "0# 柴油",
        "out_trade_no": "FC20240500",
        "notify_url": NOTIFY_URL,
        "amount": {"total": 100, "currency": "CNY"},
        "scene_info": {"payer_client_ip": PAYER_IP, "h5_info": {"type": "Wap"}},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _scene(ip: object = PAYER_IP, h5_info: object = None) -> dict[str, object]:
    scene: dict[str, object] = {"h5_info": {"type": "Wap"} if h5_info is None else h5_info}
    if ip is not None:
        scene["payer_client_ip"] = ip
    return scene


# -- prepay ----------------------------------------------------------------------------------


async def test_h5_prepay_answers_an_h5_url_to_the_sandbox_cashier(rig: Rig) -> None:
    result = await rig.prepay_h5("FC20240501", 1234)
    assert set(result.client_params) == {"h5_url"}
    url = httpx.URL(result.client_params["h5_url"])
    assert (url.scheme, url.host, url.path) == ("http", "wechatpay-sandbox", "/sandbox/cashier")
    assert list(url.params) == ["prepay_id", "package"]  # WeChat's checkmweb query shape
    assert url.params["prepay_id"] == result.provider_ref
    assert result.provider_ref.startswith("wx")
    assert len(result.provider_ref) == 36
    assert url.params["package"].isdigit()
    assert len(url.params["package"]) == 10
    order = rig.sandbox.orders["FC20240501"]
    assert (order.prepay_id, order.trade_type, order.openid) == (result.provider_ref, "MWEB", None)
    assert (order.total, order.client_ip, order.notify_url) == (1234, PAYER_IP, NOTIFY_URL)
    assert order.request["scene_info"] == {"payer_client_ip": PAYER_IP, "h5_info": {"type": "Wap"}}
    assert order.request["amount"] == {"total": 1234, "currency": "CNY"}
    assert order.request["time_expire"].endswith("+08:00")
    assert "payer" not in order.request


async def test_client_prepay_h5_with_attach_and_ipv6(rig: Rig) -> None:
    h5_url = await rig.client.prepay_h5(
        description="95# 汽油",
        out_trade_no="FC20240502",
        notify_url=NOTIFY_URL,
        total_fen=500,
        payer_client_ip="2001:db8::7",
        attach="station=S001",
    )
    assert h5_prepay_id(h5_url) == rig.sandbox.orders["FC20240502"].prepay_id
    order = rig.sandbox.orders["FC20240502"]
    assert (order.client_ip, order.attach, order.time_expire) == (
        "2001:db8::7",
        "station=S001",
        None,
    )


async def test_h5_url_uses_public_base_when_set(rig: Rig) -> None:
    rig.sandbox.public_base = "http://127.0.0.1:8000/sandbox/wechatpay/"
    result = await rig.prepay_h5("FC20240503")
    assert result.client_params["h5_url"].startswith(
        f"http://127.0.0.1:8000/sandbox/wechatpay/sandbox/cashier?prepay_id={result.provider_ref}"
        "&package="
    )


async def test_h5_url_keeps_the_mount_prefix(make_rig: MakeRig) -> None:
    rig = make_rig(prefix=PREFIX)
    result = await rig.prepay_h5("FC20240504")
    h5_url = result.client_params["h5_url"]
    assert h5_url.startswith(f"{BASE}{PREFIX}/sandbox/cashier?prepay_id=")
    app = Starlette(routes=[Mount(PREFIX, app=rig.sandbox.app)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as browser:
        page = await browser.get(h5_url)
        assert page.status_code == 200
        assert f'action="{PREFIX}/sandbox/pay"' in page.text
        paid = await browser.post(
            f"{BASE}{PREFIX}/sandbox/pay", data={"out_trade_no": "FC20240504"}
        )
    assert paid.status_code == 200
    await rig.sandbox.join()
    assert [n.out_trade_no for n in rig.receiver.parsed] == ["FC20240504"]


@pytest.mark.parametrize(
    ("changes", "code", "names"),
    [
        ({"scene_info": None}, "PARAM_ERROR", "scene_info"),
        ({"scene_info": _scene(ip=None)}, "PARAM_ERROR", "scene_info.payer_client_ip"),
        ({"scene_info": _scene(ip="")}, "PARAM_ERROR", "scene_info.payer_client_ip"),
        ({"scene_info": _scene(ip="300.1.2.3")}, "PARAM_ERROR", "/scene_info/payer_client_ip"),
        ({"scene_info": _scene(ip="not-an-ip")}, "PARAM_ERROR", "/scene_info/payer_client_ip"),
        ({"scene_info": _scene(ip="1.2.3.4, 5.6.7.8")}, "PARAM_ERROR", "payer_client_ip"),
        ({"scene_info": _scene(ip=1234)}, "PARAM_ERROR", "payer_client_ip"),
        ({"scene_info": {"payer_client_ip": PAYER_IP}}, "PARAM_ERROR", "scene_info.h5_info"),
        ({"scene_info": _scene(h5_info={})}, "PARAM_ERROR", "scene_info.h5_info.type"),
        ({"scene_info": _scene(h5_info={"type": "PC"})}, "PARAM_ERROR", "h5_info/type"),
        ({"description": None}, "PARAM_ERROR", "description"),
        ({"out_trade_no": "abc"}, "PARAM_ERROR", "out_trade_no"),
        ({"amount": {"total": 0}}, "PARAM_ERROR", "amount/total"),
        ({"notify_url": "https://merchant.test/n?x=1"}, "PARAM_ERROR", "notify_url"),
        ({"time_expire": "2024-01-01 10:00:00"}, "PARAM_ERROR", "time_expire"),
        ({"mchid": "1900000002"}, "MCH_NOT_EXISTS", ""),
        ({"appid": "wx-someone-else"}, "APPID_MCHID_NOT_MATCH", ""),
    ],
)
async def test_h5_prepay_validation(
    rig: Rig, changes: dict[str, object], code: str, names: str
) -> None:
    resp = await rig.raw("POST", "/v3/pay/transactions/h5", _h5_body(**changes))
    assert resp.status_code == 400
    assert resp.json()["code"] == code
    assert names in resp.json()["message"]
    rig.client.verify_headers(resp.headers, resp.content)  # errors are signed too
    assert rig.sandbox.orders == {}


@pytest.mark.parametrize("ip", ["203.0.113.7", "2001:db8::1", "::ffff:203.0.113.7"])
async def test_h5_prepay_accepts_ipv4_and_ipv6(rig: Rig, ip: str) -> None:
    resp = await rig.raw("POST", "/v3/pay/transactions/h5", _h5_body(scene_info=_scene(ip=ip)))
    assert resp.status_code == 200
    assert set(resp.json()) == {"h5_url"}
    rig.client.verify_headers(resp.headers, resp.content)


async def test_h5_prepay_is_idempotent_for_the_same_body_only(rig: Rig) -> None:
    first = await rig.raw("POST", "/v3/pay/transactions/h5", _h5_body())
    again = await rig.raw("POST", "/v3/pay/transactions/h5", _h5_body())
    a, b = httpx.URL(first.json()["h5_url"]), httpx.URL(again.json()["h5_url"])
    assert a.params["prepay_id"] == b.params["prepay_id"]  # the same order ...
    assert a.params["package"] != b.params["package"]  # ... with a fresh 5-minute link
    assert len(rig.sandbox.orders) == 1
    for changes in (
        {"amount": {"total": 101, "currency": "CNY"}},
        {"scene_info": _scene(ip="198.51.100.9")},
    ):
        resp = await rig.raw("POST", "/v3/pay/transactions/h5", _h5_body(**changes))
        assert (resp.status_code, resp.json()["code"]) == (400, "INVALID_REQUEST")
    jsapi = _h5_body(scene_info=None, payer={"openid": OPENID})
    resp = await rig.raw("POST", "/v3/pay/transactions/jsapi", jsapi)
    assert (resp.status_code, resp.json()["code"]) == (400, "INVALID_REQUEST")


async def test_h5_prepay_of_a_closed_or_paid_order(rig: Rig) -> None:
    await rig.prepay_h5("FC20240505")
    await rig.provider.close("FC20240505")
    assert (await rig.provider.query("FC20240505")).state == "closed"
    with pytest.raises(WeChatPayError) as err:
        await rig.prepay_h5("FC20240505")
    assert err.value.code == "ORDER_CLOSED"
    await rig.prepay_h5("FC20240506")
    await rig.sandbox.complete("FC20240506")
    await rig.sandbox.join()
    with pytest.raises(WeChatPayError) as err:
        await rig.prepay_h5("FC20240506")
    assert err.value.code == "ORDERPAID"
    with pytest.raises(WeChatPayError) as err:
        await rig.provider.close("FC20240506")
    assert err.value.code == "ORDERPAID"


@pytest.mark.parametrize("client_ip", [None, "", "driver-phone", "1.2.3.4.5"])
async def test_h5_without_a_valid_payer_ip_is_refused_locally(
    rig: Rig, client_ip: str | None
) -> None:
    with pytest.raises(ProviderError) as err:
        await rig.prepay_h5("FC20240507", client_ip=client_ip)
    assert err.value.code == "PARAM_ERROR"
    assert "IP" in err.value.message
    assert rig.sandbox.orders == {}


async def test_an_openid_still_means_jsapi(rig: Rig) -> None:
    request = PrepayRequest(
        "FC20240508", 100, "x", NOTIFY_URL, clock.now(), payer_id=OPENID, client_ip=PAYER_IP
    )
    result = await rig.provider.prepay(request)
    assert result.client_params["package"] == f"prepay_id={result.provider_ref}"
    assert rig.sandbox.orders["FC20240508"].trade_type == "JSAPI"


def test_h5_prepay_id_of_odd_urls() -> None:
    assert h5_prepay_id(
        "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
        "?prepay_id=wx20161110163838f231619da20804912345&package=1037687096"
    ) == ("wx20161110163838f231619da20804912345")
    assert h5_prepay_id("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?package=1") is None
    assert h5_prepay_id("http://[bad") is None


# -- the cashier behind the h5_url -----------------------------------------------------------


async def test_the_h5_url_opens_the_cashier_and_paying_notifies(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    result = await rig.prepay_h5("FC20240510", 1234)
    page = await browser.get(result.client_params["h5_url"])
    assert page.status_code == 200
    html = page.text
    assert "微信支付 沙箱" in html
    assert "no real money" in html
    assert "92# 汽油 8.20L" in html
    assert "¥12.34" in html
    assert "H5" in html
    assert 'action="/sandbox/pay"' in html
    assert "redirect_url" not in html
    paid = await browser.post("/sandbox/pay", data={"out_trade_no": "FC20240510"})
    assert paid.status_code == 200
    assert "支付成功" in paid.text
    await eventually(lambda: len(rig.receiver.parsed) == 1)
    note = rig.receiver.parsed[0]
    order = rig.sandbox.orders["FC20240510"]
    assert (note.kind, note.out_trade_no, note.amount_fen, note.succeeded) == (
        "payment",
        "FC20240510",
        1234,
        True,
    )
    assert note.transaction_id == order.transaction_id
    assert note.raw["trade_type"] == "MWEB"
    assert "payer" not in note.raw  # an H5 order has no openid
    page = await browser.get(result.client_params["h5_url"])
    assert "确认支付" not in page.text
    assert "支付成功" in page.text


async def test_redirect_url_is_where_the_browser_goes_after_paying(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    result = await rig.prepay_h5("FC20240511", 800)
    h5_url = result.client_params["h5_url"] + "&redirect_url=" + quote(DONE, safe="")
    page = await browser.get(h5_url)
    assert page.status_code == 200
    escaped = DONE.replace("&", "&amp;")
    assert f'name="redirect_url" value="{escaped}"' in page.text
    assert f'href="{escaped}"' in page.text  # cancel: back to the merchant without paying
    paid = await browser.post(
        "/sandbox/pay", data={"out_trade_no": "FC20240511", "redirect_url": DONE}
    )
    assert paid.status_code == 303
    assert paid.headers["location"] == DONE
    await eventually(lambda: len(rig.receiver.parsed) == 1)
    assert rig.receiver.parsed[0].out_trade_no == "FC20240511"
    again = await browser.post(
        "/sandbox/pay", data={"out_trade_no": "FC20240511", "redirect_url": DONE}
    )
    assert again.status_code == 409  # already paid: no redirect, a page linking back
    assert f'href="{escaped}"' in again.text


@pytest.mark.parametrize(
    "redirect",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.test/steal",
        "/relative/path",
        "https:evil.test",
        "ftp://evil.test/x",
        "https://evil.test/\r\nSet-Cookie: a=b",
    ],
)
async def test_unsafe_redirect_urls_are_refused(
    rig: Rig, browser: httpx.AsyncClient, redirect: str
) -> None:
    result = await rig.prepay_h5("FC20240512")
    page = await browser.get(result.client_params["h5_url"] + "&redirect_url=" + quote(redirect))
    assert page.status_code == 400
    assert "确认支付" not in page.text
    assert "javascript:" not in page.text.lower()
    pay = await browser.post(
        "/sandbox/pay", data={"out_trade_no": "FC20240512", "redirect_url": redirect}
    )
    assert pay.status_code == 400
    assert "location" not in pay.headers
    assert rig.sandbox.orders["FC20240512"].trade_state == "NOTPAY"  # nothing was paid


async def test_h5_links_expire_after_five_minutes(rig: Rig, browser: httpx.AsyncClient) -> None:
    request = PrepayRequest(
        "FC20240513", 100, "x", NOTIFY_URL, clock.now() + timedelta(minutes=15), client_ip=PAYER_IP
    )
    result = await rig.provider.prepay(request)
    h5_url = result.client_params["h5_url"]
    forged = httpx.URL(h5_url).copy_set_param("package", "1234567890")
    assert (await browser.get(str(forged))).status_code == 403
    clock.travel(H5_URL_TTL + timedelta(seconds=1))
    stale = await browser.get(h5_url)
    assert stale.status_code == 403
    assert "支付请求已失效" in stale.text
    fresh = await rig.provider.prepay(request)  # the same parameters: a new link, same order
    assert fresh.provider_ref == result.provider_ref
    assert fresh.client_params["h5_url"] != h5_url
    assert (await browser.get(fresh.client_params["h5_url"])).status_code == 200


# -- after the payment: query, refund, bill --------------------------------------------------


async def test_query_reports_mweb_and_no_payer(rig: Rig) -> None:
    await rig.prepay_h5("FC20240520", 900)
    pending = await rig.client.query_order("FC20240520")
    assert pending["trade_state"] == "NOTPAY"
    assert "payer" not in pending
    assert "trade_type" not in pending  # like WeChat: reported once paid
    await rig.sandbox.complete("FC20240520")
    await rig.sandbox.join()
    data = await rig.client.query_order("FC20240520")
    assert (data["trade_state"], data["trade_type"]) == ("SUCCESS", "MWEB")
    assert "payer" not in data
    status = await rig.provider.query("FC20240520")
    order = rig.sandbox.orders["FC20240520"]
    assert (status.state, status.amount_fen, status.transaction_id) == (
        "paid",
        900,
        order.transaction_id,
    )


async def test_h5_refund_and_bill(rig: Rig) -> None:
    day = clock.local(clock.now()).date() - timedelta(days=2)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)
    clock.travel(noon - clock.now())
    await rig.prepay_h5("FC20240521", 1234)
    await rig.sandbox.complete("FC20240521")
    await rig.sandbox.join()
    order = rig.sandbox.orders["FC20240521"]
    refund = RefundRequest(
        out_trade_no="FC20240521",
        transaction_id=order.transaction_id or "",
        out_refund_no="RF20240521",
        refund_fen=234,
        total_fen=1234,
        reason="加油金额有误",
        notify_url=NOTIFY_URL,
    )
    result = await rig.provider.refund(refund)
    assert (result.state, result.amount_fen) == ("processing", 234)
    await rig.sandbox.join()
    done = await rig.provider.query_refund("RF20240521")
    assert (done.state, done.refund_id) == ("succeeded", result.refund_id)
    assert (await rig.provider.query("FC20240521")).state == "refunded"
    notes = [(n.kind, n.out_trade_no, n.amount_fen) for n in rig.receiver.parsed]
    assert notes == [("payment", "FC20240521", 1234), ("refund", "FC20240521", 234)]
    clock.reset()
    rows = await rig.provider.bill(day)
    assert [(r.kind, r.out_trade_no, r.amount_fen) for r in rows] == [
        ("payment", "FC20240521", 1234),
        ("refund", "FC20240521", 234),
    ]
    lines = (await rig.client.trade_bill(day)).decode().splitlines()
    for line in lines[1:3]:
        row = dict(zip(BILL_COLUMNS, (c[1:] for c in line.split(",")), strict=True))
        assert (row["交易类型"], row["用户标识"]) == ("MWEB", "")


async def test_jsapi_and_h5_side_by_side_in_one_bill(rig: Rig) -> None:
    day = clock.local(clock.now()).date() - timedelta(days=1)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)
    clock.travel(noon - clock.now())
    await rig.paid("FC20240522", 100)
    await rig.prepay_h5("FC20240523", 200)
    await rig.sandbox.complete("FC20240523")
    await rig.sandbox.join()
    clock.reset()
    lines = (await rig.client.trade_bill(day)).decode().splitlines()
    rows = [
        dict(zip(BILL_COLUMNS, (c[1:] for c in ln.split(",")), strict=True)) for ln in lines[1:3]
    ]
    assert {(r["商户订单号"], r["交易类型"], r["用户标识"]) for r in rows} == {
        ("FC20240522", "JSAPI", OPENID),
        ("FC20240523", "MWEB", ""),
    }


# -- in-process, as the runtime builds it ----------------------------------------------------


async def test_from_settings_sandbox_serves_h5_under_the_app() -> None:
    provider, sandbox = from_settings(Settings(env="test", sandbox_resend_scale=0.001))
    assert sandbox is not None
    assert sandbox.public_base is None  # the runtime sets it once it knows where it serves it
    sandbox.public_base = f"http://127.0.0.1:8000{PREFIX}"
    request = PrepayRequest(
        "FC20240530", 2328, "Forecourt 加油", NOTIFY_URL, clock.now() + timedelta(minutes=15)
    )
    with pytest.raises(ProviderError):  # neither openid nor IP
        await provider.prepay(request)
    result = await provider.prepay(dataclasses.replace(request, client_ip="198.51.100.20"))
    h5_url = result.client_params["h5_url"]
    assert h5_url.startswith(f"http://127.0.0.1:8000{PREFIX}/sandbox/cashier?prepay_id=wx")
    app = Starlette(routes=[Mount(PREFIX, app=sandbox.app)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as browser:
        page = await browser.get(h5_url + "&redirect_url=" + quote(DONE, safe=""))
        assert page.status_code == 200
        assert "¥23.28" in page.text
        assert f'action="{PREFIX}/sandbox/pay"' in page.text
    assert (await provider.query("FC20240530")).state == "pending"
    await sandbox.aclose()
    await provider.client.aclose()


async def test_bill_download_url_keeps_the_mount_prefix(make_rig: MakeRig) -> None:
    """The bill's download_url is built like the h5_url: origin + mount prefix."""
    rig = make_rig(prefix=PREFIX)
    clock.travel(timedelta(days=-1))
    day = clock.local(clock.now()).date()
    await rig.prepay_h5("FC20240531", 700)
    await rig.sandbox.complete("FC20240531")
    await rig.sandbox.join()
    clock.reset()
    rows = await rig.provider.bill(day)
    assert [(r.kind, r.out_trade_no, r.amount_fen) for r in rows] == [
        ("payment", "FC20240531", 700)
    ]
