"""Request-body checks of the emulated API, with WeChat's error codes and wording."""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Any

import httpx
import orjson

from forecourt.integrations.wechatpay.sandbox.identity import WireError

OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")


def param_error(message: str) -> WireError:
    """A 400 PARAM_ERROR."""
    return WireError(400, "PARAM_ERROR", message)


def required(path: str) -> WireError:
    """WeChat's message for a missing field (path `/a/b`, field named `a.b`)."""
    name = path.strip("/").replace("/", ".")
    return param_error(f"输入源“/body{path}”映射到字段“{name}”必填性规则校验失败，此字段为必填项")


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or PARAM_ERROR."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise param_error("请求体不是合法的JSON对象")
    return data


def text(data: dict[str, Any], key: str, path: str, *, max_bytes: int = 1024) -> str:
    """A required non-empty string field of at most `max_bytes` UTF-8 bytes."""
    value = data.get(key)
    if value is None or value == "":
        raise required(path)
    if not isinstance(value, str) or len(value.encode()) > max_bytes:
        raise param_error(f"字段 {path} 类型或长度不合法")
    return value


def positive_int(data: dict[str, Any], key: str, path: str) -> int:
    """A required integer field above zero (amounts in fen)."""
    value = data.get(key)
    if value is None:
        raise required(path)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise param_error(f"字段 {path} 必须是大于0的整数")
    return value


def currency(amount: dict[str, Any], path: str) -> None:
    """`currency`, when given, must be CNY."""
    if amount.get("currency", "CNY") != "CNY":
        raise param_error(f"字段 {path}/currency 只支持 CNY")


def notify_url(value: str, path: str) -> str:
    """An absolute http(s) URL without a query string."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise param_error(f"字段 {path} 不是合法的URL") from exc
    if url.scheme not in ("http", "https") or not url.host or url.query:
        raise param_error(f"字段 {path} 必须是不带参数的 http(s) 地址")
    return value


def rfc3339(value: object, path: str) -> datetime:
    """An RFC 3339 time with an offset."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise param_error(f"字段 {path} 不是 RFC3339 时间格式 (如 2018-06-08T10:34:56+08:00)")
    return moment


H5_TYPES = ("iOS", "Android", "Wap")


def payer_client_ip(scene: dict[str, Any]) -> str:
    """`scene_info.payer_client_ip`: an IPv4 or IPv6 address of at most 45 characters."""
    path = "/scene_info/payer_client_ip"
    value = text(scene, "payer_client_ip", path, max_bytes=45)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise param_error(f"字段 {path} 不是合法的IPv4或IPv6地址") from None
    return value


def h5_scene(data: dict[str, Any]) -> str:
    """Check the `scene_info` of an H5 prepay; the payer's IP."""
    scene = data.get("scene_info")
    if not isinstance(scene, dict):
        raise required("/scene_info")
    ip = payer_client_ip(scene)
    h5_info = scene.get("h5_info")
    if not isinstance(h5_info, dict):
        raise required("/scene_info/h5_info")
    if text(h5_info, "type", "/scene_info/h5_info/type", max_bytes=32) not in H5_TYPES:
        raise param_error("字段 /scene_info/h5_info/type 只能是 iOS、Android、Wap")
    for key in ("app_name", "app_url", "bundle_id", "package_name"):
        value = h5_info.get(key)
        if value is not None and (not isinstance(value, str) or len(value.encode()) > 256):
            raise param_error(f"字段 /scene_info/h5_info/{key} 类型或长度不合法")
    device_id = scene.get("device_id")
    if device_id is not None and (not isinstance(device_id, str) or len(device_id) > 32):
        raise param_error("字段 /scene_info/device_id 类型或长度不合法")
    return ip


def prepay(
    data: dict[str, Any], *, mchid: str, appid: str, trade_type: str = "JSAPI"
) -> dict[str, Any]:
    """Check a JSAPI or (trade_type MWEB) H5 prepay body; the fields the sandbox keeps."""
    body_appid = text(data, "appid", "/appid", max_bytes=32)
    body_mchid = text(data, "mchid", "/mchid", max_bytes=32)
    description = text(data, "description", "/description", max_bytes=127)
    out_trade_no = text(data, "out_trade_no", "/out_trade_no")
    if not OUT_TRADE_NO.fullmatch(out_trade_no):
        raise param_error("out_trade_no 只能是6-32位数字、大小写字母、_-|*")
    url = notify_url(text(data, "notify_url", "/notify_url", max_bytes=255), "/notify_url")
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise required("/amount")
    total = positive_int(amount, "total", "/amount/total")
    currency(amount, "/amount")
    openid: str | None = None
    client_ip: str | None = None
    if trade_type == "MWEB":
        client_ip = h5_scene(data)
    else:
        payer = data.get("payer")
        if not isinstance(payer, dict):
            raise required("/payer")
        openid = text(payer, "openid", "/payer/openid", max_bytes=128)
    expire = rfc3339(data["time_expire"], "/time_expire") if "time_expire" in data else None
    attach = data.get("attach")
    if attach is not None and (not isinstance(attach, str) or len(attach.encode()) > 128):
        raise param_error("字段 /attach 类型或长度不合法")
    if body_mchid != mchid:
        raise WireError(400, "MCH_NOT_EXISTS", "商户号不存在")
    if body_appid != appid:
        raise WireError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    return {
        "description": description,
        "out_trade_no": out_trade_no,
        "notify_url": url,
        "total": total,
        "openid": openid,
        "client_ip": client_ip,
        "time_expire": expire,
        "attach": attach,
    }


def refund(data: dict[str, Any]) -> dict[str, Any]:
    """Check a refund body; the fields the sandbox keeps."""
    out_refund_no = text(data, "out_refund_no", "/out_refund_no")
    if not OUT_REFUND_NO.fullmatch(out_refund_no):
        raise param_error("out_refund_no 只能是1-64位数字、大小写字母、_-|*@")
    transaction_id = data.get("transaction_id") or None
    out_trade_no = data.get("out_trade_no") or None
    if transaction_id is None and out_trade_no is None:
        raise param_error("transaction_id 和 out_trade_no 必须二选一")
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise required("/amount")
    refund_fen = positive_int(amount, "refund", "/amount/refund")
    total = positive_int(amount, "total", "/amount/total")
    if "currency" not in amount:
        raise required("/amount/currency")
    currency(amount, "/amount")
    url = data.get("notify_url")
    if url is not None:
        url = notify_url(text(data, "notify_url", "/notify_url", max_bytes=256), "/notify_url")
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason.encode()) > 80):
        raise param_error("字段 /reason 类型或长度不合法")
    return {
        "out_refund_no": out_refund_no,
        "transaction_id": str(transaction_id) if transaction_id else None,
        "out_trade_no": str(out_trade_no) if out_trade_no else None,
        "refund": refund_fen,
        "total": total,
        "notify_url": url,
        "reason": reason,
    }


def bill_date(value: str | None) -> date:
    """`bill_date` as YYYY-MM-DD."""
    if not value:
        raise param_error("bill_date 为必填项")
    if len(value) != 10:
        raise param_error("bill_date 格式应为 YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise param_error("bill_date 格式应为 YYYY-MM-DD") from exc
